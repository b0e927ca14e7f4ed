"""Vectorised decoding of lines in the writer's own shape, proven equal to the Go port's result.

A line is *canonical* when it is exactly ``{"ts":<T>,"type":"<name>","payload":<P>}`` (a ``\\r``
before the ``\\n`` allowed), with T an integer literal, a plain string or ``null``, the name and
T free of escapes, and P one valid JSON value. msgspec decodes all lines of a file in one C
call; a line's result is trusted only when the line starts with ``{"ts":`` and its length is
exactly the length of that canonical text rebuilt from the decoded values (any extra key,
repeated key, whitespace or escape makes it longer). For such lines Go's outcome is known:
the three keys decode in turn, a number in ``ts`` is Go's ``Time.UnmarshalJSON`` error, and the
payload is kept raw. Every other line goes through the full port (:mod:`cartforensics.go.envelope`).

>>> ok, ts, types, p_start, p_len = canonical_lines(b'{"ts":5,"type":"A","payload":{}}\\n',
...     np.array([0]), np.array([32]))
>>> ok.tolist(), ts, types, p_start.tolist(), p_len.tolist()
([True], [5], ['A'], [29], [2])
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from cartforensics.go.time import days_from_civil
from cartforensics.vocab import TS_INT, TS_NULL, TS_STR


class _Canonical(msgspec.Struct, gc=False):  # no cycles possible: not tracked by the GC
    ts: int | str | None
    type: str
    payload: msgspec.Raw


try:  # the compiled scan (_writer_shape_core.pyx); without it, scan_reference below
    from cartforensics.go import _writer_shape_core as core
except ImportError as exc:  # not built (no compiler at install time) or broken
    core = None
    CORE_WHY = f"{type(exc).__name__}: {exc}"
else:
    CORE_WHY = ""

_DECODER = msgspec.json.Decoder(_Canonical)
_LOCAL = threading.local()


def _decoder() -> msgspec.json.Decoder:
    """This thread's decoder (read_events decodes the halves of a big file in two threads)."""
    dec = getattr(_LOCAL, "decoder", None)
    if dec is None:
        dec = _LOCAL.decoder = (_DECODER if threading.current_thread() is threading.main_thread()
                                else msgspec.json.Decoder(_Canonical))
    return dec
_PREFIX = np.frombuffer(b'{"ts":', dtype=np.uint8)
_FIXED = 6 + 9 + 12 + 1  # {"ts":  ,"type":"  ","payload":  }


def canonical_lines(
    data: bytes, starts: np.ndarray, tok_len: np.ndarray
) -> tuple[np.ndarray, list[Any], list[str | None], np.ndarray, np.ndarray]:
    """For tokens at ``starts`` of ``tok_len`` bytes: which are canonical, their ts and type
    values, and where each payload sits in ``data`` (start, length)."""
    n = len(starts)
    ok = np.zeros(n, dtype=bool)
    ts: list[Any] = [None] * n
    types: list[str | None] = [None] * n
    p_start = np.zeros(n, dtype=np.int64)
    p_len = np.zeros(n, dtype=np.int64)
    if n == 0:
        return ok, ts, types, p_start, p_len
    arr = np.frombuffer(data, dtype=np.uint8)
    prefix_ok = tok_len >= 21
    last = len(arr) - 1
    for k, b in enumerate(_PREFIX):
        prefix_ok &= arr[np.minimum(starts + k, last)] == b
    idx, o_ts, o_type, o_plen = _decode_fields(data, starts, tok_len, prefix_ok)
    if not len(idx):
        return ok, ts, types, p_start, p_len
    first = arr[np.minimum(starts[idx] + 6, last)]  # the first byte of the ts value
    ts_len = _ts_text_len(o_ts, (first == 45) | ((first >= 48) & (first <= 57)))
    type_len = _utf8_len(o_type)
    good = (tok_len[idx] == _FIXED + ts_len + type_len + o_plen) & (ts_len > 0)
    sel = idx[good]
    ok[sel] = True
    p_start[sel] = (starts[idx] + 6 + ts_len + 9 + type_len + 12)[good]
    p_len[sel] = o_plen[good]
    if good.all() and len(idx) == n:
        return ok, o_ts, o_type, p_start, p_len
    for j in np.flatnonzero(good).tolist():
        i = int(idx[j])
        ts[i] = o_ts[j]
        types[i] = o_type[j]
    return ok, ts, types, p_start, p_len


