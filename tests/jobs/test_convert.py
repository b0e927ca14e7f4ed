"""Parquet conversion (cartforensics.jobs.convert) and reading it back
(cartforensics.io.dataset): the
data survives byte for byte, outcomes are replay's, the files are plain Parquet that pyarrow
and DuckDB read, and incremental runs give what a full run gives."""

from __future__ import annotations

import gzip
import hashlib
import importlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from cartforensics import read_events, replay
from cartforensics.cli.app import main
from cartforensics.go.json import marshal
from cartforensics.io.dataset import (
    EVENTS_SCHEMA,
    DatasetError,
    carts_table,
    dataset_table,
    events_dataset,
    open_dataset,
    read_manifest,
)

# the module, not the function of the same name the package exports
conv = importlib.import_module("cartforensics.jobs.convert")


def rec(ts: Any, type_: str, payload: Any) -> bytes:
    return json.dumps({"ts": ts, "type": type_, "payload": payload},
                      separators=(",", ":")).encode()


def add(ts: Any, sku: str, qty: int = 1, price: int = 100) -> bytes:
    return rec(ts, "AddItem", {"sku": sku, "quantity": qty, "price": price})


LONG = rec(1700000100, "AddItem", {"sku": "L" * (300 * 1024), "quantity": 1})  # > 256 KiB


