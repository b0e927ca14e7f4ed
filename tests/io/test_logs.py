"""``read_events``: sources, the line cut (nothing lost), columns and dtypes.

The Go differential tests (test_events_go.py) check the decoding of single lines against Go; these
tests check the library's own contract: which files are read and in which order, that every byte
of every file is accounted for, and what the columns hold.
"""

from __future__ import annotations

import gzip
import json
import tempfile
import warnings
import zlib
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cartforensics import NoLogsError, find_logs, read_events

MAX_TOKEN = 262_144
NOT_A_STRING = "Time.UnmarshalJSON: input is not a JSON string"


def rec(ts: object, type_: str = "AddItem", payload: object | None = None) -> bytes:
    """One record as the seed's writer marshals it (no spaces)."""
    if payload is None:
        payload = {"sku": "s", "quantity": 1}
    obj = {"ts": ts, "type": type_, "payload": payload}
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def physical_lines(data: bytes) -> list[tuple[bytes, bool]]:
    """My own cut: (bytes before the newline, ended by a newline) per physical line."""
    if not data:
        return []
    parts = data.split(b"\n")
    out = [(p, True) for p in parts[:-1]]
    if parts[-1]:
        out.append((parts[-1], False))
    return out


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


SAMPLE = b"\n".join(
    [
        rec("2024-01-02T03:04:05Z"),
        rec(1700000000),
        b"",
        b"not json at all",
        rec(None, "RemoveItem", {"Id": 1}) + b"\r",
        rec("2024-01-02T03:04:06+02:00", "OrderCreated", {"orderId": "o-1", "status": "x"}),
    ]
) + b"\n" + rec("2024-01-02T03:04:07Z")  # a final fragment without its newline


# --------------------------------------------------------------------------------- sources


def test_single_file(tmp_path: Path) -> None:
    f = write(tmp_path / "cart-9.events.log", SAMPLE)
    df = read_events(f)
    expected = physical_lines(SAMPLE)
    assert len(df) == len(expected) == 7
    assert set(df["cart_id"]) == {"cart-9"}
    assert [bytes(x) for x in df["raw"]] == [p for p, _ in expected]
    assert df["newline"].tolist() == [nl for _, nl in expected]
    assert df.attrs["problems"] == []


def test_str_and_pathlike_sources_are_the_same(tmp_path: Path) -> None:
    f = write(tmp_path / "c.events.log", SAMPLE)
    pd.testing.assert_frame_equal(read_events(f), read_events(str(f)))


def test_gz_file_gives_the_same_rows_as_the_plain_file(tmp_path: Path) -> None:
    plain = read_events(write(tmp_path / "p" / "cart-7.events.log", SAMPLE))
    gz_path = write(tmp_path / "z" / "cart-7.events.log.gz", SAMPLE)
    assert gz_path.read_bytes()[:2] == b"\x1f\x8b"  # really compressed on disk
    gz = read_events(gz_path)
    assert set(gz["cart_id"]) == {"cart-7"}
    pd.testing.assert_frame_equal(plain, gz)