_CHUNK = 1 << 16  # lines decoded per msgspec call: bounds the short-lived objects
# msgspec recurses in C within Python's recursion limit: a line nested deeper than that limit
# allows raises RecursionError. Such a line is simply not proven canonical here and goes to the
# Go port, whose scanner and decoder are iterative past the envelope's fixed depth.
_NOT_DECODED = (msgspec.DecodeError, ValueError, RecursionError)


def _decode_fields(
    data: bytes, starts: np.ndarray, tok_len: np.ndarray, prefix_ok: np.ndarray
) -> tuple[np.ndarray, list[Any], list[str], np.ndarray]:
    """msgspec-decode the prefixed lines, keeping only (row, ts, type, payload length): the
    decoded objects of a chunk are dropped before the next chunk is decoded."""
    idx_all = np.flatnonzero(prefix_ok)
    rows: list[np.ndarray] = []
    o_ts: list[Any] = []
    o_type: list[str] = []
    o_plen: list[np.ndarray] = []
    mv = memoryview(data)
    dec = _decoder()
    for a in range(0, len(idx_all), _CHUNK):
        idx = idx_all[a : a + _CHUNK]
        objs = None
        if idx[-1] - idx[0] + 1 == len(idx):  # consecutive lines: one call for all of them
            first = int(starts[idx[0]])
            end = int(starts[idx[-1]] + tok_len[idx[-1]])
            try:
                objs = dec.decode_lines(mv[first:end])
            except _NOT_DECODED:
                objs = None
            # one object per line: every line starts with '{"ts":' so none is empty, and a
            # line holding two objects would make one object too many
            if objs is not None and len(objs) != len(idx):
                objs = None
        if objs is None:
            keep: list[int] = []
            objs = []
            decode = dec.decode
            for i in idx.tolist():
                s = int(starts[i])
                try:
                    obj = decode(mv[s : s + int(tok_len[i])])
                except _NOT_DECODED:
                    continue
                keep.append(i)
                objs.append(obj)
            idx = np.asarray(keep, dtype=np.int64)
        rows.append(idx)
        o_ts.extend([e.ts for e in objs])
        o_type.extend([e.type for e in objs])
        o_plen.append(np.fromiter(map(len, [e.payload for e in objs]), dtype=np.int64,
                                  count=len(objs)))
        del objs
    if not rows:
        return np.zeros(0, np.int64), [], [], np.zeros(0, np.int64)
    return np.concatenate(rows), o_ts, o_type, np.concatenate(o_plen)


def _ts_text_len(values: list[Any], looks_int: np.ndarray) -> np.ndarray:
    """Length of each ts as written canonically; -1 where it cannot be canonical.
    ``looks_int``: the value's first byte in the line is '-' or a digit."""
    n = len(values)
    out = np.full(n, -1, dtype=np.int64)
    at = np.flatnonzero(looks_int)
    if len(at):
        vals = values if len(at) == n else [values[i] for i in at.tolist()]
        try:
            a = np.array(vals, dtype=np.int64)
        except (OverflowError, TypeError, ValueError):
            a = None
        if a is not None:
            out[at] = _digits(a)
        else:
            out[at] = [len(str(v)) if type(v) is int else -1 for v in vals]
    for i in np.flatnonzero(~looks_int).tolist():
        v = values[i]
        if v is None:
            out[i] = 4
        elif isinstance(v, str):
            out[i] = len(v.encode("utf-8", "surrogatepass")) + 2
    return out


def _digits(a: np.ndarray) -> np.ndarray:
    """Characters in the decimal text of each int64 (a '-' counted)."""
    mag = np.abs(a.astype(np.float64))
    digits = np.where(mag < 1, 1, np.floor(np.log10(np.maximum(mag, 1))) + 1).astype(np.int64)
    # log10 can be off by one near powers of ten: correct it exactly
    p = (10 ** np.minimum(digits - 1, 18).astype(np.int64)).astype(np.uint64)
    absa = np.abs(a).astype(np.uint64)  # as uint64, |-2**63| is right
    digits = np.where((absa < p) & (digits > 1), digits - 1, digits)
    p2 = (10 ** np.minimum(digits, 18).astype(np.int64)).astype(np.uint64)
    digits = np.where((absa >= p2) & (digits < 19), digits + 1, digits)
    return digits + (a < 0)


