"""The vectorised fast path must never disagree with the line-by-line Go port it short-cuts."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cartforensics.envelope import decode_envelope
from cartforensics.fastpath import canonical_lines, parse_rfc3339_column, view_array
from cartforensics.gotime import unmarshal_time_json

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
    import cartforensics.fastpath as fp

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