def test_directory_reads_only_log_files_in_cart_id_order(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    carts = ["b", "a", "B", "a-2", "\u00e4", "a.x", "10", "9"]
    for i, cid in enumerate(carts):
        suffix = ".events.log.gz" if i % 3 == 0 else ".events.log"
        write(d / f"{cid}{suffix}", rec("2024-01-01T00:00:00Z") + b"\n" + rec(i) + b"\n")
    # things that are not logs
    write(d / "README.md", b"# not a log\n")
    write(d / "c.events.log.bak", rec(1) + b"\n")
    write(d / "c.events.logx", rec(1) + b"\n")
    write(d / "c.events.gz", rec(1) + b"\n")
    (d / "sub.events.log").mkdir()
    write(d / "sub.events.log" / "deep.events.log", rec(1) + b"\n")

    df = read_events(d)
    seen = list(dict.fromkeys(df["cart_id"]))
    assert seen == sorted(carts, key=lambda s: s.encode("utf-8"))
    assert len(df) == 2 * len(carts)
    # each cart's rows are contiguous and numbered from 1
    for cid, g in df.groupby("cart_id", sort=False):
        assert g["line"].tolist() == [1, 2], cid
    assert [f.cart_id for f in find_logs(d)] == seen


def test_glob_source(tmp_path: Path) -> None:
    write(tmp_path / "x.events.log", rec(1) + b"\n")
    write(tmp_path / "y.events.log", rec(2) + b"\n" + rec(3) + b"\n")
    write(tmp_path / "y2.events.log.gz", rec(4) + b"\n")
    df = read_events(str(tmp_path / "*.events.log"))
    assert df["cart_id"].tolist() == ["x", "y", "y"]
    df = read_events(str(tmp_path / "y*"))
    assert df["cart_id"].tolist() == ["y", "y", "y2"]


def test_list_source_mixes_files_and_directories(tmp_path: Path) -> None:
    write(tmp_path / "d" / "m.events.log", rec(1) + b"\n")
    write(tmp_path / "d" / "k.events.log", rec(1) + b"\n" + rec(2))
    single = write(tmp_path / "e" / "l.events.log.gz", rec(3) + b"\n")
    df = read_events([tmp_path / "d", str(single)])
    assert list(dict.fromkeys(df["cart_id"])) == ["k", "l", "m"]
    assert df.groupby("cart_id").size().to_dict() == {"k": 2, "l": 1, "m": 1}


def test_list_naming_a_file_twice_reads_it_once(tmp_path: Path) -> None:
    f = write(tmp_path / "q.events.log", rec(1) + b"\n" + rec(2) + b"\n")
    df = read_events([f, str(f), tmp_path])
    assert df["line"].tolist() == [1, 2]


@pytest.mark.parametrize("name", ["nope.events.log", "nodir", "no*such*.events.log"])
def test_missing_path_raises_no_logs_error_naming_it(tmp_path: Path, name: str) -> None:
    missing = tmp_path / name
    with pytest.raises(NoLogsError) as exc:
        read_events(missing)
    assert str(missing) in str(exc.value)
    assert isinstance(exc.value, FileNotFoundError)


def test_missing_path_in_a_list_raises(tmp_path: Path) -> None:
    ok = write(tmp_path / "a.events.log", rec(1) + b"\n")
    with pytest.raises(NoLogsError, match="ghost"):
        read_events([ok, tmp_path / "ghost"])


def test_directory_without_logs_raises(tmp_path: Path) -> None:
    d = tmp_path / "empty-ish"
    write(d / "notes.txt", b"hello\n")
    with pytest.raises(NoLogsError) as exc:
        read_events(d)
    assert str(d) in str(exc.value)


def test_empty_list_raises() -> None:
    with pytest.raises(NoLogsError):
        read_events([])


def _broken_gz(tmp_path: Path) -> tuple[Path, bytes]:
    """A .gz cut mid-stream, and the bytes zlib can still recover from it."""
    lines = b"".join(
        rec(f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z", "AddItem",
            {"sku": f"s{i}", "quantity": 1 + i % 3}) + b"\n"
        for i in range(3000)
    )
    z = gzip.compress(lines)
    cut = z[: len(z) // 2]
    path = tmp_path / "broken.events.log.gz"
    path.write_bytes(cut)
    recovered = zlib.decompressobj(wbits=31).decompress(cut)
    assert 0 < len(recovered) < len(lines)
    assert lines.startswith(recovered)
    return path, recovered


def test_broken_gzip_other_files_are_read_and_the_problem_is_reported(tmp_path: Path) -> None:
    path, _ = _broken_gz(tmp_path)
    good = rec("2024-01-01T00:00:00Z") + b"\n" + rec(5) + b"\n"
    write(tmp_path / "good.events.log", good)
    write(tmp_path / "zz.events.log.gz", good)
    with pytest.warns(UserWarning, match="broken.events.log.gz"):
        df = read_events(tmp_path)
    problems = df.attrs["problems"]
    assert len(problems) == 1
    (p,) = problems
    assert p["path"].endswith("broken.events.log.gz")
    assert p["cart_id"] == "broken"
    assert p["error"]  # a reason is given
    assert "gzip" in p["error"].lower() or "compressed" in p["error"].lower()
    for cid in ("good", "zz"):
        g = df[df["cart_id"] == cid]
        assert [bytes(x) for x in g["raw"]] == [x for x, _ in physical_lines(good)]


def test_broken_gzip_keeps_the_lines_decoded_before_the_break(tmp_path: Path) -> None:
    path, recovered = _broken_gz(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = read_events(path)
    complete = [x for x, nl in physical_lines(recovered) if nl]
    kept = [bytes(x) for x, nl in zip(df["raw"], df["newline"], strict=True) if nl]
    assert kept == complete
    assert len(complete) > 100


# ------------------------------------------------------------------- nothing is lost


CHUNKS = st.one_of(
    st.binary(max_size=12),
    st.sampled_from(
        [b"\n", b"\r\n", b"\r", b"\r\r\n", b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\n\n",
         b'{"ts":"2024-01-02T03:04:05Z","type":"AddItem","payload":{"sku":"a","quantity":1}}',
         b'{"ts":1700000000,"type":"RemoveItem","payload":{"Id":1}}', b"{", b"}", b'"', b"null"]
    ),
)


def _check_rows(df: pd.DataFrame, data: bytes) -> None:
    expected = physical_lines(data)
    n = len(expected)
    assert len(df) == n
    assert df["line"].tolist() == list(range(1, n + 1))
    raws = [bytes(x) for x in df["raw"]]
    newlines = df["newline"].tolist()
    assert b"".join(r + (b"\n" if nl else b"") for r, nl in zip(raws, newlines, strict=True)) \
        == data
    assert raws == [p for p, _ in expected]
    assert newlines == [nl for _, nl in expected]
    offsets = df["offset"].tolist()
    lengths = df["length"].tolist()
    pos = 0
    for i in range(n):
        assert offsets[i] == pos
        assert lengths[i] == len(raws[i])
        assert data[offsets[i] : offsets[i] + lengths[i]] == raws[i]
        pos += lengths[i] + (1 if newlines[i] else 0)
    assert pos == len(data)
    first_long = next((i for i, r in enumerate(raws) if len(r) >= MAX_TOKEN), None)
    expected_flags = [i == first_long for i in range(n)]
    assert df["too_long"].tolist() == expected_flags


@settings(max_examples=60, deadline=None)
@given(
    chunks=st.lists(CHUNKS, max_size=25),
    final_newline=st.booleans(),
    compressed=st.booleans(),
)
def test_nothing_is_lost(chunks: list[bytes], final_newline: bool, compressed: bool) -> None:
    data = b"".join(chunks)
    if final_newline:
        data += b"\n"
    suffix = ".events.log.gz" if compressed else ".events.log"
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp) / f"h{suffix}", data)
        if not data:
            df = read_events(path)
            assert len(df) == 0
            return
        df = read_events(path)
    _check_rows(df, data)
    assert set(df["cart_id"]) == {"h"}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    layout=st.lists(
        st.tuples(st.sampled_from(["short", "long"]), st.integers(-3, 3), st.booleans()),
        min_size=1, max_size=5,
    ),
    final_newline=st.booleans(),
)
def test_too_long_only_on_the_first_long_line_of_each_cart(
    layout: list[tuple[str, int, bool]], final_newline: bool
) -> None:
    """Lines around the 256 KiB limit in two carts: each cart flags only its own first line of
    length >= 262,144 (\\r counted), and no line at all when it has none."""
    parts = []
    for kind, delta, cr in layout:
        size = 20 if kind == "short" else MAX_TOKEN + delta
        body = (b"x" * (size - 1) + b"\r") if cr else b"y" * size
        parts.append(body)
    data = b"\n".join(parts) + (b"\n" if final_newline else b"")
    other = b"\n".join(reversed(parts)) + b"\n"
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp) / "one.events.log", data)
        write(Path(tmp) / "two.events.log", other)
        write(Path(tmp) / "three.events.log", b"short\n")
        df = read_events(tmp)
    for cid, blob in (("one", data), ("two", other), ("three", b"short\n")):
        g = df[df["cart_id"] == cid].reset_index(drop=True)
        _check_rows(g, blob)
        assert g["too_long"].sum() <= 1