def _utf8_len(values: list[str]) -> np.ndarray:
    n = len(values)
    lens = np.fromiter(map(len, values), dtype=np.int64, count=n)
    uniq = set(values)
    if all(v.isascii() for v in uniq):
        return lens
    enc = {v: len(v.encode("utf-8", "surrogatepass")) for v in uniq}
    return np.fromiter((enc[v] for v in values), dtype=np.int64, count=n)


# ---------------------------------------------------------------------------------------------
# The scan read_events uses: canonical lines as arrays of fields, compiled or by reference.


@dataclass
class Scan:
    """Per line: whether it is canonical and, where it is, its fields. ``ts_value``: the
    seconds of an integer ts; the Unix ns of a string ts where ``ts_parsed`` (the RFC 3339
    shape :func:`parse_rfc3339_column` takes); values of other lines mean nothing."""

    ok: np.ndarray          # bool
    ts_kind: np.ndarray     # int8: TS_INT, TS_STR or TS_NULL (vocab's ts-kind codes)
    ts_value: np.ndarray    # int64
    ts_parsed: np.ndarray   # bool
    type_start: np.ndarray  # int64: where the type name's bytes sit in data
    type_len: np.ndarray
    p_start: np.ndarray     # int64: where the payload's bytes sit in data
    p_len: np.ndarray
    line_start: np.ndarray  # int64: the starts the scan was given

    def ts_text(self, data: bytes, row: int) -> str:
        """The string ts of canonical line ``row``: ``{"ts":"<it>","type":"`` (no escapes)."""
        return data[int(self.line_start[row]) + 7 : int(self.type_start[row]) - 10].decode()


def scan_reference(data: bytes, starts: np.ndarray, tok_len: np.ndarray) -> Scan:
    """The readable specification of :func:`scan_lines`: :func:`canonical_lines` (msgspec,
    then the rebuilt length), with integer ts that do not fit int64 left to the port."""
    n = len(starts)
    ok, ts, types, p_start, p_len = canonical_lines(data, starts, tok_len)
    kind = np.full(n, TS_INT, dtype=np.int8)
    value = np.zeros(n, dtype=np.int64)
    parsed = np.zeros(n, dtype=bool)
    type_len = np.zeros(n, dtype=np.int64)
    rows = np.flatnonzero(ok)
    if len(rows):
        arr = np.frombuffer(data, dtype=np.uint8)
        first = arr[starts[rows] + 6]
        vals = ts if len(rows) == n else [ts[i] for i in rows.tolist()]
        is_int = (first == 45) | ((first >= 48) & (first <= 57))
        is_str = first == 34
        ints = rows[is_int]
        if len(ints):
            ivals = [vals[j] for j in np.flatnonzero(is_int).tolist()]
            fits = np.array([-(1 << 63) <= v < (1 << 63) for v in ivals], dtype=bool)
            value[ints[fits]] = np.array([v for v, f in zip(ivals, fits.tolist(), strict=True)
                                          if f], dtype=np.int64)
            ok[ints[~fits]] = False
        kind[rows[is_str]] = TS_STR
        kind[rows[~is_int & ~is_str]] = TS_NULL
        strs = rows[is_str]
        if len(strs):
            texts = [vals[j] for j in np.flatnonzero(is_str).tolist()]
            s_ok, s_ns = parse_rfc3339_column(texts)
            parsed[strs] = s_ok
            value[strs[s_ok]] = s_ns[s_ok]
        names = types if len(rows) == n else [types[i] for i in rows.tolist()]
        type_len[rows] = _utf8_len(names)
    type_start = np.where(ok, p_start - 12 - type_len, 0)
    return Scan(ok, kind, value, parsed, type_start, type_len, p_start, p_len,
                np.asarray(starts, dtype=np.int64))


# A call of at least SPLIT_LINES lines is scanned in THREADS runs of consecutive lines at once
# (the compiled scan releases the GIL). CARTFORENSICS_READ_SPLIT_LINES=2 makes every call of 2
# lines or more split (the tests read so); CARTFORENSICS_READ_THREADS=1 never splits.
SPLIT_LINES = int(os.environ.get("CARTFORENSICS_READ_SPLIT_LINES", "") or 50_000)
THREADS = int(os.environ.get("CARTFORENSICS_READ_THREADS", "") or min(os.cpu_count() or 1, 2))
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def _pool(threads: int) -> ThreadPoolExecutor:
    """The shared threads of the scan and the copies, at least ``threads`` of them."""
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or _POOL_SIZE < threads:
            _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cf-scan")
            _POOL_SIZE = threads
        return _POOL


