"""SQL for analysts (cartforensics.analysis.sql): the views over logs (replayed on the way in)
and over a converted dataset (read where it lies) hold what the replays hold: rows per
outcome, cart and mode, each cart's money, the files; hostile text comes back as data."""

from __future__ import annotations

import importlib
import io
import json
import warnings
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from test_report_chunks import write_hostile

import cartforensics as cf
from cartforensics.analysis.sql import VIEWS, write_query
from cartforensics.io.logs import NoLogsError
from cartforensics.vocab import MODES, OUTCOMES

conv = importlib.import_module("cartforensics.jobs.convert")
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


@pytest.fixture(scope="module", params=["sample", "hostile"])
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(logs, dataset, events, go, lenient) of a corpus."""
    d = tmp_path_factory.mktemp(f"sql-{request.param}")
    logs = SAMPLE
    if request.param == "hostile":
        logs = d / "logs"
        write_hostile(logs)
    with warnings.catch_warnings():  # the hostile corpus's broken file is warned about
        warnings.simplefilter("ignore")
        conv.convert(logs, d / "ds", workers=1, progress=False)
        ev = cf.read_events(logs, progress=False)
    return logs, d / "ds", ev, cf.replay(ev, mode="go"), cf.replay(ev, mode="lenient")


def _counts(con, mode: str) -> pd.DataFrame:
    df = con.sql(f"select cart_id, outcome, count(*)::bigint as n from outcomes "
                 f"where mode = '{mode}' group by all").df()
    wide = df.pivot_table(index="cart_id", columns="outcome", values="n", fill_value=0)
    return wide.reindex(columns=list(OUTCOMES), fill_value=0).astype("int64")


@pytest.mark.parametrize("where", ["logs", "dataset"])
def test_views_equal_the_replays(corpus, where: str) -> None:
    logs, ds, ev, go, le = corpus
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        con = cf.sql(logs if where == "logs" else ds)
    assert {r[0] for r in con.sql("show tables").fetchall()} >= set(VIEWS)
    assert con.sql("select count(*) from events").fetchall() == [(len(ev),)]
    for r in (go, le):
        # rows per outcome and cart, in each mode
        want = r.summary().reindex(columns=list(OUTCOMES)).astype("int64")
        want = want[want.sum(axis=1) > 0]
        have = _counts(con, r.mode).reindex(want.index)
        assert (have.to_numpy() == want.to_numpy()).all()
        # every line's outcome and error (a cart's two files both have a line 1: as sets)
        have_rows = sorted(con.sql(f"select cart_id, line, outcome, coalesce(error, '') from "
                                   f"outcomes where mode = '{r.mode}'").fetchall())
        oc = r.outcomes
        want_rows = sorted(zip(oc["cart_id"].astype(str), oc["line"].tolist(),
                               oc["outcome"].astype(str),
                               [e if isinstance(e, str) else "" for e in oc["error"]],
                               strict=True))
        assert have_rows == want_rows
        # money per cart: the final state's, flattened
        carts = con.sql(f"select * from carts where mode = '{r.mode}'").df().set_index(
            "cart_id")
        assert sorted(carts.index) == sorted(r.cart_ids)
        summary = r.summary()
        for cid in r.cart_ids:
            s = r.final_state(cid)
            row = carts.loc[cid]
            assert row["total_price"] == s["totalPrice"]
            assert row["total_tax"] == s["totalTax"]
            assert row["total_discount"] == s["totalDiscount"]
            assert row["items"] == len(s["items"])
            assert row["quantity"] == sum(i["qty"] for i in s["items"])
            assert row["deliveries"] == len(s["deliveries"])
            assert (row["order_reference"] or "") == (s["orderReference"] or "")
            assert json.loads(row["state"]) == s
            assert row["lines"] == int(summary.loc[cid, "lines"])
            assert row["applied"] == int(summary.loc[cid, "applied"])
    files = con.sql("select cart_id, lines, problems is not null as bad from files "
                    "order by all").fetchall()
    assert len(files) == len(ev.attrs["files"])
    assert sum(1 for f in files if f[2]) == len({str(p["path"]) for p in ev.attrs["problems"]})


def test_dataset_and_logs_answer_alike(corpus) -> None:
    logs, ds, *_ = corpus
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = cf.sql(logs), cf.sql(ds)
    for q in ("select * from events order by all",
              "select * from outcomes order by all",
              "select * from carts order by cart_id, mode",
              "select cart_id, bytes, lines, problems is null from files order by all"):
        assert a.sql(q).fetchall() == b.sql(q).fetchall(), q


def test_hostile_text_comes_back_as_data(corpus, tmp_path: Path) -> None:
    logs, ds, ev, *_ = corpus
    con = cf.sql(ds)
    raw = sorted(con.sql("select cart_id, line, raw from events").fetchall())
    assert raw == sorted(zip(ev["cart_id"].astype(str), ev["line"].tolist(),
                             [bytes(v) for v in ev["raw"]], strict=True))
    # written out exactly: parquet keeps every byte and character
    write_query(con, "select cart_id, line, type, raw from events;", tmp_path / "e.parquet",
                "parquet")
    back = pq.read_table(tmp_path / "e.parquet").to_pandas()
    assert sorted(zip(back["cart_id"], back["line"], back["raw"],
                      [t if isinstance(t, str) else "" for t in back["type"]], strict=True)) == \
        sorted(zip(ev["cart_id"].astype(str), ev["line"].tolist(), [bytes(v) for v in ev["raw"]],
                   [t if isinstance(t, str) else "" for t in ev["type"].astype(object)],
                   strict=True))

def test_write_query_formats_and_errors(tmp_path: Path) -> None:
    con = cf.sql(SAMPLE)
    q = "select mode, outcome, count(*) as n from outcomes group by all order by all"
    want = con.sql(q).fetchall()
    buf = io.BytesIO()
    write_query(con, q, buf, "json")
    rows = [json.loads(line) for line in buf.getvalue().decode().splitlines()]
    assert [(r["mode"], r["outcome"], r["n"]) for r in rows] == want
    write_query(con, q, tmp_path / "r.csv", "csv")
    assert pd.read_csv(tmp_path / "r.csv").values.tolist() == [list(r) for r in want]
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]  # no temporary left
    with pytest.raises(ValueError, match="format"):
        write_query(con, q, buf, "xlsx")
    import duckdb

    with pytest.raises(duckdb.Error):
        write_query(con, "select nope from outcomes", tmp_path / "x.csv", "csv")
    assert not (tmp_path / "x.csv").exists()


def test_bad_sources() -> None:
    with pytest.raises(NoLogsError):
        cf.sql("/nonexistent/where")


def test_modes_are_the_vocabulary() -> None:
    con = cf.sql(SAMPLE)
    assert sorted(r[0] for r in con.sql("select distinct mode from outcomes").fetchall()) == \
        sorted(MODES)


def test_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    """A log whose name the file system gives as bytes that are not UTF-8, and a type with a
    NUL: the views answer, with the id and path as read_events writes them (\\xNN)."""
    import os

    logs = tmp_path / "logs"
    logs.mkdir()
    line = (b'{"ts":"2025-10-28T10:00:00Z","type":"AddItem\\u0000","payload":'
            b'{"sku":"a","quantity":1,"price":2}}\n')
    (Path(os.fsdecode(bytes(logs) + b"/cart-\xff.events.log"))).write_bytes(line)
    (Path(os.fsdecode(bytes(logs) + b"/cart-\xff.events.log.gz"))).write_bytes(b"not gzip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        con = cf.sql(logs)
    assert con.sql("select cart_id, type, outcome_go from events").fetchall() == \
        [("cart-\\xff", "AddItem\x00", "unknown_type")]
    files = con.sql("select cart_id, path, problems from files order by path").fetchall()
    assert [f[0] for f in files] == ["cart-\\xff"] * 2
    assert files[0][1].endswith("cart-\\xff.events.log")
    assert "has 2 files" in files[0][2] and "broken gzip" in files[1][2]