# ----------------------------------------------------------------------- columns and dtypes


def test_columns_and_dtypes(tmp_path: Path) -> None:
    df = read_events(write(tmp_path / "c.events.log", SAMPLE))
    for col in ("cart_id", "line", "offset", "length", "newline", "ts", "ts_kind", "type",
                "payload", "envelope_error", "lenient_error", "too_long", "raw"):
        assert col in df.columns, col
    assert str(df["ts"].dtype) == "datetime64[ns, UTC]"
    assert df["line"].dtype.kind == "i"
    assert df["offset"].dtype.kind == "i"
    assert df["length"].dtype.kind == "i"
    assert df["newline"].dtype == bool
    assert df["too_long"].dtype == bool
    assert all(isinstance(bytes(x), bytes) for x in df["raw"])


def test_empty_directory_of_empty_files_keeps_the_dtypes(tmp_path: Path) -> None:
    write(tmp_path / "e.events.log", b"")
    df = read_events(tmp_path)
    assert len(df) == 0
    assert str(df["ts"].dtype) == "datetime64[ns, UTC]"


def test_ts_kind_vocabulary(tmp_path: Path) -> None:
    lines = [
        (b'{"ts":"2024-01-02T03:04:05Z","type":"AddItem","payload":{}}', "string"),
        (b'{"ts":1700000000,"type":"AddItem","payload":{}}', "number"),
        (b'{"ts":1700000000.5,"type":"AddItem","payload":{}}', "number"),
        (b'{"ts":null,"type":"AddItem","payload":{}}', "null"),
        (b'{"type":"AddItem","payload":{}}', "missing"),
        (b'{ "type" : "AddItem" }', "missing"),
        (b'{"ts":"yesterday","type":"AddItem","payload":{}}', "invalid"),
        (b"garbage", "invalid"),
        (b"", "invalid"),
        (b'{"ts":true,"type":"AddItem"}', "invalid"),
    ]
    df = read_events(write(tmp_path / "k.events.log", b"\n".join(x for x, _ in lines) + b"\n"))
    assert df["ts_kind"].tolist() == [k for _, k in lines]
    assert set(df["ts_kind"]) <= {"string", "number", "null", "missing", "invalid"}
    kinds = df["ts_kind"].tolist()
    # a readable ts only where the kind says so
    for kind, ts in zip(kinds, df["ts"], strict=True):
        assert pd.isna(ts) == (kind in ("null", "missing", "invalid")), (kind, ts)
    # the fractional number is read exactly
    assert df["ts"].iloc[2] == pd.Timestamp("2023-11-14T22:13:20.5", tz="UTC")