def write_hostile(d: Path) -> Path:
    """Every kind of line the converter must carry through unchanged."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "writer.events.log").write_bytes(b"".join(
        add(1700000000 + i, f"s{i}") + b"\n" for i in range(3)
    ) + rec(1700000010, "ChangeQuantity", {"Id": 1, "quantity": 5}) + b"\n")
    (d / "hostile.events.log").write_bytes(b"".join([
        add("2024-01-01T00:00:00.123456789Z", "x") + b"\r\n",  # CRLF, ns precision
        b'{"ts":"2024-01-01T00:00:01Z","type":"AddItem","payload":{"sku":"\xff\xfe","quantity"'
        b':1}}\n',  # invalid UTF-8 inside a string
        b"\x00\x00nul\x00\n",  # NUL bytes
        b"lone\rcarriage\rreturns\n",
        b"\n",  # empty line
        rec(None, "AddItem", {"sku": "n", "quantity": 1}) + b"\n",  # null ts
        b'{"type":"AddItem","payload":{"sku":"m","quantity":1}}\n',  # missing ts
        rec("9999-12-31T23:59:59Z", "AddItem", {"sku": "far", "quantity": 1}) + b"\n",
        rec(-86400.5, "AddItem", {"sku": "neg", "quantity": 1}) + b"\n",  # 1969, fraction
        LONG + b"\n",  # over Go's 256 KiB token limit
        add(1700000200, "after-long") + b"\n",  # not_reached in go mode
        add(1700000300, "no-newline"),  # no final newline
    ]))
    (d / "empty.events.log").write_bytes(b"")
    (d / "zipped.events.log.gz").write_bytes(
        gzip.compress(add("2024-02-01T00:00:00Z", "z") + b"\n" + add(1706745600, "y") + b"\n")
    )
    # one cart, two files: one log (the .log's lines, then the .gz's), as read_events
    (d / "dup.events.log").write_bytes(add("2024-03-01T00:00:00Z", "d1") + b"\n")
    (d / "dup.events.log.gz").write_bytes(gzip.compress(
        rec("2024-03-02T00:00:00Z", "ChangeQuantity", {"Id": 1, "quantity": 3}) + b"\n"))
    (d / "README.txt").write_text("not a log\n")
    return d


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return write_hostile(tmp_path / "logs")


@pytest.fixture
def dataset(src: Path, tmp_path: Path) -> Path:
    s = conv.convert(src, tmp_path / "ds", workers=1, progress=False)
    assert s.ok, s.problems
    return tmp_path / "ds"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def frame_of(path: Path) -> pd.DataFrame:
    df = read_events(path, progress=False)
    df.attrs.clear()
    return df


# -- the data round-trips ----------------------------------------------------------------------


def test_open_dataset_equals_read_events(src: Path, dataset: Path) -> None:
    got = open_dataset(dataset)
    got.attrs.clear()
    pd.testing.assert_frame_equal(got, frame_of(src))


def test_restore_is_byte_identical(src: Path, dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "restored"
    s = conv.restore(dataset, out)
    assert s.ok and s.verified == s.files == 6 and not s.skipped, str(s)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in src.iterdir() if ".events.log" in p.name)
    manifest = read_manifest(dataset)
    assert manifest is not None
    for entry in manifest["files"]:
        original = (src / entry["path"]).read_bytes()
        back = (out / entry["path"]).read_bytes()
        assert entry["sha256"] == sha(original) and entry["size"] == len(original)
        if entry["compression"] == "gzip":  # written back gzip-compressed: same content
            assert gzip.decompress(back) == gzip.decompress(original)
            assert sha(gzip.decompress(back)) == entry["content_sha256"]
        else:
            assert back == original and sha(back) == entry["sha256"] == entry["content_sha256"]
    restored = frame_of(out)
    pd.testing.assert_frame_equal(restored, frame_of(src))


def test_restore_refuses_a_non_empty_directory(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not an empty directory"):
        conv.restore(dataset, out)
    assert (out / "keep.txt").read_text() == "mine"


def test_outcomes_and_carts_are_replays(src: Path, dataset: Path) -> None:
    rows = dataset_table(dataset).to_pandas()
    carts = carts_table(dataset).to_pandas().set_index("source")
    assert sorted(carts.index) == sorted(rows["source"].unique().tolist() + ["empty.events.log"])
    # a cart's files (dup.events.log, then dup.events.log.gz) are one log, as read_events has it
    for cid, part in rows.groupby("cart_id"):
        sources = sorted(part["source"].unique())
        ev = read_events([src / s for s in sources], progress=False)
        ev.attrs.clear()
        part = part.sort_values(["source", "line"])
        for mode in ("go", "lenient"):
            r = replay(ev, mode=mode)
            assert part[f"outcome_{mode}"].tolist() == r.outcomes["outcome"].astype(str).tolist()
            want = [e if isinstance(e, str) else None for e in r.outcomes["error"]]
            got = [e if isinstance(e, str) else None for e in part[f"error_{mode}"]]
            assert got == want
            upto = 0
            for source in sources:  # each file: its cart's state after the file's last line
                mine = (part["source"] == source).to_numpy()
                upto += int(mine.sum())
                state = r.state_at(cid, line=upto)
                assert json.loads(carts.loc[source, f"state_{mode}"]) == state
                counts = pd.Series(part.loc[mine, f"outcome_{mode}"]).value_counts()
                assert carts.loc[source, f"{mode}_applied"] == counts.get("applied", 0)
            assert upto == len(ev)
        assert carts.loc[sources, "lines"].sum() == len(ev)
    hostile = rows[rows["source"] == "hostile.events.log"].set_index("line")
    assert hostile.loc[10, "outcome_go"] == "too_long"
    assert hostile.loc[11, "outcome_go"] == "not_reached"
    assert hostile.loc[10, "outcome_lenient"] == "applied"
    # the .gz's ChangeQuantity changes item 1, which dup.events.log added: one log
    assert rows.loc[rows["source"] == "dup.events.log.gz", "outcome_lenient"].tolist() == [
        "applied"]
    both = json.loads(carts.loc["dup.events.log.gz", "state_lenient"])
    assert [i["qty"] for i in both["items"]] == [3]
    assert [i["qty"] for i in json.loads(carts.loc["dup.events.log", "state_lenient"])[
        "items"]] == [1]
    empty = carts.loc["empty.events.log"]
    assert empty["lines"] == 0 and json.loads(empty["state_go"])["items"] == []


def test_carts_rows_are_marshal_texts_and_readable_ts(tmp_path: Path) -> None:
    """Each carts row's states are byte for byte Go's json.Marshal of the replay's state (the
    HTML and line-separator escapes too), and its first/last/min/max ts are those of the
    file's readable ts, null for a file with none."""
    src = write_hostile(tmp_path / "logs")
    (src / "esc.events.log").write_bytes(
        add(1700000000, "a<b>&c\u2028d\u2029e") + b"\n" + add(1690000000, "early") + b"\n")
    (src / "nots.events.log").write_bytes(rec(None, "AddItem", {"sku": "n"}) + b"\nnot json\n")
    s = conv.convert(src, tmp_path / "ds", workers=1, progress=False)
    assert s.ok, s.problems
    carts = carts_table(tmp_path / "ds").to_pandas().set_index("source")
    assert "\\u003cb\\u003e\\u0026c\\u2028d\\u2029e" in carts.loc["esc.events.log", "state_lenient"]
    for cid in ("writer", "hostile", "zipped", "esc", "nots", "empty"):
        source = f"{cid}.events.log" + (".gz" if cid == "zipped" else "")
        ev = read_events(src / source, progress=False)
        for mode in ("go", "lenient"):
            r = replay(ev, mode=mode)
            assert carts.loc[source, f"state_{mode}"] == marshal(r.final_state(cid)).decode()
        ts = ev["ts"].dropna()
        want = [None] * 4 if ts.empty else [ts.iloc[0], ts.iloc[-1], ts.min(), ts.max()]
        got = carts.loc[source, ["first_ts", "last_ts", "min_ts", "max_ts"]].tolist()
        assert [None if pd.isna(g) else g for g in got] == [
            None if w is None else w.floor("us") for w in want], source
    assert carts.loc["nots.events.log", ["first_ts", "max_ts"]].isna().all()
    assert carts.loc["esc.events.log", "min_ts"] < carts.loc["esc.events.log", "first_ts"]


