"""``read_events``: cart event logs → one DataFrame row per physical line, as Go's reader sees it.

>>> df = read_events("sample_data/")          # doctest: +SKIP
>>> df[["cart_id", "line", "ts_kind", "type", "envelope_error"]].head()  # doctest: +SKIP
"""

from __future__ import annotations

import glob as globmod
import gzip
import os
import warnings
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa

from .envelope import NOT_A_STRING, NUMBER_OUT_OF_RANGE, decode_envelope
from .gojson import go_utf8
from .gotime import GoTime, unmarshal_time_json
from .lines import MAX_TOKEN_SIZE, LineCut, go_token, split_lines

LOG_SUFFIX = ".events.log"
GZ_SUFFIX = ".events.log.gz"

COLUMNS = [
    "cart_id", "line", "offset", "length", "newline", "ts", "ts_kind", "type", "payload",
    "envelope_error", "lenient_error", "too_long", "raw",
]

Source = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


class NoLogsError(FileNotFoundError):
    """A path given to ``read_events`` does not exist or holds no ``*.events.log`` files."""


@dataclass
class FileProblem:
    """A file that could not be read (whole or in part)."""

    path: str
    cart_id: str
    error: str


@dataclass
class LogFile:
    path: Path
    cart_id: str


@dataclass
class _Columns:
    """Column builders for one file."""

    ts_ns: list[int | None] = field(default_factory=list)


def cart_id_of(path: Path) -> str | None:
    """``abc.events.log`` and ``abc.events.log.gz`` → ``abc``; anything else → None."""
    name = path.name
    if name.endswith(GZ_SUFFIX):
        return name[: -len(GZ_SUFFIX)]
    if name.endswith(LOG_SUFFIX):
        return name[: -len(LOG_SUFFIX)]
    return None


def find_logs(source: Source) -> list[LogFile]:
    """Resolve files, directories, globs and lists into log files, in cart-id order per item.

    Raises NoLogsError naming the path when something given does not exist or holds no logs.
    """
    items: Iterable[str | os.PathLike[str]]
    if isinstance(source, (str, os.PathLike)):
        items = [source]
    else:
        items = list(source)
        if not items:
            raise NoLogsError("no source given: pass a log file, a directory, a glob or a list")
    found: list[LogFile] = []
    seen: set[Path] = set()
    for item in items:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            files = [p for p in path.iterdir() if p.is_file() and cart_id_of(p) is not None]
            if not files:
                raise NoLogsError(
                    f"{text}: directory holds no *{LOG_SUFFIX} or *{GZ_SUFFIX} files"
                )
        elif path.exists():
            files = [path]
        elif globmod.has_magic(text):
            files = [Path(p) for p in globmod.glob(text) if Path(p).is_file()]
            if not files:
                raise NoLogsError(f"{text}: the pattern matches no files")
        else:
            raise NoLogsError(f"{text}: no such file or directory")
        for p in files:
            rp = p.resolve()
            if rp in seen:
                continue
            seen.add(rp)
            cid = cart_id_of(p)
            found.append(LogFile(p, cid if cid is not None else p.name))
    # one order whatever the way the files were named: by cart id (bytes, as Go sorts), then
    # by file name, so that a cart's .log comes before its .log.gz
    found.sort(key=lambda f: (f.cart_id.encode("utf-8", "surrogateescape"), f.path.name))
    return found


def read_bytes(log: LogFile) -> tuple[bytes, str | None]:
    """The file's (decompressed) bytes, and an error text when it could not be read whole."""
    try:
        if log.path.name.endswith(".gz"):
            out = bytearray()
            try:
                with gzip.open(log.path, "rb") as fh:
                    while chunk := fh.read(1 << 20):
                        out += chunk
            except (OSError, EOFError, zlib.error) as e:
                return bytes(out), f"broken gzip stream after {len(out)} bytes: {e}"
            return bytes(out), None
        return log.path.read_bytes(), None
    except OSError as e:
        return b"", f"cannot read: {e.strerror or e}"


# ---------------------------------------------------------------------------------------------
# Fast path: lines in the writer's own shape, decoded in C by msgspec and then *proven* to be
# canonical (prefix and exact length), so that Go's result for them is known without the port.


class _Canonical(msgspec.Struct):
    ts: int | str | None
    type: str
    payload: msgspec.Raw


_DECODER = msgspec.json.Decoder(_Canonical)
_PREFIX = b'{"ts":'


def _canonical_len(env: _Canonical) -> int:
    ts = env.ts
    if ts is None:
        ts_len = 4
    elif type(ts) is int:
        ts_len = len(str(ts))
    else:
        ts_len = len(ts.encode()) + 2  # type: ignore[union-attr]
    # {"ts":  ,"type":"  ","payload":  }
    return 6 + ts_len + 9 + len(env.type.encode()) + 12 + len(env.payload) + 1


