"""Fleet answers from a converted dataset (cartforensics.analysis.fleet): the stored replays and the
per-partition counts agree with replaying the logs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cartforensics import read_events, replay
from cartforensics.analysis.fleet import fleet_summary, stored_replays
from cartforensics.analysis.metrics import metrics, rates
from cartforensics.io.dataset import DatasetError
from cartforensics.jobs.convert import convert
from cartforensics.jobs.sample import write_sample
from cartforensics.model.replay import OUTCOMES


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("fleet")
    write_sample(d / "logs", carts=120)
    convert(d / "logs", d / "ds", workers=1, progress=False)
    return d / "logs", d / "ds"


@pytest.fixture(scope="module")
def replays(corpus: tuple[Path, Path]):
    ev = read_events(corpus[0], progress=False)
    return ev, replay(ev, mode="go"), replay(ev, mode="lenient")


def test_stored_replays_equal_the_replays_of_the_logs(corpus, replays) -> None:
    ev, go, le = replays
    events, sgo, sle = stored_replays(corpus[1])
    assert "payload" not in events.columns
    for r, s in ((go, sgo), (le, sle)):
        assert s.mode == r.mode and s.cart_ids == r.cart_ids
        pd.testing.assert_frame_equal(s.outcomes, r.outcomes)
        for cid in r.cart_ids[:20]:
            assert s.final_state(cid) == r.final_state(cid)
            assert s.rows_of(cid) == r.rows_of(cid)
        pd.testing.assert_frame_equal(s.summary(), r.summary().reindex(
            columns=list(OUTCOMES)).astype("int64"), check_names=False)
    # raw is kept only where a finding shows it; the digest tells equal lines everywhere
    kept = events["raw"].notna().to_numpy()
    assert 0 < kept.sum() < len(events)
    assert (events["raw"][kept].tolist() == ev["raw"][kept].tolist())


def test_fleet_summary_counts_what_the_logs_replay_counts(corpus, replays) -> None:
    ev, go, le = replays
    s = fleet_summary(corpus[1], freq="1D")
    assert s.lines == len(ev) and s.partitions >= 1
    m = metrics(go, source=corpus[0])
    assert s.metrics["value"].tolist() == m["value"].tolist()
    assert list(s.metrics.index) == list(m.index)
    counts = go.summary().reindex(columns=list(OUTCOMES)).astype("int64")
    got = s.carts[[f"go_{o}" for o in OUTCOMES]].reindex(counts.index)
    assert (got.to_numpy() == counts.to_numpy()).all()
    lost = ((le.outcomes["outcome"] == "applied") & (go.outcomes["outcome"] != "applied"))
    per_cart = lost.groupby(go.outcomes["cart_id"].astype(str)).sum()
    assert s.carts["lost"].reindex(per_cart.index).tolist() == per_cart.tolist()
    # lines per window and type: rates() of the replay, summed over outcomes
    r = rates(go, freq="1D", by="type")
    want = r.set_index(["window", "type"])["lines"]
    have = s.rates.groupby(["window", "type"])["lines"].sum()
    have = have[have.index.get_level_values("type") != "(none)"]
    want = want[want.index.get_level_values("type") != "(none)"]
    assert np.array_equal(have.reindex(want.index).to_numpy(), want.to_numpy())


def test_fleet_summary_on_an_executor_equals_in_process(corpus) -> None:
    a = fleet_summary(corpus[1])
    with ThreadPoolExecutor(2) as ex:
        b = fleet_summary(corpus[1], executor=ex)
    pd.testing.assert_frame_equal(a.carts, b.carts)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    pd.testing.assert_frame_equal(a.rates, b.rates)


def test_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a cartforensics dataset"):
        fleet_summary(tmp_path)
    with pytest.raises(DatasetError, match="not a cartforensics dataset"):
        stored_replays(tmp_path)


def test_fleet_summary_findings_per_partition_equal_findings(corpus, replays) -> None:
    from cartforensics.analysis.findings import findings
    from cartforensics.analysis.fleet import EVIDENCE_ROWS, PARTITIONED_KINDS
    from cartforensics.present.report import EVIDENCE_ROWS as SHOWN

    assert EVIDENCE_ROWS == SHOWN

    ev, go, le = replays
    s = fleet_summary(corpus[1])
    want = [f for f in findings(go, le) if f.kind in PARTITIONED_KINDS
            and not (f.key or "").startswith("(")]  # not the "(n other ...)" groups
    assert len(want) >= 4 and s.findings is not None and s.evidence is not None
    got = s.findings.set_index(["kind", "key"])
    for f in want:
        row = got.loc[(f.kind, f.key or "")]
        assert (int(row["lines"]), int(row["carts"])) == (f.count, f.carts), f.title
        assert row["first_seen"] == f.first_seen and row["last_seen"] == f.last_seen, f.title
        e = s.evidence[(f.kind, f.key or "")]
        assert len(e) == min(f.count, EVIDENCE_ROWS)
        head = f.evidence.head(EVIDENCE_ROWS)
        assert e["cart_id"].tolist() == head["cart_id"].tolist(), f.title
        assert e["line"].tolist() == head["line"].tolist(), f.title
        assert e["error_go"].fillna("").tolist() == pd.Series(head["go_error"]).fillna(
            "").tolist(), f.title
    every = [f for f in findings(go, le) if f.kind in PARTITIONED_KINDS]
    if not any((f.key or "").startswith("(") for f in every):  # no kind had > 10 keys
        assert set(got.index) == {(f.kind, f.key or "") for f in every}


def test_toolchain_finding_from_a_dataset_equals_the_logs(tmp_path: Path) -> None:
    """A dataset converted as Go 1.27 keeps its toolchain: the report's toolchain finding (lines
    whose outcome the other side of the json v1/v2 line changes) is the one the logs give, and
    asking for another toolchain is refused."""
    from cartforensics.analysis.findings import findings
    from cartforensics.present.report import ReportError, write_report

    logs = tmp_path / "logs"
    write_sample(logs, carts=40)
    esc = (b'{"ts":"2025-11-03T08:00:00\\u005a","type":"AddItem","payload":{"sku":"e1",'
           b'"quantity":1,"price":700}}\n')
    with (logs / "cart-1001.events.log").open("ab") as fh:
        fh.write(esc)
    convert(logs, tmp_path / "ds", workers=1, progress=False, go_version="1.27")
    ev = read_events(logs, progress=False, go_version="1.27")
    want = [f for f in findings(replay(ev, mode="go"), replay(ev, mode="lenient"))
            if f.kind == "toolchain"]
    _, sgo, sle = stored_replays(tmp_path / "ds")
    assert sgo.semantics.spec == "1.27"
    got = [f for f in findings(sgo, sle) if f.kind == "toolchain"]
    assert len(want) == 1 and [f.message for f in got] == [f.message for f in want]
    assert got[0].evidence.equals(want[0].evidence)
    with pytest.raises(ReportError, match="converted as Go 1.27"):
        write_report(tmp_path / "ds", tmp_path / "r", progress=False, go_version="1.25")


# -- fleet_counts: DuckDB's aggregates equal the report's own --------------------------------


@pytest.fixture(scope="module")
def hostile_fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The report tests' hostile corpus (split carts, numeric ts, too long lines, unknown
    types, a broken gzip) and its dataset."""
    import warnings

    from test_report_chunks import write_hostile

    d = tmp_path_factory.mktemp("fleet-hostile")
    write_hostile(d / "logs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert(d / "logs", d / "ds", workers=1, progress=False)
    return d / "logs", d / "ds"


def _report_numbers(src: Path, freq: str | None, tmp: Path):
    import warnings

    from cartforensics.go.version import semantics
    from cartforensics.present.report_chunks import combine, plan_dataset, plan_logs, run_chunks

    chunks = plan_dataset(src) if (src / "manifest.json").exists() else plan_logs(src)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_chunks(chunks, str(tmp), freq, workers=1)
    return combine(results, freq, semantics(results[0].semantics))


@pytest.mark.parametrize("which", ["sample", "hostile"])
@pytest.mark.parametrize("where", ["dataset", "logs"])
@pytest.mark.parametrize("freq", [None, "1h"])
def test_fleet_counts_equal_the_reports(which: str, where: str, freq: str | None, corpus,
                                        hostile_fleet, tmp_path: Path) -> None:
    import warnings

    from cartforensics.analysis.fleet import fleet_counts

    logs, ds = corpus if which == "sample" else hostile_fleet
    src = ds if where == "dataset" else logs
    try:
        want = _report_numbers(src, freq, tmp_path)
    except ValueError as e:  # too many windows (the hostile corpus spans 1970 to 2025)
        with warnings.catch_warnings(), pytest.raises(ValueError) as got:
            warnings.simplefilter("ignore")
            fleet_counts(src, freq)
        assert str(got.value) == str(e) and "windows" in str(e)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        have = fleet_counts(src, freq)
    for k in ("lines", "carts", "applied_go", "applied_lenient", "lost", "carts_losing",
              "freq"):
        assert getattr(have, k) == getattr(want, k), k
    pd.testing.assert_frame_equal(have.metrics, want.metrics)
    for name in ("rates", "rates_by_type", "unknown"):
        pd.testing.assert_frame_equal(getattr(have, name), getattr(want, name), obj=name,
                                      check_dtype=False, check_index_type=False)
        assert getattr(have, name).attrs == getattr(want, name).attrs
    pd.testing.assert_frame_equal(have.lost_table, want.lost_table)
    # per cart and mode: what the replays count
    ev = read_events(logs, progress=False) if which == "sample" else None
    if ev is not None:
        for mode in ("go", "lenient"):
            counts = replay(ev, mode=mode).summary().reindex(columns=list(OUTCOMES))
            got = have.by_cart[[f"{mode}_{o}" for o in OUTCOMES]].reindex(counts.index)
            assert (got.to_numpy() == counts.to_numpy()).all()
    assert have.outcomes.groupby("mode")["lines"].sum().tolist() == [have.lines] * 2
    assert have.by_type["lines"].sum() == 2 * have.lines


def test_fleet_counts_on_a_path_duckdb_would_glob(corpus, tmp_path: Path) -> None:
    """A dataset under a directory named like a glob is read through pyarrow: the same."""
    import shutil

    from cartforensics.analysis.fleet import fleet_counts

    odd = tmp_path / "d[1]*"
    shutil.copytree(corpus[1], odd)
    a, b = fleet_counts(corpus[1], "1D"), fleet_counts(odd, "1D")
    pd.testing.assert_frame_equal(a.rates_by_type, b.rates_by_type)
    pd.testing.assert_frame_equal(a.by_cart, b.by_cart)
    events, go, _ = stored_replays(odd)
    pd.testing.assert_frame_equal(go.outcomes, stored_replays(corpus[1])[1].outcomes)


def test_fleet_counts_on_an_analysts_connection(corpus) -> None:
    """On a connection cf.sql made: the same counts, and the connection left as it was."""
    import cartforensics as cf
    from cartforensics.analysis.fleet import fleet_counts

    con = cf.sql(corpus[1])
    before = sorted(con.sql("show tables").fetchall())
    a, b = fleet_counts(con, "1h"), fleet_counts(corpus[1], "1h")
    assert sorted(con.sql("show tables").fetchall()) == before
    pd.testing.assert_frame_equal(a.by_type, b.by_type)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    assert con.sql("select count(*) from events").fetchall() == [(a.lines,)]


# -- fleet_report: the report's fleet-wide tables, aggregated by DuckDB ----------------------


@pytest.mark.parametrize("which", ["sample", "hostile"])
@pytest.mark.parametrize("where", ["dataset", "logs"])
def test_fleet_report_equals_the_chunks_replays(which: str, where: str, corpus, hostile_fleet,
                                                tmp_path: Path) -> None:
    """The impact rows (every cart, replay order) and the per-cart table equal what the
    report's chunks compute from the replays (cart_impact, per_cart_table)."""
    import warnings

    from cartforensics.analysis.fleet import fleet_report
    from cartforensics.analysis.impact import cart_impact

    logs, ds = corpus if which == "sample" else hostile_fleet
    src = ds if where == "dataset" else logs
    want = _report_numbers(src, "1D", tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        have = fleet_report(src, "1D")
        ev = read_events(logs, progress=False)
    assert have.counts.lost == want.lost and have.counts.carts == len(have.impact)
    pd.testing.assert_frame_equal(have.impact, want.impact)
    pd.testing.assert_frame_equal(have.per_cart, want.per_cart)
    assert len(have.per_cart) == min(30, want.carts_losing) > 0
    # and against the replays of the logs, cart by cart
    go, le = replay(ev, mode="go"), replay(ev, mode="lenient")
    pd.testing.assert_frame_equal(have.impact, cart_impact(go, le))
    assert have.impact["differs"].any() and have.impact["value_missing"].sum() > 0


@pytest.mark.parametrize("lines", ["small", "wide", "missing"])
def test_lines_order_is_arrows_sort(lines: str) -> None:
    """Rows in runs of sorted carts (as fragments give them; several sources per cart, runs
    sharing a cart) come out as Arrow's sort by cart_id, source, line orders them: on one
    integer per row, on three (lines too far apart to pack) or with missing keys (last)."""
    import pyarrow as pa

    from cartforensics.analysis.fleet import _in_lines_order

    rng = np.random.default_rng(7)
    carts = [f"c{k:03d}\u00e9" for k in rng.permutation(300)]
    runs = []
    for r in range(5):  # sorted runs of random carts, sources and lines
        cart = np.sort(rng.choice(carts, 400))
        source = np.char.add(cart.astype(str), rng.choice(["/a", "/b.gz"], 400))
        line = rng.integers(-3, 50, 400) if lines != "wide" else \
            rng.choice([-(2**62), 0, 2**62], 400)
        runs.append(pa.table({"cart_id": cart, "source": source, "line": line,
                              "k": np.arange(400) + 400 * r}))
    table = pa.concat_tables(runs)
    if lines == "missing":
        table = table.set_column(2, "line", pa.array(
            [None if k % 97 == 0 else v for k, v in enumerate(table["line"].to_pylist())],
            pa.int64()))
    keys = [("cart_id", "ascending"), ("source", "ascending"), ("line", "ascending")]
    want = table.sort_by(keys + [("k", "ascending")])  # (ties: in the rows' order, stable)
    got = _in_lines_order(table)
    assert got.select(["cart_id", "source", "line"]).equals(
        want.select(["cart_id", "source", "line"]))
    if lines != "missing":
        assert got["k"].equals(want["k"])
        assert _in_lines_order(want) is want  # in order already: kept


def test_scan_sorts_fragments_given_out_of_order(corpus) -> None:
    """The scan keeps the fragments' own order when it is the lines' order and sorts it when
    it is not: the same table either way."""
    from cartforensics.analysis.fleet import stored_scan
    from cartforensics.io.dataset import EVENTS_DIR, fragment_files

    frags = fragment_files(corpus[1], EVENTS_DIR)
    want = stored_scan(corpus[1], None, frags)
    assert len(frags) >= 1 and want.num_rows > 0
    if len(frags) > 1:
        assert stored_scan(corpus[1], None, frags[::-1]).equals(want)
    # rows out of order inside a fragment too: a copy of one written backwards
    import pyarrow.parquet as pq

    t = pq.read_table(frags[0])
    backwards = corpus[1] / EVENTS_DIR / frags[0].parent.name / "backwards.parquet"
    pq.write_table(t.take(list(range(t.num_rows - 1, -1, -1))), backwards)
    try:
        got = stored_scan(corpus[1], None, [backwards])
        assert got.equals(stored_scan(corpus[1], None, [frags[0]]))
        assert got.num_rows == t.num_rows > 1
    finally:
        backwards.unlink()


def test_scan_keeps_the_bytes_of_every_line_whose_hash_repeats_in_its_cart(
        hostile_fleet) -> None:
    """The duplicates finding compares the bytes of the lines whose 64-bit hash repeats in
    their cart: the scan keeps those (the logs' own bytes), in the lines' order."""
    import warnings

    from cartforensics.analysis.fleet import DIGEST_COLUMN, stored_scan

    t = stored_scan(hostile_fleet[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logs = read_events(hostile_fleet[0], progress=False)["raw"].to_numpy()
    cart = t["cart_id"].to_pylist()
    digest = t[DIGEST_COLUMN].to_pylist()
    raw = t["raw"].to_pylist()
    seen = np.flatnonzero(pd.Series(list(zip(cart, digest, strict=True))).duplicated(
        keep=False).to_numpy())
    assert len(seen)  # the corpus repeats a line
    assert [raw[k] for k in seen] == [bytes(logs[k]) for k in seen]


@pytest.mark.parametrize("noted", [False, True])
def test_scan_keeps_the_bytes_duckdb_would_pick(hostile_fleet, noted: bool) -> None:
    """The lines whose bytes the scan keeps, picked in numpy, are the ones the rule says in
    SQL (lenient malformed with an error, no final newline, a backslash or no UTF-8 text, a
    noted line, or a hash repeated in the cart), over lines written to hold each: a
    backslash, bytes that are no UTF-8, a gzip torn mid-line."""
    import duckdb

    from cartforensics.analysis.fleet import DIGEST_COLUMN, stored_scan
    from cartforensics.io.dataset import EVENTS_DIR, fragment_files

    frags = [str(f) for f in fragment_files(hostile_fleet[1], EVENTS_DIR)]
    con = duckdb.connect()
    rows = con.sql(f"""
        select cart_id, source, line, raw,
            coalesce((outcome_lenient = 'malformed' and lenient_error is not null)
                     or not newline or coalesce(contains(try(decode(raw)), '\\'), true),
                     false) as shown
        from read_parquet({frags!r}) order by cart_id, source, line""").fetchall()
    pairs = [(c, int(n)) for c, _, n, _, shown in rows[::5] if not shown][:4] if noted else []
    t = stored_scan(hostile_fleet[1], pairs)
    assert [r[:3] for r in rows] == list(zip(*(t[c].to_pylist() for c in
                                               ("cart_id", "source", "line")), strict=True))
    cart, digest = t["cart_id"].to_pylist(), t[DIGEST_COLUMN].to_pylist()
    repeated = pd.Series(list(zip(cart, digest, strict=True))).duplicated(keep=False).tolist()
    want = [raw if shown or again or (c, n) in pairs else None
            for (c, _, n, raw, shown), again in zip(rows, repeated, strict=True)]
    assert t["raw"].to_pylist() == want
    kinds = [(raw is not None and b"\\" in raw, shown) for *_, raw, shown in rows]
    assert (True, True) in kinds and (False, True) in kinds and (False, False) in kinds
    assert not noted or pairs


def test_counts_over_the_stored_lines_equal_the_counts_over_events(hostile_fleet) -> None:
    """fleet_counts of a dataset reads its stored lines (ts_ns as stored); over a connection
    cf.sql made (whose ``events`` a caller may have redefined) it reads ``events``, whose ts
    is made of ts_ns: the same counts, lines without a ts too."""
    from cartforensics.analysis.fleet import _lines_relation, fleet_counts
    from cartforensics.analysis.sql import sql

    con = sql(hostile_fleet[1])
    assert _lines_relation(con) == ("_cf_stored_events", "ts_ns")
    assert con.sql("select count(*) from events where ts is null").fetchall()[0][0] > 0
    for freq in (None, "1D", "30D"):
        own, given = fleet_counts(hostile_fleet[1], freq), fleet_counts(con, freq)
        for name in ("lines", "carts", "applied_go", "applied_lenient", "lost",
                     "carts_losing", "freq"):
            assert getattr(own, name) == getattr(given, name), name
        for name in ("outcomes", "by_type", "by_cart", "rates", "rates_by_type", "unknown",
                     "metrics"):
            pd.testing.assert_frame_equal(getattr(own, name), getattr(given, name), obj=name)
        pd.testing.assert_frame_equal(own.lost_table, given.lost_table)
    con.close()
    logs = sql(hostile_fleet[0])
    assert _lines_relation(logs) == ("events", "epoch_ns(ts)")
    logs.close()