def test_writer_format_line(tmp_path: Path) -> None:
    line = b'{"ts":1700000000,"type":"AddItem","payload":{"sku":"a","quantity":2}}'
    df = read_events(write(tmp_path / "w.events.log", line + b"\n"))
    row = df.iloc[0]
    assert row["envelope_error"] == NOT_A_STRING
    assert pd.isna(row["lenient_error"])
    assert row["ts"] == pd.Timestamp("2023-11-14 22:13:20", tz="UTC")
    assert row["ts_kind"] == "number"
    assert row["type"] == "AddItem"
    assert json.loads(row["payload"]) == {"sku": "a", "quantity": 2}
    assert bool(row["too_long"]) is False
    assert bytes(row["raw"]) == line


def test_string_ts_line_decodes_in_both_modes(tmp_path: Path) -> None:
    line = b'{"ts":"2024-02-29T12:00:00.123456789+01:00","type":"OrderCreated","payload":null}'
    df = read_events(write(tmp_path / "s.events.log", line + b"\r\n"))
    row = df.iloc[0]
    assert pd.isna(row["envelope_error"]) and pd.isna(row["lenient_error"])
    assert row["ts"] == pd.Timestamp("2024-02-29T11:00:00.123456789", tz="UTC")
    assert row["payload"] == "null"
    assert bytes(row["raw"]) == line + b"\r"  # raw keeps the \r, length counts it
    assert row["length"] == len(line) + 1