def _fast_decode(data: bytes, cut: LineCut, rows: np.ndarray) -> list[_Canonical | None]:
    """msgspec results for the given line indices, None where the line is not canonical."""
    out: list[_Canonical | None] = [None] * len(rows)
    if not len(rows):
        return out
    tok_len = cut.lengths[rows] - _has_cr(data, cut, rows)
    arr = np.frombuffer(data, dtype=np.uint8)
    ok_prefix = tok_len >= 20
    starts = cut.starts[rows]
    for k, b in enumerate(_PREFIX):
        idx = np.minimum(starts + k, len(data) - 1)
        ok_prefix &= arr[idx] == b
    if ok_prefix.all():
        first = int(starts[0])
        last = int(cut.starts[rows[-1]] + cut.lengths[rows[-1]])
        try:
            envs = _DECODER.decode_lines(data[first:last])
        except (msgspec.DecodeError, ValueError):
            envs = None
        if envs is not None and len(envs) == len(rows) and rows[-1] - rows[0] + 1 == len(rows):
            lens = tok_len.tolist()
            for k, env in enumerate(envs):
                if _canonical_len(env) == lens[k]:
                    out[k] = env
            return out
    decode = _DECODER.decode
    for k in np.flatnonzero(ok_prefix).tolist():
        r = int(rows[k])
        tok = go_token(data, int(cut.starts[r]), int(cut.lengths[r]))
        try:
            env = decode(tok)
        except (msgspec.DecodeError, ValueError):
            continue
        if _canonical_len(env) == len(tok):
            out[k] = env
    return out


def _has_cr(data: bytes, cut: LineCut, rows: np.ndarray) -> np.ndarray:
    arr = np.frombuffer(data, dtype=np.uint8)
    ends = cut.starts[rows] + cut.lengths[rows] - 1
    nonempty = cut.lengths[rows] > 0
    last = arr[np.clip(ends, 0, max(len(data) - 1, 0))] if len(data) else np.zeros(0, np.uint8)
    return (nonempty & (last == 13)).astype(np.int64)


# ---------------------------------------------------------------------------------------------


_TIME_CACHE: dict[str, tuple[GoTime | None, str | None]] = {}


def _string_time(text: str) -> tuple[GoTime | None, str | None]:
    hit = _TIME_CACHE.get(text)
    if hit is None:
        hit = unmarshal_time_json(b'"' + text.encode() + b'"')
        if len(_TIME_CACHE) > 100_000:
            _TIME_CACHE.clear()
        _TIME_CACHE[text] = hit
    return hit


_NS_MIN, _NS_MAX = -(1 << 63) + 1, (1 << 63) - 1


def _ns(t: GoTime | None) -> int | None:
    if t is None:
        return None
    ns = t.unix_sec * 1_000_000_000 + t.nsec
    return ns if _NS_MIN <= ns <= _NS_MAX else None