def test_marshalled_states_equal_marshal_for_every_character() -> None:
    """The carts rows' states are escaped by Arrow's kernels: byte for byte what marshal (Go's
    json.Marshal) writes, for every character up to U+07FF, the separators and beyond."""
    import orjson

    chars = "".join(map(chr, [*range(0x800), 0x2027, 0x2028, 0x2029, 0x202A, 0xFFFD, 0x1F600]))
    values = [{"s": chars, "<k&>": [chars[::-1], 1]}, {}, [], "", "\u2028\u2028&&"]
    got = conv._marshalled([orjson.dumps(v) for v in values]).to_pylist()
    assert got == [marshal(v).decode() for v in values]
    assert conv._marshalled([]).to_pylist() == []


# -- plain Parquet, read by others ------------------------------------------------------------


def _no_special_types(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t) or "view" in str(t):
        return False
    return all(_no_special_types(t.field(i).type) for i in range(t.num_fields))


def test_files_have_plain_types(dataset: Path) -> None:
    files = sorted(dataset.rglob("*.parquet"))
    assert any("date=__HIVE_DEFAULT_PARTITION__" in str(f) for f in files)
    for f in files:
        schema = pq.read_schema(f)
        assert all(_no_special_types(field.type) for field in schema), (f, schema)
        if "events" in f.parts:
            assert schema.remove_metadata().equals(EVENTS_SCHEMA)
            assert schema.field("ts").type == pa.timestamp("us", tz="UTC")
            md = pq.ParquetFile(f).metadata
            assert md.row_group(0).column(0).compression == "ZSTD"


def test_pyarrow_dataset_reads_it(dataset: Path) -> None:
    d = pads.dataset(dataset / "events", format="parquet", partitioning="hive")
    t = d.to_table()
    assert t.num_rows == read_manifest(dataset)["lines"] == 20
    nulls = t.filter(pa.compute.is_null(t["date"]))
    # the 9999 line is readable but beyond ns range (NaT) in read_events: no date either
    assert sorted(nulls["line"].to_pylist()) == [3, 4, 5, 6, 7, 8]
    assert pads.dataset(dataset / "carts", format="parquet").to_table().num_rows == 6