def scan_lines(data: bytes, starts: np.ndarray, tok_len: np.ndarray,
               compiled: bool | None = None) -> Scan:
    """Which lines are canonical and their fields, by the compiled scan when it is built
    (``compiled=False``: the reference; True: the compiled one or an error).

    >>> s = scan_lines(b'{"ts":5,"type":"A","payload":{}}\\n', np.array([0]), np.array([32]))
    >>> s.ok.tolist(), s.ts_value.tolist(), s.p_start.tolist(), s.p_len.tolist()
    ([True], [5], [29], [2])
    """
    if compiled is None:
        compiled = core is not None
    if not compiled:
        return scan_reference(data, starts, tok_len)
    if core is None:
        raise RuntimeError(f"the compiled scan is not available ({CORE_WHY})")
    n = len(starts)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    tok_len = np.ascontiguousarray(tok_len, dtype=np.int64)
    out = Scan(np.zeros(n, np.uint8), np.zeros(n, np.int8), np.zeros(n, np.int64),
               np.zeros(n, np.uint8), np.zeros(n, np.int64), np.zeros(n, np.int64),
               np.zeros(n, np.int64), np.zeros(n, np.int64), starts)
    buf = memoryview(data).cast("B") if len(data) else memoryview(b"\0")
    args = (out.ok, out.ts_kind, out.ts_value, out.ts_parsed, out.type_start, out.type_len,
            out.p_start, out.p_len)
    parts = THREADS if n >= max(SPLIT_LINES, 2) else 1
    if parts > 1:
        bounds = np.linspace(0, n, parts + 1).round().astype(np.int64).tolist()
        jobs = [_pool(parts).submit(core.scan_range, buf, starts, tok_len, a, b, *args)
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        for job in jobs:
            job.result()
    else:
        core.scan_range(buf, starts, tok_len, 0, n, *args)
    out.ok = out.ok.view(bool)
    out.ts_parsed = out.ts_parsed.view(bool)
    return out


# ---------------------------------------------------------------------------------------------
# Arrow view arrays: slices of one buffer without copying them one by one in Python.


_VIEW = np.dtype([("len", "<i4"), ("prefix", "<u4"), ("buf", "<i4"), ("off", "<i4")])


def _word(arr: np.ndarray, at: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """Little-endian uint32 of the (up to) 4 bytes at ``at``, bytes past ``avail`` zeroed."""
    out = np.zeros(len(at), dtype=np.uint32)
    size = len(arr)
    inside = at + 4 <= size
    for k in range(4):
        sel = np.flatnonzero(inside & ((at & 3) == k))
        if len(sel):
            words = np.frombuffer(arr, dtype="<u4", count=(size - k) // 4, offset=k)
            out[sel] = words[(at[sel] - k) >> 2]
    for i in np.flatnonzero(~inside & (at < size)).tolist():  # the last bytes of the buffer
        tail = arr[at[i] : at[i] + 4].tobytes().ljust(4, b"\0")
        out[i] = int.from_bytes(tail, "little")
    partial = np.flatnonzero(avail < 4)
    if len(partial):
        keep = np.clip(avail[partial], 0, 4).astype(np.uint64)
        mask = ((np.uint64(1) << (keep * np.uint64(8))) - np.uint64(1)).astype(np.uint32)
        out[partial] &= mask
    return out


def view_array(
    buffers: list[bytes], buf_idx: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
    valid: np.ndarray | None = None, typ: pa.DataType | None = None,
) -> pa.Array:
    """A binary_view array whose value i is ``buffers[buf_idx[i]][starts[i]:+lengths[i]]``
    (null where ``valid`` is False), built without a Python loop over the values."""
    typ = typ or pa.binary_view()
    n = len(starts)
    if any(len(b) >= (1 << 31) - 1 for b in buffers):
        # view offsets are int32: copy the values instead (only for files over 2 GiB)
        vals = [
            None if valid is not None and not valid[i] else
            buffers[int(buf_idx[i])][int(starts[i]) : int(starts[i]) + int(lengths[i])]
            for i in range(n)
        ]
        return pa.array(vals, pa.large_binary())
    lengths = np.where(valid, lengths, 0) if valid is not None else lengths
    v = np.zeros(n, dtype=_VIEW)
    if n:
        v["len"] = lengths
        short = lengths <= 12
        for bi, buf in enumerate(buffers):
            if not len(buf):
                continue
            arr = np.frombuffer(buf, dtype=np.uint8)
            mine = buf_idx == bi
            rows = np.flatnonzero(mine) if not mine.all() else None
            st = starts if rows is None else starts[rows]
            ln = lengths if rows is None else lengths[rows]
            sh = short if rows is None else short[rows]
            w0 = _word(arr, st, ln)
            target = rows if rows is not None else slice(None)
            v["prefix"][target] = w0
            b1 = np.full(len(st), bi, dtype=np.int32)
            b2 = st.astype(np.int32)
            srows = np.flatnonzero(sh)
            if len(srows):  # short values live inline: bytes 4..11 replace buffer and offset
                b1[srows] = _word(arr, st[srows] + 4, ln[srows] - 4).view(np.int32)
                b2[srows] = _word(arr, st[srows] + 8, ln[srows] - 8).view(np.int32)
            v["buf"][target] = b1
            v["off"][target] = b2
    validity = None
    if valid is not None and not valid.all():
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    bufs = [validity, pa.py_buffer(v.view(np.uint8))] + [pa.py_buffer(b) for b in buffers]
    return pa.Array.from_buffers(typ, n, bufs)


def binary_column(
    buffers: list[bytes], buf_idx: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
    valid: np.ndarray | None = None, typ: pa.DataType | None = None,
) -> pa.Array:
    """A large_binary (or ``typ``: large_string) array whose value i is
    ``buffers[buf_idx[i]][starts[i]:+lengths[i]]`` (null where ``valid`` is False): the
    values copied once into one Arrow buffer, by threads without the GIL when the compiled
    core is built (else through :func:`view_array`). At most two buffers.

    >>> binary_column([b"abcdef", b"XY"], np.array([0, 1]), np.array([1, 0]),
    ...               np.array([2, 2])).to_pylist()
    [b'bc', b'XY']
    """
    typ = typ or pa.large_binary()
    n = len(starts)
    if core is None or len(buffers) > 2:
        return view_array(buffers, buf_idx, starts, lengths, valid).cast(typ)
    lengths = np.where(valid, lengths, 0) if valid is not None else lengths
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = pa.allocate_buffer(int(offsets[-1]))
    if offsets[-1]:
        out = np.frombuffer(values, dtype=np.uint8)
        srcs = [memoryview(b).cast("B") for b in buffers] + [memoryview(b"")] * (2 - len(buffers))
        source = np.ascontiguousarray(buf_idx, dtype=np.uint8)
        starts = np.ascontiguousarray(starts, dtype=np.int64)
        parts = THREADS if n >= max(SPLIT_LINES, 2) else 1
        if parts > 1:
            # cut where the bytes, not the rows, are halved
            cuts = np.searchsorted(offsets, np.linspace(0, offsets[-1], parts + 1)[1:-1])
            bounds = [0, *np.minimum(cuts, n).tolist(), n]
            jobs = [_pool(parts).submit(core.gather_range, *srcs, source, starts, offsets,
                                        out, a, b)
                    for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
            for job in jobs:
                job.result()
        else:
            core.gather_range(*srcs, source, starts, offsets, out, 0, n)
    validity = None
    if valid is not None and not valid.all():
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(typ, n, [validity, pa.py_buffer(offsets), values])


def compaction_available() -> bool:
    """Whether :func:`packed_lines` can run (it needs the compiled core)."""
    return core is not None


def packed_lines(buf: bytearray, starts: np.ndarray, lengths: np.ndarray
                 ) -> tuple[pa.Array, np.ndarray]:
    """Pack the lines at ``starts`` (``lengths`` bytes each, in order, not overlapping) at
    the front of ``buf`` in place, and return them as a large_binary array over ``buf``
    itself, with how far each line moved. ``buf`` must not change afterwards.

    >>> b = bytearray(b"ab\\ncd\\n")
    >>> arr, moved = packed_lines(b, np.array([0, 3]), np.array([2, 2]))
    >>> arr.to_pylist(), moved.tolist()
    ([b'ab', b'cd'], [0, 1])
    """
    n = len(starts)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    if len(buf):
        core.compact(buf, starts, offsets)
    values = pa.py_buffer(buf).slice(0, int(offsets[-1]))
    return (pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), values]),
            starts - offsets[:-1])


# ---------------------------------------------------------------------------------------------
# RFC 3339 strings in the shape Go writes them, parsed for a whole column at once. A string is
# taken here only when it has the exact shape below and every field is in the ranges Go's
# parseRFC3339 checks; anything else is left to the port (go.time), which decides and words
# the error exactly.

def parse_rfc3339_column(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(ok mask, unix ns int64) for strings like 2024-01-02T03:04:05[.fff…](Z|±hh:mm)."""
    n = len(values)
    ok = np.zeros(n, dtype=bool)
    ns = np.zeros(n, dtype=np.int64)
    if n == 0:
        return ok, ns
    width = 40
    try:
        m = np.array(values, dtype=f"S{width}")
    except UnicodeEncodeError:  # RFC 3339 is ASCII: parse the others, leave these to the port
        ascii_rows = np.array([v.isascii() for v in values], dtype=bool)
        rows = np.flatnonzero(ascii_rows)
        ok[rows], ns[rows] = parse_rfc3339_column([values[i] for i in rows.tolist()])
        return ok, ns
    lens = np.fromiter(map(len, values), dtype=np.int64, count=n)
    b = m.view(np.uint8).reshape(n, width)
    digit = (b >= 48) & (b <= 57)
    d = b.astype(np.int64) - 48

    def num(a: int, z: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.int64)
        for i in range(a, z):
            out = out * 10 + d[:, i]
        return out

    shape = (lens >= 20) & (lens <= width)
    for i in (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18):
        shape &= digit[:, i]
    shape &= (b[:, 4] == 45) & (b[:, 7] == 45) & (b[:, 10] == 84) & (b[:, 13] == 58)
    shape &= b[:, 16] == 58
    year, month, day = num(0, 4), num(5, 7), num(8, 10)
    hour, minute, sec = num(11, 13), num(14, 16), num(17, 19)
    # fraction: '.' then digits, up to the zone
    has_frac = b[:, 19] == 46
    frac_digits = np.zeros(n, dtype=np.int64)
    run = has_frac.copy()
    for i in range(20, width):
        run &= digit[:, i] & (i < lens)
        frac_digits += run
    zone_at = 19 + np.where(has_frac, 1 + frac_digits, 0)
    shape &= ~has_frac | (frac_digits >= 1)
    rows = np.arange(n)
    zpos = np.minimum(zone_at, width - 1)
    zc = b[rows, zpos]
    is_z = (zc == 90) & (lens == zone_at + 1)
    is_off = ((zc == 43) | (zc == 45)) & (lens == zone_at + 6)
    shape &= is_z | is_off
    oh = np.zeros(n, dtype=np.int64)
    om = np.zeros(n, dtype=np.int64)
    if is_off.any():
        p = np.minimum(zone_at, width - 6)
        g = [b[rows, p + k] for k in range(6)]
        off_ok = (g[1] >= 48) & (g[1] <= 57) & (g[2] >= 48) & (g[2] <= 57) & (g[3] == 58)
        off_ok &= (g[4] >= 48) & (g[4] <= 57) & (g[5] >= 48) & (g[5] <= 57)
        shape &= ~is_off | off_ok
        oh = (g[1].astype(np.int64) - 48) * 10 + g[2] - 48
        om = (g[4].astype(np.int64) - 48) * 10 + g[5] - 48
        oh = np.where(is_off, oh, 0)
        om = np.where(is_off, om, 0)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    mdays = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
    dim = mdays[np.clip(month - 1, 0, 11)] + ((month == 2) & leap)
    rng = (month >= 1) & (month <= 12) & (day >= 1) & (day <= dim) & (hour <= 23)
    rng &= (minute <= 59) & (sec <= 59) & (oh <= 23) & (om <= 59)
    # keep to years pandas can hold in ns; others go to the port
    rng &= (year >= 1678) & (year <= 2261)
    ok = shape & rng
    if not ok.any():
        return ok, ns
    secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + sec
    sign = np.where(b[rows, zpos] == 45, -1, 1)
    secs = secs - np.where(is_off, sign * (oh * 3600 + om * 60), 0)
    frac = np.zeros(n, dtype=np.int64)
    for i in range(9):
        col = 20 + i
        take = has_frac & (frac_digits > i)
        frac = frac * 10 + np.where(take, d[:, min(col, width - 1)], 0)
    ns = np.where(ok, secs * 1_000_000_000 + frac, 0)
    return ok, ns