def _read_one(log: LogFile, data: bytes) -> pa.Table:
    """Decode every physical line of one file."""
    cut = split_lines(data, MAX_TOKEN_SIZE)
    n = len(cut)
    rows = np.arange(n)
    fast = _fast_decode(data, cut, rows)
    ts_ns: list[int | None] = [None] * n
    ts_kind: list[str] = ["invalid"] * n
    types: list[str | None] = [None] * n
    payloads: list[bytes | None] = [None] * n
    go_err: list[str | None] = [None] * n
    len_err: list[str | None] = [None] * n
    starts = cut.starts.tolist()
    lengths = cut.lengths.tolist()
    for i in range(n):
        env = fast[i]
        if env is not None:
            types[i] = env.type
            payloads[i] = bytes(env.payload)
            ts = env.ts
            if ts is None:
                ts_kind[i] = "null"
            elif type(ts) is int:
                ts_kind[i] = "number"
                go_err[i] = NOT_A_STRING
                ns = ts * 1_000_000_000
                if _NS_MIN <= ns <= _NS_MAX:
                    ts_ns[i] = ns
                else:
                    len_err[i] = NUMBER_OUT_OF_RANGE
                    ts_kind[i] = "invalid"
            else:
                t, err = _string_time(ts)  # type: ignore[arg-type]
                if err is None:
                    ts_kind[i] = "string"
                    ts_ns[i] = _ns(t)
                else:
                    go_err[i] = len_err[i] = err
            continue
        tok = go_token(data, starts[i], lengths[i])
        lenient = decode_envelope(tok, lenient=True)
        strict = decode_envelope(tok, lenient=False)
        go_err[i] = strict.error
        len_err[i] = lenient.error
        ts_kind[i] = lenient.ts_kind
        types[i] = lenient.type
        payloads[i] = lenient.payload
        ts_ns[i] = _ns(lenient.ts)
    too_long = np.zeros(n, dtype=bool)
    if cut.too_long_index is not None:
        too_long[cut.too_long_index] = True
    offsets = cut.starts
    raw_offsets = np.empty(n + 1, dtype=np.int64)
    raw_offsets[:n] = offsets
    raw_offsets[n] = (int(offsets[-1]) + int(cut.lengths[-1])) if n else 0
    # raw holds each line's bytes without its '\n': a zero-copy view when lines are contiguous
    # is impossible (the '\n's sit between them), so gather once with numpy.
    arr = np.frombuffer(data, dtype=np.uint8)
    keep = np.ones(len(data), dtype=bool)
    nl_pos = (cut.starts + cut.lengths)[cut.newline]
    keep[nl_pos] = False
    raw_data = arr[keep].tobytes() if len(nl_pos) else data
    raw_offs = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(cut.lengths, out=raw_offs[1:])
    raw = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(raw_offs), pa.py_buffer(raw_data)]
    )
    payload_text = [None if p is None else _text(p) for p in payloads]
    return pa.table(
        {
            "cart_id": pa.array([log.cart_id] * n, pa.string()),
            "line": pa.array(np.arange(1, n + 1, dtype=np.int64)),
            "offset": pa.array(offsets),
            "length": pa.array(cut.lengths),
            "newline": pa.array(cut.newline),
            "ts": pa.array(ts_ns, pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
            "ts_kind": pa.array(ts_kind, pa.string()),
            "type": pa.array(types, pa.string()),
            "payload": pa.array(payload_text, pa.string()),
            "envelope_error": pa.array(go_err, pa.string()),
            "lenient_error": pa.array(len_err, pa.string()),
            "too_long": pa.array(too_long),
            "raw": raw,
        }
    )


def _text(p: bytes) -> str:
    try:
        return p.decode("utf-8")
    except UnicodeDecodeError:
        return go_utf8(p)


_EMPTY_SCHEMA = pa.schema(
    [
        ("cart_id", pa.string()), ("line", pa.int64()), ("offset", pa.int64()),
        ("length", pa.int64()), ("newline", pa.bool_()),
        ("ts", pa.timestamp("ns", tz="UTC")), ("ts_kind", pa.string()), ("type", pa.string()),
        ("payload", pa.string()), ("envelope_error", pa.string()),
        ("lenient_error", pa.string()), ("too_long", pa.bool_()), ("raw", pa.large_binary()),
    ]
)


def read_events_table(source: Source, progress: bool | None = None) -> tuple[pa.Table, list]:
    """Like :func:`read_events` but returns a pyarrow Table and the file problems."""
    logs = find_logs(source)
    tables: list[pa.Table] = []
    problems: list[FileProblem] = []
    iterator: Iterable[LogFile] = logs
    if progress is None:
        progress = len(logs) > 200
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(logs, desc="reading logs", unit="file")
    for log in iterator:
        data, err = read_bytes(log)
        if err is not None:
            problems.append(FileProblem(str(log.path), log.cart_id, err))
            warnings.warn(f"{log.path}: {err}", stacklevel=3)
        tables.append(_read_one(log, data))
    table = pa.concat_tables(tables) if tables else _EMPTY_SCHEMA.empty_table()
    return table, problems


def to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow → pandas: numpy dtypes for numbers, bools and times; Arrow-backed text and bytes."""
    df = table.to_pandas(
        types_mapper=lambda t: pd.ArrowDtype(t) if pa.types.is_large_binary(t) else None,
        self_destruct=False,
    )
    return df


def read_events(source: Source, progress: bool | None = None) -> pd.DataFrame:
    """Read cart event logs into one row per physical line, exactly as the service's reader
    cuts and decodes them.

    ``source``: a ``<cartId>.events.log`` (or ``.gz``) file, a directory, a glob, or a list.
    Columns: cart_id, line (1-based), offset, length (without the newline), newline, ts (UTC,
    read leniently: Unix seconds or RFC 3339), ts_kind (string, number, null, missing,
    invalid), type, payload (raw JSON text), envelope_error (Go's json.Unmarshal error, None
    when the envelope decodes), lenient_error (the same with numeric ts accepted), too_long
    (Go's scanner stops at this line), raw (the line's exact bytes). Files that could not be
    read are listed in ``df.attrs["problems"]`` (and warned about); their other lines stay.

    >>> df = read_events("sample_data")  # doctest: +SKIP
    """
    table, problems = read_events_table(source, progress)
    df = to_frame(table)
    df.attrs["problems"] = [p.__dict__ for p in problems]
    return df