def test_duckdb_reads_it(dataset: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    ev = f"read_parquet('{dataset}/events/*/*.parquet', hive_partitioning=true)"
    n, carts, nulls = con.execute(
        f"select count(*), count(distinct cart_id), count(*) filter (where date is null) "
        f"from {ev}").fetchone()
    assert (n, carts, nulls) == (20, 4, 6)
    ts_type, raw_type = con.execute(f"select typeof(ts), typeof(raw) from {ev} limit 1").fetchone()
    assert ts_type == "TIMESTAMP WITH TIME ZONE" and raw_type == "BLOB"
    raw = con.execute(f"select raw from {ev} where source = 'hostile.events.log' and line = 2"
                  ).fetchone()[0]
    assert b"\xff\xfe" in raw
    applied = con.execute(f"select sum(lenient_applied) from read_parquet('{dataset}/carts/*')"
                      ).fetchone()[0]
    assert applied == con.execute(f"select count(*) from {ev} where outcome_lenient = 'applied'"
                              ).fetchone()[0]


def test_filters_are_pushed_down(src: Path, dataset: Path) -> None:
    full = frame_of(src)
    got = open_dataset(dataset, carts=["writer", "dup"])
    want = full[full["cart_id"].isin(["writer", "dup"])].reset_index(drop=True)
    want["cart_id"] = want["cart_id"].astype(str).astype(got["cart_id"].dtype)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_categorical=False)
    start, end = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-02-02", tz="UTC")
    got = open_dataset(dataset, start="2024-01-01", end="2024-02-02")
    mask = (full["ts"] >= start) & (full["ts"] < end)
    assert sorted(zip(got["cart_id"].astype(str), got["line"], strict=True)) == sorted(
        zip(full.loc[mask, "cart_id"].astype(str), full.loc[mask, "line"], strict=True))
    # pruning: a date range only opens the fragments of its dates
    from cartforensics.io.dataset import dataset_filter

    dset = events_dataset(dataset)
    every = list(dset.get_fragments())
    some = list(dset.get_fragments(filter=dataset_filter(start="2024-02-01", end="2024-02-02")))
    assert 0 < len(some) < len(every)
    assert all("date=2024-02-01" in f.path for f in some)


# -- idempotent, atomic, refusing -------------------------------------------------------------


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in ("manifest.json", "provenance.json")}  # run records


def _manifest_data(root: Path) -> dict[str, Any]:
    m = read_manifest(root)
    assert m is not None
    for r in m["runs"]:
        r.pop("created")
    return m