def test_number_out_of_range_is_an_error_in_both_modes(tmp_path: Path) -> None:
    line = b'{"ts":1e300,"type":"AddItem","payload":{}}'
    df = read_events(write(tmp_path / "o.events.log", line))
    row = df.iloc[0]
    assert row["envelope_error"] == NOT_A_STRING
    assert isinstance(row["lenient_error"], str) and row["lenient_error"]
    assert pd.isna(row["ts"])


def test_envelope_error_iff_not_decoded(tmp_path: Path) -> None:
    df = read_events(write(tmp_path / "c.events.log", SAMPLE))
    # lines 1, 5, 6, 7 are fine in go mode; 2 (numeric ts), 3 (empty), 4 (text) are not
    assert df["envelope_error"].notna().tolist() == [False, True, True, True, False, False, False]
    assert df["lenient_error"].notna().tolist() == [False, False, True, True, False, False, False]
    assert df["type"].tolist()[4:] == ["RemoveItem", "OrderCreated", "AddItem"]


def test_the_file_list_is_shared_by_copies_not_copied(tmp_path) -> None:
    """pandas deep-copies attrs on nearly every operation; the files and problems lists are
    shared instead (a fleet's list of files copied per column access cost seconds)."""
    (tmp_path / "a.events.log").write_bytes(b'{"ts":1,"type":"AddItem","payload":{}}\n')
    df = read_events(tmp_path, progress=False)
    assert df["line"].attrs["files"] is df.attrs["files"]
    assert df.iloc[:1].attrs["problems"] is df.attrs["problems"]
    assert df.attrs["files"][0]["cart_id"] == "a"


# ------------------------------------------------------- a big file decoded in parts at once


def _read_in_parts(monkeypatch: pytest.MonkeyPatch, source: Path, parts: int) -> pd.DataFrame:
    """read_events with every batch of 2 lines or more decoded in ``parts`` parts (1: the
    single-thread read)."""
    import cartforensics.go.writer_shape as fastpath_module

    monkeypatch.setattr(fastpath_module, "SPLIT_LINES", 2 if parts > 1 else 10**12)
    monkeypatch.setattr(fastpath_module, "THREADS", max(parts, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_events(source, progress=False)


def _big_lines() -> list[bytes]:
    near = MAX_TOKEN - 1  # fits: the longest line the scanner still hands out
    return [
        rec("2024-01-02T03:04:05Z"),
        rec(1700000000, "RemoveItem", {"Id": 1}) + b"\r",
        b"x" * (near - 1) + b"\r",                                    # near the limit, CRLF
        rec("2024-01-02T03:04:06Z", "AddItem", {"name": "y" * (near - 100)})[:near],
        b"not json",
        b"",
        b"z" * MAX_TOKEN,                                              # too long: stops Go
        rec("2024-01-02T03:04:07Z", "OrderCreated", {"orderId": "o", "status": "s"}),
        b'{"ts":"2024-01-02T03:04:08Z","type":"AddItem","payload":{"sku":"\\u0041"}}',
        b"w" * (MAX_TOKEN + 5),                                        # too long again
        rec(None, "ChangeQuantity", {"Id": 1, "quantity": 2}) + b"\r",
        rec("2024-01-02T03:04:09+02:00"),
    ]


@pytest.mark.parametrize("parts", [2, 3, 7])
@pytest.mark.parametrize("final_newline", [True, False])
@pytest.mark.parametrize("suffix", [".events.log", ".events.log.gz"])
def test_a_file_read_in_parts_equals_the_single_thread_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parts: int, final_newline: bool,
    suffix: str,
) -> None:
    """The same frame, dtypes, line numbers, attrs and error texts whether a file's lines are
    decoded in one run or in parts at once: lines near the 262,144-byte limit, a too-long
    line in each half, CRLF, hostile lines, no final newline, gz; and a directory of such
    files batched together."""
    lines = _big_lines()
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    write(tmp_path / "one" / f"big{suffix}", data)
    write(tmp_path / "many" / f"a{suffix}", data)
    write(tmp_path / "many" / "b.events.log", b"\n".join(reversed(lines)))
    write(tmp_path / "many" / "c.events.log", b"")
    for source in (tmp_path / "one", tmp_path / "many"):
        single = _read_in_parts(monkeypatch, source, 1)
        split = _read_in_parts(monkeypatch, source, parts)
        assert split.equals(single)
        assert list(split.dtypes) == list(single.dtypes)
        assert split.attrs == single.attrs
        assert split["too_long"].sum() == single["too_long"].sum() == (
            2 if source.name == "many" else 1)
        if source.name == "one":
            _check_rows(split, data)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(CHUNKS, min_size=2, max_size=30), final_newline=st.booleans(),
       parts=st.integers(2, 5))
