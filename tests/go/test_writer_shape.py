"""The vectorised fast path must never disagree with the line-by-line Go port it short-cuts."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartforensics.go import writer_shape as fastpath
from cartforensics.go.envelope import decode_envelope
from cartforensics.go.time import unmarshal_time_json
from cartforensics.go.writer_shape import canonical_lines, parse_rfc3339_column, view_array

_digit = st.sampled_from("0123456789")


@st.composite
def _rfc3339ish(draw: st.DrawFn) -> str:
    def digits(n: int) -> str:
        return "".join(draw(st.lists(_digit, min_size=n, max_size=n)))

    text = f"{digits(4)}-{digits(2)}-{digits(2)}T{digits(2)}:{digits(2)}:{digits(2)}"
    if draw(st.booleans()):
        text += "." + digits(draw(st.integers(0, 12)))
    text += draw(st.sampled_from(["Z", "z", "", "+", "-"]))
    if text[-1] in "+-":
        text += f"{digits(2)}:{digits(2)}"
    if draw(st.integers(0, 9)) == 0:  # a random byte somewhere
        pos = draw(st.integers(0, len(text)))
        text = text[:pos] + draw(st.sampled_from(list("-:T.Z+ a0"))) + text[pos:]
    return text


@settings(max_examples=300, deadline=None)
@given(st.lists(_rfc3339ish(), min_size=1, max_size=40))
def test_column_parse_agrees_with_the_port(texts: list[str]) -> None:
    ok, ns = parse_rfc3339_column(texts)
    for text, fast_ok, fast_ns in zip(texts, ok.tolist(), ns.tolist(), strict=True):
        t, err = unmarshal_time_json(b'"' + text.encode() + b'"')
        if fast_ok:
            assert err is None, text
            assert t is not None and t.unix_ns() == fast_ns, text


def test_column_parse_takes_the_common_shapes() -> None:
    texts = ["2024-01-02T03:04:05Z", "2024-02-29T23:59:59.123456789Z",
             "2024-01-02T03:04:05.5+02:00", "2023-02-29T00:00:00Z", "2024-01-02T24:00:00Z"]
    ok, ns = parse_rfc3339_column(texts)
    assert ok.tolist() == [True, True, True, False, False]
    assert ns[0] == 1704164645 * 10**9
    assert ns[2] == (1704164645 - 7200) * 10**9 + 500_000_000


_parts = st.sampled_from([
    b'{"ts":', b"1700000000", b'"2024-01-02T03:04:05Z"', b"null", b',"type":"', b"AddItem",
    b'","payload":', b'{"sku":"a"}', b"}", b" ", b'"', b"\\u0041", b"-0", b",", b"{}", b'"ts":1',
    b"\xc3\xa5", b"\xff", b"\r",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_parts, min_size=1, max_size=12).map(b"".join), min_size=1,
                max_size=20))
def test_canonical_lines_agree_with_the_port(lines: list[bytes]) -> None:
    canonical = b'{"ts":1,"type":"A","payload":{}}'
    lines = [*lines, canonical]
    data = b"\n".join(lines) + b"\n"
    lens = np.array([len(x) for x in lines], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens + 1)[:-1]]).astype(np.int64)
    ok, ts, types, p_start, p_len = canonical_lines(data, starts, lens)
    assert ok[-1]
    for i, line in enumerate(lines):
        if not ok[i]:
            continue
        lenient = decode_envelope(line, lenient=True)
        assert lenient.error is None, line
        assert lenient.type == types[i], line
        assert lenient.payload == data[p_start[i] : p_start[i] + p_len[i]], line
        if isinstance(ts[i], int):
            assert lenient.ts_kind == "number" and lenient.ts.unix_sec == ts[i], line
            assert decode_envelope(line).error == "Time.UnmarshalJSON: input is not a JSON string"


def test_view_array_slices_several_buffers() -> None:
    a, b = b"0123456789abcdefghij", b"XYZ"
    arr = view_array([a, b], np.array([0, 1, 0, 0]), np.array([0, 1, 5, 2]),
                     np.array([15, 2, 0, 3]), np.array([True, True, True, False]))
    import pyarrow as pa

    assert arr.cast(pa.large_binary()).to_pylist() == [a[:15], b"YZ", b"", None]


def test_chunked_decoding_gives_the_same_result(monkeypatch) -> None:
    """msgspec decodes in chunks of lines; results must not depend on where chunks end."""
    import cartforensics.go.writer_shape as fp

    lines = [b'{"ts":1,"type":"A","payload":{}}', b"garbage", b'{"ts":"x","type":"B","payload":1}',
             b'{"ts":null,"type":"C","payload":[1]}', b'{"ts":2,"type":"A","payload":{}}{}'] * 7
    data = b"\n".join(lines) + b"\n"
    lens = np.array([len(x) for x in lines], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens + 1)[:-1]]).astype(np.int64)
    whole = canonical_lines(data, starts, lens)
    for chunk in (1, 2, 3, 5, 64):
        monkeypatch.setattr(fp, "_CHUNK", chunk)
        got = canonical_lines(data, starts, lens)
        assert got[0].tolist() == whole[0].tolist()
        assert got[1] == whole[1] and got[2] == whole[2]
        assert got[3].tolist() == whole[3].tolist() and got[4].tolist() == whole[4].tolist()
    assert whole[0].tolist() == [True, False, True, True, False] * 7


# ------------------------------------------------ the compiled scan against its reference

needs_core = pytest.mark.skipif(
    fastpath.core is None and os.environ.get("CARTFORENSICS_REQUIRE_CORE") != "1",
    reason="the compiled scan is not built")

_ts = st.one_of(
    st.integers(-(1 << 64), 1 << 64).map(lambda v: str(v).encode()),
    st.sampled_from([b'"2024-01-02T03:04:05Z"', b'"2024-02-29T23:59:59.123456789+02:00"',
                     b'"1677-12-31T23:59:59Z"', b'"2262-01-01T00:00:00Z"', b'"x"', b'""',
                     b"null", b"-0", b"01", b"1.5", b"1e3", b'"\\u0041"', b'"\xc3\xa5"',
                     b"true", b"-", b'"2024-01-02T03:04:05.Z"', b'"2024-13-02T03:04:05Z"']),
)
_names = st.sampled_from([b"AddItem", b"", b"Add Item", b"\x7f", b"\xc3\xa5", b"A\\u0041",
                          b"A\tB", b"OrderCreated"])
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=4), kids,
                                                              max_size=4),
    max_leaves=12,
)
_payload_bits = st.sampled_from([
    b"{", b"}", b"[", b"]", b'"', b":", b",", b"1", b"-", b"0", b".", b"e", b"E+", b"true",
    b"nul", b"\\", b"\\u00e5", b"\\ud800", b"\\uZZZZ", b"\xc3\xa5", b"\xed\xa0\x80", b"\xff",
    b"\xf4\x90\x80\x80", b"\xe0\x80\x80", b" ", b"\t", b"\r", b'"a"', b"1e5", b"-0.5",
    b"\x01", b"[" * 600,
])


@st.composite
def _lines(draw: st.DrawFn) -> bytes:
    """Lines near the writer's shape: a ts, a type, a payload that is valid JSON (dumped with
    or without ASCII escapes) or fragments of it."""
    ts, name = draw(_ts), draw(_names)
    if draw(st.booleans()):
        value = draw(_json)
        payload = json.dumps(value, ensure_ascii=draw(st.booleans()),
                             separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])))
        payload_b = payload.encode("utf-8", "surrogatepass")
    else:
        payload_b = b"".join(draw(st.lists(_payload_bits, min_size=1, max_size=10)))
    line = b'{"ts":' + ts + b',"type":"' + name + b'","payload":' + payload_b + b"}"
    if draw(st.integers(0, 5)) == 0:  # a random cut or byte
        pos = draw(st.integers(0, len(line)))
        line = line[:pos] + draw(st.sampled_from([b"", b" ", b"}", b'"', b"\\"])) + line[pos:]
    return line


def _both(lines: list[bytes]) -> tuple[bytes, fastpath.Scan, fastpath.Scan]:
    data = b"\n".join(lines) + b"\n"
    lens = np.array([len(x) for x in lines], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens + 1)[:-1]]).astype(np.int64)
    return (data, fastpath.scan_lines(data, starts, lens, compiled=True),
            fastpath.scan_lines(data, starts, lens, compiled=False))


_FIELDS = ("ts_kind", "ts_value", "ts_parsed", "type_start", "type_len", "p_start", "p_len")


@needs_core
@settings(max_examples=600, deadline=None)
@given(st.lists(_lines(), min_size=1, max_size=12))
def test_the_compiled_scan_accepts_only_what_the_reference_proves(lines: list[bytes]) -> None:
    """Wherever the compiled scan accepts a line, the reference (msgspec and the rebuilt
    length, itself tested against the Go port above) accepts it with the same fields; and
    valid payloads without surrogate escapes are accepted by both."""
    data, fast, ref = _both(lines)
    assert not (fast.ok & ~ref.ok).any(), [lines[i] for i in np.flatnonzero(fast.ok & ~ref.ok)]
    for f in _FIELDS:
        assert (getattr(fast, f)[fast.ok] == getattr(ref, f)[fast.ok]).all(), f
    for i in np.flatnonzero(fast.ok).tolist():
        if fast.ts_kind[i] == fastpath.TS_STR:
            assert fast.ts_text(data, i) == ref.ts_text(data, i)


@needs_core
@settings(max_examples=300, deadline=None)
@given(st.lists(_json, min_size=1, max_size=8), st.booleans(),
       st.integers(-(1 << 63), (1 << 63) - 1))
def test_the_compiled_scan_takes_the_writers_lines(values: list, ascii_only: bool,
                                                   secs: int) -> None:
    lines = []
    for v in values:
        payload = json.dumps(v, ensure_ascii=ascii_only, separators=(",", ":"))
        if "\\ud" in payload or not payload.isprintable() and not ascii_only:
            continue  # surrogate halves and control characters: the port's
        lines.append(b'{"ts":' + str(secs).encode() + b',"type":"AddItem","payload":'
                     + payload.encode("utf-8", "surrogatepass") + b"}")
        lines.append(b'{"ts":"2024-01-02T03:04:05.5+01:00","type":"X","payload":'
                     + payload.encode("utf-8", "surrogatepass") + b"}")
    if not lines:
        return
    _, fast, ref = _both(lines)
    assert ref.ok.all()
    assert fast.ok.all(), [line for line, k in zip(lines, fast.ok, strict=True) if not k]


@needs_core
def test_the_compiled_scan_leaves_the_doubtful_to_the_port() -> None:
    """Each of these is left to the port (some the reference takes: the port decides)."""
    doubtful = [
        b'{"ts":-0,"type":"A","payload":{}}',
        b'{"ts":9223372036854775808,"type":"A","payload":{}}',
        b'{"ts":"\xc3\xa5","type":"A","payload":{}}',
        b'{"ts":1,"type":"\xc3\xa5","payload":{}}',
        b'{"ts":1,"type":"A","payload":"\\ud800"}',
        b'{"ts":1,"type":"A","payload":"\xed\xa0\x80"}',
        b'{"ts":1,"type":"A","payload":' + b"[" * 600 + b"]" * 600 + b"}",
        b'{"ts":1,"type":"A","payload":{} }',
        b'{"ts":1,"type":"A","payload":{}}}',
    ]
    kept = [
        b'{"ts":9223372036854775807,"type":"A","payload":{}}',
        b'{"ts":-9223372036854775808,"type":"A","payload":{}}',
        b'{"ts":1,"type":"A","payload":' + b"[" * 512 + b"]" * 512 + b"}",
        b'{"ts":1,"type":"A","payload":{"a" : [1, -0.5e+3, true, null, "\\u00e5\xc3\xa5"]}}',
    ]
    _, fast, ref = _both(doubtful + kept)
    assert fast.ok.tolist() == [False] * len(doubtful) + [True] * len(kept)
    assert ref.ok[len(doubtful):].all()
    assert fast.ts_value[len(doubtful) + 1] == -(1 << 63)


def test_the_compiled_scan_runs_when_required() -> None:
    """CI sets CARTFORENSICS_REQUIRE_CORE=1: then a missing compiled scan is a failure."""
    if os.environ.get("CARTFORENSICS_REQUIRE_CORE") != "1":
        pytest.skip("CARTFORENSICS_REQUIRE_CORE is not set")
    from cartforensics import engine_info

    assert fastpath.core is not None, fastpath.CORE_WHY
    assert engine_info()["scan"] == "compiled"


def test_read_events_is_the_same_on_either_scan(tmp_path, monkeypatch) -> None:
    """The whole frame, hostile lines included, whichever scan read it: one file (its lines
    packed in place), a directory batched together (one with no final newline, one gz,
    one empty), and bytes the caller holds (copied, never packed)."""
    from cartforensics import read_events

    lines = [b'{"ts":"2024-01-02T03:04:05Z","type":"AddItem","payload":{"sku":"a"}}',
             b'{"ts":1700000000,"type":"RemoveItem","payload":{"Id":1}}\r',
             b'{"ts":9223372036854775808,"type":"A","payload":{}}',
             b'{"ts":-0,"type":"A","payload":{}}', b"garbage", b"",
             b'{"ts":"2024-01-02T03:04:05","type":"A","payload":1}',
             b'{"ts":"x","type":"\xc3\xa5","payload":"\\ud800"}',
             b'{"ts":null,"type":"A","payload":' + b"[" * 600 + b"]" * 600 + b"}"] * 3
    import gzip

    from cartforensics.io.logs import read_events_bytes

    one = tmp_path / "one"
    one.mkdir()
    (one / "c.events.log").write_bytes(b"\n".join(lines) + b"\n")
    many = tmp_path / "many"
    many.mkdir()
    (many / "a.events.log").write_bytes(b"\n".join(lines))
    (many / "b.events.log").write_bytes(b"\n".join(reversed(lines)) + b"\n\n")
    (many / "c.events.log.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    (many / "d.events.log").write_bytes(b"")
    held = b"\n".join(lines) + b"\n"
    items = [("x", held), ("y", held[:-1])]
    fast = [read_events(one, progress=False), read_events(many, progress=False),
            read_events_bytes(items)]
    assert held == b"\n".join(lines) + b"\n"  # the caller's bytes are left alone
    monkeypatch.setattr(fastpath, "core", None)
    ref = [read_events(one, progress=False), read_events(many, progress=False),
           read_events_bytes(items)]
    for got, want in zip(fast, ref, strict=True):
        assert got.equals(want)
        if hasattr(got, "attrs"):
            assert got.attrs == want.attrs
    assert fast[0]["raw"].tolist() == [line for line in lines]