def test_same_input_gives_the_same_dataset(src: Path, dataset: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    again = tmp_path / "again"
    conv.convert(src, again, workers=1, progress=False)
    assert _files(again) == _files(dataset)
    assert _manifest_data(again) == _manifest_data(dataset)
    conv.convert(src, dataset, workers=1, progress=False)  # replaces our own dataset
    assert _files(dataset) == _files(again)
    # one batch per cart (dup's two files stay together): a real process pool, and the same
    # bytes as in-process
    monkeypatch.setattr(conv, "BATCH_BYTES", 1)
    one, two = tmp_path / "one", tmp_path / "two"
    conv.convert(src, one, workers=1, progress=False)
    conv.convert(src, two, workers=2, progress=False)
    assert len({p.name for p in (two / "carts").iterdir()}) == 5
    assert _files(one) == _files(two)
    assert _manifest_data(one) == _manifest_data(two)
    pd.testing.assert_frame_equal(open_dataset(two), open_dataset(dataset))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


def test_refuses_what_is_not_a_dataset(src: Path, tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("precious")
    d = tmp_path / "mine"
    d.mkdir()
    (d / "manifest.json").write_text('{"something": "else"}')
    for target in (f, d, src):
        with pytest.raises(DatasetError, match="not a cartforensics dataset"):
            conv.convert(src, target, workers=1, progress=False)
    assert f.read_text() == "precious"
    assert (d / "manifest.json").read_text() == '{"something": "else"}'
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_crash_leaves_the_old_dataset(src: Path, dataset: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    before = _files(dataset)
    (src / "new.events.log").write_bytes(add(1700000000, "q") + b"\n")

    def boom(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(conv, "_run_batch", boom)
    for incremental in (False, True):
        with pytest.raises(KeyboardInterrupt):
            conv.convert(src, dataset, workers=1, incremental=incremental, progress=False)
        assert _files(dataset) == before and read_manifest(dataset) is not None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# -- bad input --------------------------------------------------------------------------------


def test_a_truncated_gzip_is_a_problem_not_a_failure(src: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    whole = gzip.compress(b"".join(add(1700000000 + i, f"k{i}") + b"\n" for i in range(200)))
    (src / "broken.events.log.gz").write_bytes(whole[: len(whole) // 2])
    dst = tmp_path / "ds"
    s = conv.convert(src, dst, workers=1, progress=False)
    assert not s.ok and [p["path"] for p in s.problems] == ["broken.events.log.gz"]
    assert "broken gzip stream" in s.problems[0]["error"]
    entry = {f["path"]: f for f in read_manifest(dst)["files"]}["broken.events.log.gz"]
    assert entry["problems"] and entry["lines"] > 0  # what came out before the break
    assert read_manifest(dst)["lines"] == 20 + entry["lines"]  # the others are all there
    out = tmp_path / "out"
    r = conv.restore(dst, out)
    assert r.ok
    assert sha(gzip.decompress((out / "broken.events.log.gz").read_bytes())) == entry[
        "content_sha256"]
    assert main(["convert", str(src), str(tmp_path / "ds2"), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "broken.events.log.gz" in captured.out and "problem" in captured.err


def test_an_unreadable_file_is_recorded(tmp_path: Path) -> None:
    task = conv.FileTask(str(tmp_path / "gone.events.log"), "gone.events.log", "gone")
    result = conv.convert_files([task])
    assert result.events.num_rows == 0
    (f,) = result.files
    assert f.entry["sha256"] is None and f.entry["problems"][0].startswith("cannot read:")


# -- incremental -----------------------------------------------------------------------------


def _rows(ds: Path) -> pd.DataFrame:
    t = dataset_table(ds).drop_columns(["raw"]).to_pandas()
    return t.sort_values(["source", "line"]).reset_index(drop=True)


@pytest.mark.parametrize("change", ["gz changed", "log grew", "nothing"])
def test_incremental_replays_a_carts_files_as_one_log(src: Path, dataset: Path,
                                                      tmp_path: Path, change: str) -> None:
    if change == "gz changed":  # dup.events.log unchanged: replayed again, not rewritten
        (src / "dup.events.log.gz").write_bytes(gzip.compress(
            rec("2024-03-03T00:00:00Z", "ChangeQuantity", {"Id": 1, "quantity": 9}) + b"\n"
            + rec("2024-03-04T00:00:00Z", "RemoveItem", {"Id": 2}) + b"\n"))
    elif change == "log grew":  # a tail of dup.events.log: the .gz's outcomes change with it
        with open(src / "dup.events.log", "ab") as fh:
            fh.write(rec(1709251300, "RemoveItem", {"Id": 1}) + b"\n")
    s = conv.convert(src, dataset, workers=1, incremental=True, progress=False)
    assert s.ok
    want_lines = {"gz changed": 2, "log grew": 1 + 1, "nothing": 0}[change]
    assert s.lines == want_lines
    full = tmp_path / "full"
    conv.convert(src, full, workers=1, progress=False)
    pd.testing.assert_frame_equal(_rows(dataset), _rows(full))
    got = carts_table(dataset).to_pandas().set_index("source").sort_index()
    want = carts_table(full).to_pandas().set_index("source").sort_index()
    pd.testing.assert_frame_equal(got, want)
    ev = read_events([src / "dup.events.log", src / "dup.events.log.gz"], progress=False)
    r = replay(ev, mode="lenient")
    assert json.loads(got.loc["dup.events.log.gz", "state_lenient"]) == r.final_state("dup")
    dup = _rows(dataset).query("cart_id == 'dup'")
    assert dup["outcome_lenient"].tolist() == r.outcomes["outcome"].astype(str).tolist()


def test_incremental_equals_a_full_conversion(src: Path, dataset: Path, tmp_path: Path) -> None:
    with open(src / "writer.events.log", "ab") as fh:  # grows: a tail whose outcome needs the
        fh.write(rec(1700000020, "ChangeQuantity", {"Id": 2, "quantity": 7}) + b"\n")  # prefix
    with open(src / "hostile.events.log", "ab") as fh:  # its last line had no newline
        fh.write(b"\n" + add(1700000400, "late") + b"\n")
    (src / "fresh.events.log").write_bytes(add("2024-05-01T00:00:00Z", "f") + b"\n")
    data = (src / "dup.events.log").read_bytes()
    (src / "dup.events.log").write_bytes(data.replace(b"d1", b"D1") + add(1, "x") + b"\n")
    (src / "zipped.events.log.gz").write_bytes(gzip.compress(add(1706745601, "g") + b"\n"))
    (src / "empty.events.log").unlink()
    s = conv.convert(src, dataset, workers=1, incremental=True, progress=False)
    assert s.ok
    assert s.new == ["fresh.events.log"] and s.appended == ["writer.events.log"]
    reasons = {r["path"]: r["reason"] for r in s.reconverted}
    assert set(reasons) == {"hostile.events.log", "dup.events.log", "dup.events.log.gz",
                            "zipped.events.log.gz"}
    assert "an earlier file of its cart changed" in reasons["dup.events.log.gz"]  # unchanged
    assert s.missing == ["empty.events.log"] and s.unchanged == 0
    assert s.lines == 1 + 13 + 1 + 2 + 1 + 1  # only the new rows of the tail were written

    full = tmp_path / "full"
    conv.convert(src, full, workers=1, progress=False)
    pd.testing.assert_frame_equal(_rows(dataset), _rows(full))
    tail = _rows(dataset).query("source == 'writer.events.log' and line == 5").iloc[0]
    assert tail["outcome_lenient"] == "applied" and tail["offset"] > 0  # item 2 came before
    got = carts_table(dataset).to_pandas().set_index("source")
    want = carts_table(full).to_pandas().set_index("source")
    pd.testing.assert_frame_equal(got.drop(index="empty.events.log"), want)
    manifest = read_manifest(dataset)
    assert manifest["run"] == 1 and len(manifest["runs"]) == 2
    writer = {f["path"]: f for f in manifest["files"]}["writer.events.log"]
    assert writer["lines"] == 5 and writer["converted_bytes"] == (
        src / "writer.events.log").stat().st_size
    # referenced fragments exist, and every fragment is referenced
    frags = {fr for f in manifest["files"] for fr in f["fragments"]}
    assert frags == {p.relative_to(dataset).as_posix() for p in dataset.rglob("*.parquet")}
    for fr in frags:  # rewritten fragments keep the schema
        if fr.startswith("events/"):
            assert pq.read_schema(dataset / fr).remove_metadata().equals(EVENTS_SCHEMA)

    again = conv.convert(src, dataset, workers=1, incremental=True, progress=False)
    assert again.lines == 0 and again.unchanged == 6 and not again.reconverted
    pd.testing.assert_frame_equal(_rows(dataset), _rows(full))


def test_incremental_tail_after_a_too_long_line_is_not_reached(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    d.mkdir()
    (d / "a.events.log").write_bytes(add(1700000000, "a") + b"\n" + LONG + b"\n")
    ds = tmp_path / "ds"
    conv.convert(d, ds, workers=1, progress=False)
    with open(d / "a.events.log", "ab") as fh:
        fh.write(add(1700000500, "b") + b"\n")
    conv.convert(d, ds, workers=1, incremental=True, progress=False)
    rows = _rows(ds)
    assert rows["outcome_go"].tolist() == ["malformed", "too_long", "not_reached"]
    assert rows["error_go"].iloc[2] == "not reached: the scanner stopped at line 2"


def test_incremental_shrunk_file_is_reconverted(src: Path, dataset: Path) -> None:
    p = src / "writer.events.log"
    p.write_bytes(p.read_bytes()[:10])
    s = conv.convert(src, dataset, workers=1, incremental=True, progress=False)
    (r,) = s.reconverted
    assert r["path"] == "writer.events.log" and "shrank" in r["reason"]
    assert open_dataset(dataset, carts="writer")["raw"].tolist() == [p.read_bytes()]


# -- command line -----------------------------------------------------------------------------


def test_cli_convert_and_restore(src: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture) -> None:
    dst, out = tmp_path / "ds", tmp_path / "out"
    assert main(["convert", str(src), str(dst), "--workers", "1", "--quiet"]) == 0
    assert "6 files" in capsys.readouterr().out
    assert main(["convert", str(src), str(dst), "--incremental", "--quiet"]) == 0
    assert "unchanged: 6" in capsys.readouterr().out
    assert main(["restore", str(dst), str(out)]) == 0
    assert "6 verified" in capsys.readouterr().out
    assert (out / "hostile.events.log").read_bytes() == (src / "hostile.events.log").read_bytes()


@pytest.mark.parametrize("args", [
    ["convert", "{src}", "{tmp}/x", "--workers", "0"],
    ["convert", "{src}", "{tmp}/x", "--workers", "two"],
    ["convert", "{tmp}/nowhere", "{tmp}/x"],
    ["convert", "{src}", "{src}/README.txt"],
    ["convert", "{src}"],
    ["restore", "{src}", "{tmp}/x"],
])
def test_cli_bad_arguments(args: list[str], src: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture) -> None:
    argv = [a.format(src=src, tmp=tmp_path) for a in args]
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("cartforensics:") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert (src / "README.txt").read_text() == "not a log\n"
    assert not (tmp_path / "x").exists()


def test_restore_needs_a_dataset(src: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError):
        conv.restore(src, tmp_path / "out")
    shutil.rmtree(tmp_path / "out", ignore_errors=True)


def test_convert_as_go_1_27_keeps_its_toolchain(tmp_path: Path) -> None:
    """go_version reaches the stored outcomes and the manifest; reading the dataset as another
    toolchain is refused; an incremental run as another toolchain converts everything anew."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "e.events.log").write_bytes(
        b'{"ts":"2024-01-01T00:00:00\\u005a","type":"AddItem","payload":{"sku":"x","quantity":1}}\n'
        b'{"ts":1704067200,"type":"RemoveItem","payload":{"Id":1}}\n')
    dst = tmp_path / "ds"
    conv.convert(src, dst, workers=1, progress=False, go_version="1.27")
    manifest = json.loads((dst / "manifest.json").read_text())
    assert manifest["go_version"] == "1.27"
    df = read_events(str(dst), go_version="1.27")
    assert df.attrs["go_version"] == "1.27"
    from cartforensics.io.dataset import open_dataset

    cols = ["line", "outcome_go", "envelope_error"]
    stored = open_dataset(dst, columns=cols)
    assert stored["outcome_go"].tolist() == ["applied", "malformed"]
    assert stored["envelope_error"].tolist()[1] == (
        "json: cannot unmarshal number into Go struct field .ts of type time.Time")
    assert replay(df).final_state("e")["items"][0]["sku"] == "x"
    with pytest.raises(ValueError, match="converted as Go 1.27 .* go_version='1.25'"):
        read_events(str(dst), go_version="1.25")
    summary = conv.convert(src, dst, workers=1, progress=False, incremental=True)
    assert any("converted as Go 1.27" in n for n in summary.notes)
    assert json.loads((dst / "manifest.json").read_text())["go_version"] == "1.25"
    assert open_dataset(dst, columns=cols)["outcome_go"].tolist() == ["malformed", "malformed"]
# -- a plain script (no __main__ guard) -------------------------------------------------------

PLAIN_SCRIPT = """\
import sys
import cartforensics as cf
import cartforensics.jobs.convert

cartforensics.jobs.convert.BATCH_FILES = 50  # several batches: the pool really starts two workers
summary = cf.convert(sys.argv[1], sys.argv[2], workers=2, progress=False)
print("LINES", summary.lines, "FILES", summary.files)
"""


@pytest.mark.parametrize("pool", ["process", "thread"])
def test_convert_from_a_plain_script_without_main_guard(tmp_path: Path, pool: str) -> None:
    """Worker processes must not run the calling script again (spawn/forkserver would)."""
    import subprocess
    import sys

    from cartforensics.jobs.sample import write_sample

    src = tmp_path / "logs"
    write_sample(src, carts=300)
    script = tmp_path / "plain.py"
    script.write_text(PLAIN_SCRIPT.replace("progress=False", f"progress=False, pool={pool!r}"))
    saved = conv.BATCH_FILES
    try:  # the script's batches
        conv.BATCH_FILES = 50
        expected = conv.convert(src, tmp_path / "ref", workers=1, progress=False)
    finally:
        conv.BATCH_FILES = saved
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.run([sys.executable, str(script), str(src), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"LINES {expected.lines} FILES 300" in proc.stdout
    assert "worker process died" not in proc.stderr
    got = dataset_table(tmp_path / "out").combine_chunks()
    assert got.equals(dataset_table(tmp_path / "ref").combine_chunks())