def test_parts_equal_one_run_on_any_bytes(chunks: list[bytes], final_newline: bool,
                                          parts: int) -> None:
    import cartforensics.go.writer_shape as fastpath_module

    data = b"".join(chunks) + (b"\n" if final_newline else b"")
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp) / "h.events.log", data)
        old = fastpath_module.SPLIT_LINES, fastpath_module.THREADS
        try:
            fastpath_module.SPLIT_LINES, fastpath_module.THREADS = 10**12, 1
            single = read_events(path)
            fastpath_module.SPLIT_LINES, fastpath_module.THREADS = 2, parts
            split = read_events(path)
        finally:
            fastpath_module.SPLIT_LINES, fastpath_module.THREADS = old
    assert split.equals(single) and split.attrs == single.attrs


# ------------------------------------------------------ repeated lines, decoded once

LINE_POOL = st.sampled_from(
    [b"", b"\r", b" ", b"x", b"null", b"{}", b"[]", b"1", b'"s"', b"{\r", b"\xff", b"\x00",
     b"1234567", b"12345678", b"nullnull", b'{"ts":1}', b'{"type":"AddItem"}',
     b'{"ts":null,"type":"X","payload":7}', b'{"TS":"2024-01-02T03:04:05Z","type":"a"}',
     rec(1700000000), rec("2024-01-02T03:04:05Z")]
)
DECODED = ["ts", "ts_kind", "type", "payload", "envelope_error", "lenient_error"]


@settings(max_examples=40, deadline=None)
@given(lines=st.lists(LINE_POOL, min_size=1, max_size=40))
def test_a_line_among_repeats_decodes_as_it_does_alone(lines: list[bytes]) -> None:
    """read_events decodes each distinct line once and hands the result to its repeats (tiny
    tokens grouped by their bytes, longer ones remembered): every row is what the line gives
    when it is the only line of its file."""
    with tempfile.TemporaryDirectory() as tmp:
        many = read_events(write(Path(tmp) / "many.events.log", b"\n".join(lines) + b"\n"))
        assert len(many) == len(lines)
        for i, line in enumerate(lines):
            alone = read_events(write(Path(tmp) / f"l{i}.events.log", line + b"\n"))
            for col in DECODED:
                a, b = many[col].iloc[i], alone[col].iloc[0]
                assert (pd.isna(a) and pd.isna(b)) or a == b, (line, col, a, b)


def test_gzip_limit_counts_every_member_and_keeps_nothing_past_it() -> None:
    from cartforensics.io.logs import gunzip_prefix

    data = b"a\n" * 500
    blob = gzip.compress(data[:600]) + gzip.compress(data[600:])
    assert gunzip_prefix(blob, limit=len(data)) == (data, None)
    out, err = gunzip_prefix(blob, limit=len(data) - 1)
    assert out == b"" and err.startswith("cannot read: a gzip bomb")
    # a broken stream still keeps what came out before the break, under the limit
    out, err = gunzip_prefix(blob[:-30], limit=len(data))
    assert data.startswith(out) and err.startswith("broken gzip stream")


def test_a_log_replaced_by_a_fifo_after_listing_is_a_problem_not_a_hang(tmp_path):
    """Between find_logs and the read, a listed log becomes a FIFO: the read is refused at
    once (no writer will ever come) and the file is a 'cannot read' problem."""
    import os

    from cartforensics.io.logs import find_logs, read_bytes

    p = tmp_path / "cart-1.events.log"
    p.write_bytes(b"{}\n")
    (log,) = find_logs(tmp_path)
    p.unlink()
    os.mkfifo(p)
    data, err = read_bytes(log)
    assert data == b"" and err == "cannot read: a FIFO (named pipe), not a regular file: not read"
