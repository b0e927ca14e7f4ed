"""``read_events``: cart event logs → one DataFrame row per physical line, as Go's reader sees it.

>>> df = read_events("sample_data/")          # doctest: +SKIP
>>> df[["cart_id", "line", "ts_kind", "type", "envelope_error"]].head()  # doctest: +SKIP
"""

from __future__ import annotations

import glob as globmod
import hashlib
import os
import stat
import warnings
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa

from cartforensics._runtime.progress import progress_bar
from cartforensics.go.bufio import MAX_TOKEN_SIZE, newline_positions, split_lines, split_many
from cartforensics.go.envelope import decode_envelope, numeric_ts_error
from cartforensics.go.json import go_utf8
from cartforensics.go.time import GoTime, unmarshal_time_json
from cartforensics.go.version import GoSemantics, semantics
from cartforensics.go.writer_shape import (
    binary_column,
    compaction_available,
    packed_lines,
    scan_lines,
)
from cartforensics.vocab import TS_INT, TS_KINDS, TS_NULL, TS_STR
from cartforensics.vocab import TS_KIND_CODES as _KIND

LOG_SUFFIX = ".events.log"
GZ_SUFFIX = ".events.log.gz"

COLUMNS = [
    "cart_id", "line", "offset", "length", "newline", "ts", "ts_kind", "type", "payload",
    "envelope_error", "lenient_error", "too_long", "raw",
]

Source = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


class SharedList(list):
    """A list that copies of a DataFrame share instead of copying: pandas deep-copies ``attrs``
    on nearly every operation, and a fleet's file list (one dict per file) copied on each
    column access cost seconds per report. Read it; do not change it in place.

    >>> import copy; files = SharedList([{"path": "a.events.log"}])
    >>> copy.deepcopy(files) is files
    True
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedList:
        return self


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


def name_text(name: str) -> str:
    """A file name as text: bytes the file system gave that are not UTF-8 (surrogateescape)
    become ``\\xNN``; any other name is itself.

    >>> name_text(os.fsdecode(b"caf\\xe9.events.log"))
    'caf\\\\xe9.events.log'
    """
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")


def cart_id_of(path: Path) -> str | None:
    """``abc.events.log`` and ``abc.events.log.gz`` → ``abc``; anything else → None. A name
    that is not UTF-8 keeps its other bytes as ``\\xNN`` (``caf\\xe9``): an id is text.

    >>> cart_id_of(Path("cart-1.events.log.gz"))
    'cart-1'
    """
    stem = log_stem(path.name)
    return None if stem is None else name_text(stem)


def log_stem(name: str) -> str | None:
    """A log file's name without ``.events.log`` / ``.events.log.gz``, as the file system
    gave it (bytes that are not UTF-8 kept as they are); None for any other name.

    >>> log_stem("cart-1.events.log")
    'cart-1'
    """
    for suffix in (GZ_SUFFIX, LOG_SUFFIX):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


class LogList(list):
    """:func:`find_logs`' answer: the log files (a ``list`` of :class:`LogFile`), and in
    ``skipped`` the entries named like logs that are not regular files (a FIFO, a socket, a
    device, a directory, a dangling symbolic link), each a :class:`FileProblem` saying what it
    is. They are never opened (opening a FIFO blocks until a writer comes).

    >>> LogList([], [FileProblem("x.events.log", "x", "a FIFO")]).skipped[0].error
    'a FIFO'
    """

    def __init__(self, logs: Iterable[LogFile] = (),
                 skipped: Iterable[FileProblem] = ()) -> None:
        super().__init__(logs)
        self.skipped: list[FileProblem] = list(skipped)


_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISDIR, "a directory"))


def special_kind(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is when it is not a regular file (following symbolic links): a FIFO, a
    socket, a device, a directory, a dangling symbolic link; None for a regular file (or one
    that cannot be looked at: reading it will say why).

    >>> special_kind("/dev/null")
    'a character device'
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        try:
            if os.path.islink(path):
                return f"a dangling symbolic link (to {name_text(os.readlink(path))!r})"
        except OSError:
            pass
        return None
    except OSError:
        return None
    return mode_kind(mode)


def mode_kind(mode: int) -> str | None:
    """What a file of stat mode ``mode`` is when it is not a regular file; None when it is.

    >>> mode_kind(stat.S_IFIFO)
    'a FIFO (named pipe)'
    """
    if stat.S_ISREG(mode):
        return None
    for test, what in _KINDS:
        if test(mode):
            return what
    return "not a regular file"


def _skipped(path: Path, kind: str) -> FileProblem:
    cid = cart_id_of(path)
    return FileProblem(name_text(str(path)), cid if cid is not None else path.name,
                       f"{kind}, not a regular file: not read")


def find_logs(source: Source) -> LogList:
    """Resolve files, directories, globs and lists into log files, in cart-id order per item.

    Raises NoLogsError naming the path when something given does not exist or holds no logs.
    A list of :class:`LogFile` (as this returns) is taken as listed, without looking again.
    Entries named like logs that are not regular files are listed in the answer's
    ``skipped`` (:class:`LogList`), never opened.
    """
    items: Iterable[str | os.PathLike[str]]
    if isinstance(source, (str, os.PathLike)):
        items = [source]
    else:
        items = list(source)
        if not items:
            raise NoLogsError("no source given: pass a log file, a directory, a glob or a list")
        if all(isinstance(x, LogFile) for x in items):
            return LogList(items, getattr(source, "skipped", ()))  # type: ignore[arg-type]
    found: list[LogFile] = []
    skipped: list[FileProblem] = []
    seen: set[str] = set()
    for item in items:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            # scandir: the names and kinds of a fleet's 10,000 files without a stat each
            names = []
            stems = []  # each name's log_stem, taken once
            with os.scandir(text) as entries:
                for e in entries:
                    stem = log_stem(e.name)
                    if stem is None:
                        continue
                    if e.is_file():
                        names.append(e.name)
                        stems.append(stem)
                        continue
                    kind = special_kind(e.path)
                    if kind is not None:
                        skipped.append(_skipped(path / e.name, kind))
            base = os.path.abspath(text)
            files = [path / name for name in names]
            keys = [os.path.join(base, name) for name in names]
            cids: list[str] | None = [name_text(stem) for stem in stems]
            if not files:
                why = "; ".join(f"{p.path}: {p.error}" for p in skipped[:3])
                raise NoLogsError(
                    f"{text}: directory holds no *{LOG_SUFFIX} or *{GZ_SUFFIX} files"
                    + (f" ({why})" if why else "")
                )
        elif path.exists() or path.is_symlink():
            kind = special_kind(path)
            if kind is not None:
                skipped.append(_skipped(path, kind))
                continue
            files = [path]
            keys = cids = None
        elif globmod.has_magic(text):
            files = []
            for p in map(Path, globmod.glob(text)):
                if cart_id_of(p) is None:
                    continue
                kind = special_kind(p)
                if kind is None:
                    files.append(p)
                else:
                    skipped.append(_skipped(p, kind))
            keys = cids = None
            if not files:
                raise NoLogsError(
                    f"{text}: the pattern matches no *{LOG_SUFFIX} or *{GZ_SUFFIX} files"
                )
        else:
            raise NoLogsError(f"{text}: no such file or directory")
        for k, p in enumerate(files):
            rp = os.path.abspath(p) if keys is None else keys[k]
            if rp in seen:
                continue
            seen.add(rp)
            cid = cart_id_of(p) if cids is None else cids[k]
            found.append(LogFile(p, cid if cid is not None else p.name))
    if not found and skipped:
        raise NoLogsError("; ".join(f"{p.path}: {p.error}" for p in skipped[:3]))
    # one order whatever the way the files were named: by cart id (bytes, as Go sorts), then
    # by file name, so that a cart's .log comes before its .log.gz
    found.sort(key=lambda f: (f.cart_id.encode("utf-8", "surrogateescape"), f.path.name))
    skipped.sort(key=lambda p: (p.cart_id.encode("utf-8", "surrogateescape"), p.path))
    return LogList(found, skipped)


def several_files(files: Sequence[tuple[str, str]]) -> list[FileProblem]:
    """A problem for each cart with more than one file, from (path, cart_id) pairs in
    read_events' order: its files' lines are replayed in that order as one log.

    >>> several_files([("a.events.log", "a"), ("a.events.log.gz", "a")])[0].error[:17]
    "cart 'a' has 2 fi"
    """
    by_cart: dict[str, list[str]] = {}
    for path, cid in files:
        by_cart.setdefault(cid, []).append(path)
    return [FileProblem(paths[0], cid, f"cart {cid!r} has {len(paths)} files; their lines "
                        f"are replayed in this order as one log: {', '.join(paths)}")
            for cid, paths in sorted(by_cart.items()) if len(paths) > 1]


# The reader's own guard (not the seed's): at every point of a .gz's stream, what came out
# may be at most the larger of GZ_MAX_RATIO times the compressed bytes read so far and
# GZ_MIN_LIMIT. Writer logs compress about 10x (sample_data, hostile by design, 2x); a gzip
# bomb (a few MB of gzip holding gigabytes of newlines, 200x to 1000x) is refused with a
# problem as soon as it crosses the line, without holding more than that. The floor keeps
# small repetitive files (100 KB of newlines inflate 700x) and costs at most what a plain
# file of 8 MiB of newlines costs.
GZ_MAX_RATIO = 100
GZ_MIN_LIMIT = 8 << 20
_GZ_STEP = 1 << 20  # output inflated per call, checked against the limit after each


def gunzip_limit(compressed_read: int) -> int:
    """The most bytes a .gz may have inflated to once ``compressed_read`` of its bytes are
    read.

    >>> gunzip_limit(1_000_000) == 100_000_000, gunzip_limit(10) == 8 << 20
    (True, True)
    """
    return max(GZ_MAX_RATIO * compressed_read, GZ_MIN_LIMIT)


def read_bytes(log: LogFile, read: dict[str, Any] | None = None
               ) -> tuple[bytes | bytearray, str | None]:
    """The file's (decompressed) bytes, and an error text when it could not be read whole.

    A broken gzip stream keeps every byte decompressed before the break; a gzip bomb (see
    :func:`gunzip_limit`) gives no bytes. ``read``: a dict that gets the ``sha256`` and
    ``bytes`` of the file as it was read (compressed, for a ``.gz``), for a provenance record
    of exactly what was analysed."""
    try:
        buf = _read_mutable(log.path)
    except OSError as e:
        return b"", f"cannot read: {e.strerror or e}"
    if read is not None:
        read.update(sha256=hashlib.sha256(buf).hexdigest(), bytes=len(buf))
    if not log.path.name.endswith(".gz"):
        return buf, None
    return _gunzip(bytes(buf))


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for reading in binary, when it is a regular file; ``OSError`` saying
    what it is otherwise. Opened without blocking and checked on the open descriptor, so a
    FIFO put in the place of a listed log is never waited on.

    >>> open_regular("/dev/null")
    Traceback (most recent call last):
    OSError: [Errno 0] a character device, not a regular file: not read
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        kind = mode_kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise OSError(0, f"{kind}, not a regular file: not read")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_mutable(path: Path) -> bytearray:
    """The file's bytes in a buffer of our own (read_events packs its lines in place), read
    to its end even if it grows meanwhile, as ``Path.read_bytes`` does."""
    with open_regular(path) as f:
        buf = bytearray(os.fstat(f.fileno()).st_size)
        got = f.readinto(buf)
        if got < len(buf):
            del buf[got:]
        buf += f.read()
    return buf


def gunzip_prefix(blob: bytes, chunk: int = 1 << 16,
                  limit: int | None = None) -> tuple[bytes, str | None]:
    """Decompress gzip (several members allowed); on a broken stream return what came out
    before the break, with the reason; past ``limit`` bytes (default: past
    :func:`gunzip_limit` of the compressed bytes read so far) return nothing, with the
    reason (a gzip bomb).

    >>> import gzip; gunzip_prefix(gzip.compress(b"a\\n"))
    (b'a\\n', None)
    >>> gunzip_prefix(gzip.compress(b"\\n" * 1000), limit=999)[1][:25]
    'cannot read: a gzip bomb,'
    """
    out, err = _gunzip(blob, chunk, limit)
    return bytes(out), err


def _gunzip(blob: bytes, chunk: int = 1 << 16,
            limit: int | None = None) -> tuple[bytearray, str | None]:
    """:func:`gunzip_prefix` into a buffer of our own (read_events packs its lines in it)."""
    size = len(blob)
    out = bytearray()
    pos = 0
    while True:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while not d.eof:
            if d.unconsumed_tail:
                piece = d.unconsumed_tail
            elif pos < len(blob):
                piece = blob[pos : pos + chunk]
                pos += len(piece)
            else:
                break
            try:  # at most a step past the limit is ever held
                out += d.decompress(piece, _GZ_STEP)
            except zlib.error as e:
                return out, f"broken gzip stream after {len(out)} bytes: {e}"
            read = size - (len(blob) - pos) - len(d.unconsumed_tail)
            if len(out) > (gunzip_limit(read) if limit is None else limit):
                return bytearray(), (
                    f"cannot read: a gzip bomb, its first {read:,} compressed bytes inflate "
                    f"to {len(out):,} or more (over {GZ_MAX_RATIO}x them and "
                    f"{GZ_MIN_LIMIT >> 20} MiB); none of its lines are replayed"
                    if limit is None else
                    f"cannot read: a gzip bomb, its stream inflates past {limit:,} bytes; "
                    "none of its lines are replayed"
                )
        if not d.eof:
            return out, (
                f"broken gzip stream after {len(out)} bytes: the file ends before the stream does"
            )
        rest = d.unused_data + blob[pos:]
        if not rest.strip(b"\0"):
            return out, None
        blob, pos = rest, 0


_NAT = np.iinfo(np.int64).min
_BATCH_BYTES = 16 << 20  # small files are decoded together, up to this many bytes
_BATCH_FILES = 4096
_NS_MIN, _NS_MAX = -(1 << 63) + 1, (1 << 63) - 1
_TIME_CACHE: dict[str, tuple[GoTime | None, str | None]] = {}


def _string_time(text: str) -> tuple[GoTime | None, str | None]:
    hit = _TIME_CACHE.get(text)
    if hit is None:
        hit = unmarshal_time_json(b'"' + text.encode("utf-8", "surrogatepass") + b'"')
        if len(_TIME_CACHE) > 100_000:
            _TIME_CACHE.clear()
        _TIME_CACHE[text] = hit
    return hit


_SECS_MAX = _NS_MAX // 1_000_000_000  # the seconds whose nanoseconds pandas can hold


def _ns(t: GoTime | None) -> int:
    if t is None:
        return _NAT
    ns = t.unix_sec * 1_000_000_000 + t.nsec
    return ns if _NS_MIN <= ns <= _NS_MAX else _NAT


def read_events_bytes(items: Sequence[tuple[str, bytes]],
                      go_version: str | GoSemantics | None = None) -> pa.Table:
    """read_events' rows (as Arrow) for files whose decompressed bytes the caller already
    holds, given as (cart id, bytes), file after file.

    >>> read_events_bytes([("c1", b'{"ts":1,"type":"AddItem","payload":{}}\\n')]).num_rows
    1
    """
    logs = [LogFile(Path(cid + LOG_SUFFIX), cid) for cid, _ in items]
    return _read_batch(logs, [data for _, data in items], semantics(go_version))


def _read_batch(logs: Sequence[LogFile], datas: Sequence[bytes | bytearray],
                sem: GoSemantics | None = None, line_counts: list[int] | None = None,
                owned: bool = False) -> pa.Table:
    """Decode every physical line of several files at once (writer-shaped lines vectorised
    over the whole batch, the rest by the Go port line by line): small files cost little.
    ``sem``: the toolchain whose encoding/json decodes the envelopes (default Go 1.25);
    ``line_counts``: if given, each file's number of lines is appended to it; ``owned``:
    a single buffer is this call's to overwrite. The raw column is then the batch's own
    bytes with its lines packed in place (several files are joined into a new buffer, which
    is always packed), instead of a copy of them.

    The lines are scanned and decoded ``_PIECE`` rows at a time, into the columns
    themselves: besides the line cut and the columns, no array of the batch's size is held
    (a blank line costs its columns, about 60 bytes)."""
    sem = semantics(sem)
    sizes = np.fromiter(map(len, datas), np.int64, len(datas))
    if len(datas) == 1:
        data = datas[0]
        in_place = owned and isinstance(data, bytearray) and compaction_available()
        cut = split_lines(data, MAX_TOKEN_SIZE)
        starts, lengths, newline = cut.starts, cut.lengths, cut.newline
        counts = np.array([len(cut)], dtype=np.int64)
        too_long = np.zeros(len(cut), dtype=bool)
        if cut.too_long_index is not None:
            too_long[cut.too_long_index] = True
    else:  # joined into a buffer of this call's own, cut at once
        data = bytearray().join(datas)
        in_place = compaction_available()
        batch = split_many(data, sizes)
        starts, lengths, newline = batch.starts, batch.lengths, batch.newline
        counts, too_long = batch.counts, batch.too_long
    if line_counts is not None:
        line_counts.extend(counts.tolist())
    n = int(counts.sum())
    bases = np.cumsum(sizes) - sizes
    file_of = np.repeat(np.arange(len(datas), dtype=np.int32), counts)
    # (one file: its offsets are the starts themselves, never changed below)
    offsets = starts - bases[file_of] if n and len(datas) > 1 else starts
    line_no = np.arange(1, n + 1, dtype=np.int64)
    if len(datas) > 1 and n:
        line_no -= np.repeat(np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    ids = [log.cart_id for log in logs]
    unique = list(dict.fromkeys(ids))
    code = np.array([unique.index(c) for c in ids] if len(unique) < len(ids) else
                    range(len(ids)), dtype=np.int32)
    cart = code[file_of] if n else file_of
    del file_of
    arr = np.frombuffer(data, dtype=np.uint8)

    ts_ns = np.full(n, _NAT, dtype=np.int64)
    kind = np.full(n, _KIND["invalid"], dtype=np.int8)
    go_err, len_err, types = _Texts(n), _Texts(n), _Texts(n)
    p_buf = np.zeros(n, dtype=np.uint8)   # 1: the payload's bytes are in extra
    p_valid = np.zeros(n, dtype=bool)
    p_start = np.zeros(n, dtype=np.int64)
    p_len = np.zeros(n, dtype=np.int64)   # 0 where there is no payload
    groups = _Groups()
    extra: list[bytes] = []
    extra_len = 0

    def decode(tok: bytes) -> int:
        """Decode a distinct token into the next group; its group."""
        nonlocal extra_len
        lenient = decode_envelope(tok, lenient=True, sem=sem)
        strict = decode_envelope(tok, lenient=False, sem=sem)
        # the row's ts, type and payload: lenient's reading, or go mode's where only go mode
        # decodes the line (json v2 unescapes a ts that lenient's own ts type does not)
        env = strict if lenient.error is not None and strict.error is None else lenient
        pay = (-1, 0)
        if env.payload is not None:
            pay = (extra_len, len(env.payload))
            extra.append(env.payload)
            extra_len += len(env.payload)
        return groups.add(_KIND[env.ts_kind], _ns(env.ts), go_err.code(strict.error),
                          len_err.code(lenient.error), types.code(env.type), *pay)

    tiny_seen: dict[bytes, int] = {}
    memo: dict[bytes, int] = {}  # repeated short tokens: the first _MEMO distinct ones
    for a in range(0, n, _PIECE):
        b = min(a + _PIECE, n)
        st = starts[a:b]
        tok_len = lengths[a:b].copy()
        if len(arr):  # a CR before the newline is not the token's
            last = np.clip(st + tok_len - 1, 0, len(arr) - 1)
            tok_len -= (tok_len > 0) & (arr[last] == 13)
        scan = scan_lines(data, st, tok_len)
        ok = scan.ok
        p_valid[a:b] = ok
        p_start[a:b] = scan.p_start
        p_len[a:b] = np.where(ok, scan.p_len, 0)
        _canonical_fields(data, scan, sem, ts_ns[a:b], kind[a:b], go_err.codes[a:b],
                          len_err.codes[a:b], types.codes[a:b], go_err, len_err, types)

        # everything else: the Go port, in both modes, once per distinct token (a log of
        # blank or repeated lines decodes one line, its rows take the result by index)
        rows = np.flatnonzero(~ok)
        if not len(rows):
            continue
        tiny_tokens, group = _tiny_groups(data, st[rows], tok_len[rows])
        lut = np.empty(len(tiny_tokens), dtype=np.int64)
        for k, tok in enumerate(tiny_tokens):
            g = tiny_seen.get(tok)
            lut[k] = tiny_seen[tok] = decode(tok) if g is None else g
        is_tiny = group >= 0
        group[is_tiny] = lut[group[is_tiny]]
        for j in np.flatnonzero(~is_tiny).tolist():
            s0 = int(st[rows[j]])
            tok = bytes(data[s0 : s0 + int(tok_len[rows[j]])])
            g = memo.get(tok)
            if g is None:
                g = decode(tok)
                if len(memo) < _MEMO and len(tok) <= _MEMO_BYTES:
                    memo[tok] = g
            group[j] = g
        got = groups.table()[group]
        at = a + rows
        kind[at] = got[:, 0]
        ts_ns[at] = got[:, 1]
        go_err.codes[at] = got[:, 2]
        len_err.codes[at] = got[:, 3]
        types.codes[at] = got[:, 4]
        has = got[:, 5] >= 0
        at = at[has]
        p_buf[at] = 1
        p_valid[at] = True
        p_start[at] = got[has, 5]
        p_len[at] = got[has, 6]
    del memo, tiny_seen

    if in_place and n:  # the lines packed at the front of data: the raw column's bytes
        raw, shift = packed_lines(data, starts, lengths)
        np.subtract(p_start, shift, out=p_start, where=p_buf == 0)
        del shift
    else:
        raw = _raw_column(data, starts, lengths)
    payload = binary_column([data, b"".join(extra)], p_buf, p_start, p_len)
    del p_buf, p_start, p_len
    if not p_valid.all():
        payload = pa.Array.from_buffers(
            payload.type, n, [pa.py_buffer(np.packbits(p_valid, bitorder="little")),
                              *payload.buffers()[1:]])
    del p_valid
    return pa.table(
        {
            "cart_id": pa.DictionaryArray.from_arrays(pa.array(cart),
                                                      pa.array(unique, pa.string())),
            "line": pa.array(line_no),
            "offset": pa.array(offsets),
            "length": pa.array(lengths),
            "newline": pa.array(newline),
            "ts": pa.array(ts_ns, pa.int64(), mask=ts_ns == _NAT).cast(
                pa.timestamp("ns", tz="UTC")
            ),
            "ts_kind": pa.DictionaryArray.from_arrays(
                pa.array(kind), pa.array(TS_KINDS, pa.string())
            ),
            "type": types.column(),
            "payload": _as_text(payload),
            "envelope_error": go_err.column(),
            "lenient_error": len_err.column(),
            "too_long": pa.array(too_long),
            "raw": raw,
        }
    )


def _canonical_fields(data: bytes | bytearray, scan: Any, sem: GoSemantics,
                      ts_ns: np.ndarray, kind: np.ndarray, go_codes: np.ndarray,
                      len_codes: np.ndarray, type_codes: np.ndarray, go_err: _Texts,
                      len_err: _Texts, types: _Texts) -> None:
    """The ts and type of the canonical lines of ``scan`` (a piece of rows) into the piece's
    slices of the columns: ts by its JSON kind, the type names (bytes in ``data``) as codes."""
    ok = scan.ok
    is_int = ok & (scan.ts_kind == TS_INT)
    if is_int.any():
        secs = scan.ts_value
        # every int64 of seconds is a time (time.Unix takes any); pandas holds fewer
        in_ns = is_int & (secs >= -_SECS_MAX) & (secs <= _SECS_MAX)
        ts_ns[in_ns] = secs[in_ns] * 1_000_000_000
        kind[is_int] = _KIND["number"]
        go_codes[is_int] = go_err.code(numeric_ts_error(sem))
    kind[ok & (scan.ts_kind == TS_NULL)] = _KIND["null"]
    is_str = ok & (scan.ts_kind == TS_STR)
    parsed = is_str & scan.ts_parsed
    ts_ns[parsed] = scan.ts_value[parsed]
    kind[parsed] = _KIND["string"]
    for i in np.flatnonzero(is_str & ~scan.ts_parsed).tolist():
        t, err = _string_time(scan.ts_text(data, i))
        if err is None:
            kind[i] = _KIND["string"]
            ts_ns[i] = _ns(t)
        else:
            go_codes[i] = go_err.code(err)
            len_codes[i] = len_err.code(err)
    rows = np.flatnonzero(ok)
    if len(rows):  # a few names, checked (canonical names are ASCII), never trusted
        names = binary_column([data], np.zeros(len(rows), dtype=np.uint8),
                              scan.type_start[rows], scan.type_len[rows])
        enc = _unchecked_text(names).dictionary_encode()
        enc.dictionary.validate(full=True)
        lut = np.array([types.code(t) for t in enc.dictionary.to_pylist()], dtype=np.int32)
        type_codes[rows] = lut[enc.indices.to_numpy()]


class _Groups:
    """The distinct tokens a batch decoded with the Go port, a row each: ts kind, ts ns,
    go mode's and lenient mode's error codes, type code, payload start in the side buffer
    (-1: none) and length.

    >>> g = _Groups(); g.add(1, 2, 3, 4, 5, 6, 7), g.table().tolist()
    (0, [[1, 2, 3, 4, 5, 6, 7]])
    """

    def __init__(self) -> None:
        self._rows = np.empty((64, 7), dtype=np.int64)
        self._n = 0

    def add(self, *values: int) -> int:
        if self._n == len(self._rows):
            self._rows = np.concatenate([self._rows, np.empty_like(self._rows)])
        self._rows[self._n] = values
        self._n += 1
        return self._n - 1

    def table(self) -> np.ndarray:
        return self._rows[: self._n]


_TINY = 7  # tokens of at most this many bytes are told apart by one uint64 each
_PIECE = 1 << 16  # rows grouped and filled at a time
_MEMO, _MEMO_BYTES = 4096, 1024  # distinct longer tokens (of at most _MEMO_BYTES) remembered


def _tiny_groups(data: bytes | bytearray, starts: np.ndarray, lengths: np.ndarray
                 ) -> tuple[list[bytes], np.ndarray]:
    """The distinct tiny tokens (at most ``_TINY`` bytes) among ``data[starts[i]:+lengths[i]]``
    in order of first appearance and, per token, the index of its distinct one (-1 for a
    longer token): blank lines and stray bytes grouped without a Python object per line.

    >>> _tiny_groups(b"ab\\nlonger line\\nab", np.array([0, 3, 15]), np.array([2, 11, 2]))
    ([b'ab'], array([ 0, -1,  0]))
    """
    group = np.full(len(starts), -1, dtype=np.int64)
    tokens: list[bytes] = []
    rows = np.flatnonzero(lengths <= _TINY)
    if not len(rows):
        return tokens, group
    arr = np.frombuffer(data, dtype=np.uint8)
    st, ln = starts[rows], lengths[rows]
    key = ln.astype(np.uint64) << np.uint64(56)  # the length, then up to 7 bytes
    for k in range(_TINY):
        has = ln > k
        byte = np.zeros(len(rows), dtype=np.uint64)
        byte[has] = arr[st[has] + k]
        key |= byte << np.uint64(8 * k)
    uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # numbered by first appearance
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    group[rows] = rank[inverse.reshape(-1)]
    for j in first[order].tolist():
        s0 = int(st[j])
        tokens.append(bytes(data[s0 : s0 + int(ln[j])]))
    return tokens, group


def _raw_column(data: bytes, starts: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """Every line's exact bytes (without its newline) as one large_binary array."""
    return binary_column([data], np.zeros(len(starts), dtype=np.uint8), starts, lengths)


class _Texts:
    """A column of a few distinct texts (error messages) kept as codes while it is filled,
    dictionary-encoded in order of first appearance.

    >>> t = _Texts(3); t[2] = "b"; t.put(np.array([True, False, False]), "a")
    >>> t.column().to_pylist()
    ['a', None, 'b']
    """

    def __init__(self, n: int) -> None:
        self.codes = np.full(n, -1, dtype=np.int32)
        self.texts: dict[str, int] = {}

    def _code(self, text: str) -> int:
        return self.texts.setdefault(text, len(self.texts))

    def code(self, text: str | None) -> int:
        """The code of ``text`` (-1 for None), to be put in ``codes`` by the caller."""
        return -1 if text is None else self._code(text)

    def put(self, rows: np.ndarray, text: str) -> None:
        self.codes[rows] = self._code(text)

    def __setitem__(self, row: int, text: str | None) -> None:
        self.codes[row] = -1 if text is None else self._code(text)

    def column(self) -> pa.DictionaryArray:
        """The texts as a dictionary array, renumbered by first appearance in place (the
        codes are then the array's own), a piece of rows at a time."""
        codes = self.codes
        if self.texts:
            order = first_appearance(codes, len(self.texts))
            remap = np.full(len(self.texts) + 1, -1, dtype=np.int32)  # [-1]: no text
            remap[order] = np.arange(len(order), dtype=np.int32)
            for a in range(0, len(codes), _PIECE):
                piece = codes[a : a + _PIECE]
                piece[:] = remap[piece]
            texts = list(self.texts)
            uniques = [texts[c] for c in order.tolist()]
        else:
            uniques = []
        return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0),
                                              pa.array(uniques, pa.string()))


def first_appearance(codes: np.ndarray, count: int) -> np.ndarray:
    """The codes ``0 .. count - 1`` that occur in ``codes`` (-1: none), in order of first
    appearance, found a piece of rows at a time (no temporary of the column's size).

    >>> first_appearance(np.array([2, -1, 0, 2, 0]), 3).tolist()
    [2, 0]
    """
    n = len(codes)
    first = np.full(count, n, dtype=np.int64)
    for a in range(0, n, _PIECE):
        seen, at = np.unique(codes[a : a + _PIECE], return_index=True)
        keep = seen >= 0
        np.minimum.at(first, seen[keep], at[keep] + a)
    present = np.flatnonzero(first < n)
    return present[np.argsort(first[present], kind="stable")]


def _unchecked_text(values: pa.Array) -> pa.Array:
    """A large_binary array's buffers read as large_string, UTF-8 not yet checked."""
    return pa.Array.from_buffers(pa.large_string(), len(values), values.buffers(),
                                 null_count=values.null_count)


def count_lines(data: bytes) -> int:
    """Physical lines as Go's scanner cuts them: one per '\n', plus a final fragment."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _as_text(payload: pa.Array) -> pa.Array:
    """Payload bytes as text; invalid UTF-8 (legal inside Go strings) replaced as Go does."""
    text = _unchecked_text(payload)
    try:
        text.validate(full=True)
        return text
    except pa.ArrowInvalid:
        vals = payload.to_pylist()
        return pa.array([None if v is None else go_utf8(v) for v in vals], pa.large_string())


_TEXT_CODES = pa.dictionary(pa.int32(), pa.string())
EVENTS_SCHEMA = pa.schema(
    [
        ("cart_id", _TEXT_CODES), ("line", pa.int64()), ("offset", pa.int64()),
        ("length", pa.int64()), ("newline", pa.bool_()), ("ts", pa.timestamp("ns", tz="UTC")),
        ("ts_kind", pa.dictionary(pa.int8(), pa.string())), ("type", _TEXT_CODES),
        ("payload", pa.large_string()), ("envelope_error", _TEXT_CODES),
        ("lenient_error", _TEXT_CODES), ("too_long", pa.bool_()), ("raw", pa.large_binary()),
    ]
)


def read_events_table(
    source: Source, progress: bool | None = None, with_files: bool = False,
    go_version: str | GoSemantics | None = None, digests: bool = False,
) -> tuple[Any, ...]:
    """Like :func:`read_events` but returns a pyarrow Table and the file problems (and, with
    ``with_files``, one record per file read: path, cart_id, bytes, lines; with ``digests``,
    also ``read``: the file's sha256 and size as read, None when it could not be read)."""
    sem = semantics(go_version)
    logs = find_logs(source)
    tables: list[pa.Table] = []
    problems: list[FileProblem] = list(logs.skipped)  # not regular files: never opened
    for skipped in problems:
        warnings.warn(f"{skipped.path}: {skipped.error}", stacklevel=3)
    iterator: Iterable[LogFile] = logs
    if progress is None:  # more than 200 files: a bar when stderr is a terminal
        progress = None if len(logs) > 200 else False
    if progress is not False:
        iterator = progress_bar(logs, desc="reading logs", unit="file", enabled=progress)
    files: list[dict[str, Any]] = []
    batch: list[LogFile] = []
    datas: list[bytes] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if batch:
            counts: list[int] = []
            table = _read_batch(batch, datas, sem, counts, owned=True)
            for log, data, lines, read in zip(batch, datas, counts, reads, strict=True):
                files.append({"path": str(log.path), "cart_id": log.cart_id,
                              "bytes": len(data), "lines": lines,
                              **({"read": read or None} if digests else {})})
            tables.append(table)
        batch.clear()
        datas.clear()
        reads.clear()
        size = 0

    reads: list[dict[str, Any]] = []
    for log in iterator:
        read: dict[str, Any] = {}
        data, err = read_bytes(log, read if digests else None)
        if err is not None:
            problems.append(FileProblem(str(log.path), log.cart_id, err))
            warnings.warn(f"{log.path}: {err}", stacklevel=3)
        if size + len(data) > _BATCH_BYTES or len(batch) >= _BATCH_FILES:
            flush()
        batch.append(log)
        datas.append(data)
        reads.append(read)
        size += len(data)
    flush()
    for problem in several_files([(str(log.path), log.cart_id) for log in logs]):
        problems.append(problem)
        warnings.warn(problem.error, stacklevel=3)
    table = pa.concat_tables(tables) if tables else EVENTS_SCHEMA.empty_table()
    if with_files:
        return table, problems, files
    return table, problems


def to_frame(table: pa.Table, consume: bool = False) -> pd.DataFrame:
    """Arrow → pandas: numpy dtypes for numbers, bools and times; Arrow-backed text and bytes.
    ``consume``: each column of ``table`` is let go once converted (the caller must not use
    ``table`` again), so the table and the frame are not both held whole."""
    # one thread: Arrow's pool cost ten times the conversion itself (0.46 s vs 0.05 s on
    # 1M rows in 11 chunks), the columns being few and mostly zero-copy
    # split_blocks: each numeric column its own block, taken over without a copy (one block
    # of the three int64 columns would be a copy of them beside the table's)
    df = table.to_pandas(
        types_mapper=lambda t: pd.ArrowDtype(t) if pa.types.is_large_binary(t) else None,
        self_destruct=consume, use_threads=False, split_blocks=True,
    )
    return df


def read_log_events(source: Source, progress: bool | None = None,
                    go_version: str | GoSemantics | None = None,
                    digests: bool = False) -> pd.DataFrame:
    """:func:`cartforensics.read_events` of log files (a file, a directory, a glob or a
    list): one row per physical line, as the service's reader cuts and decodes them.
    ``digests``: each record of ``attrs["files"]`` also says what was read of the file
    (``read``: its sha256 and size, as :func:`read_bytes` gives them).

    >>> read_log_events("sample_data", progress=False).columns[:3].tolist()  # doctest: +SKIP
    ['cart_id', 'line', 'offset']
    """
    sem = semantics(go_version)
    table, problems, files = read_events_table(source, progress, with_files=True,
                                               go_version=sem, digests=digests)
    df = to_frame(table, consume=True)
    del table
    df.attrs["go_version"] = sem.spec
    df.attrs["problems"] = SharedList(p.__dict__ for p in problems)
    df.attrs["files"] = SharedList(files)
    return df


_SEGMENT_BYTES = 1 << 20  # a file is cut for pieces within windows of this many bytes


def _file_segments(data: bytes | bytearray, rows: int,
                   window: int = _SEGMENT_BYTES) -> list[tuple[int, int]]:
    """(start, end) byte ranges of ``data``, in order and covering it, each cut just after a
    newline (the last at the end of ``data``) and holding at most ``rows`` lines; a line
    longer than ``window`` is a range of its own. An empty ``data`` is one empty range.

    >>> _file_segments(b"a\\nb\\nc", 2), _file_segments(b"", 2)
    ([(0, 4), (4, 5)], [(0, 0)])
    """
    n = len(data)
    out: list[tuple[int, int]] = []
    a = 0
    with memoryview(data) as view:
        while a < n:
            nl = newline_positions(view[a : a + window])
            if len(nl) >= rows:
                b = a + int(nl[rows - 1]) + 1
            elif a + window >= n:
                b = n
            elif len(nl):
                b = a + int(nl[-1]) + 1
            else:  # one line longer than the window
                k = data.find(b"\n", a + window)
                b = n if k < 0 else k + 1
            out.append((a, b))
            a = b
    return out or [(0, 0)]


@dataclass
class _Segment:
    log: LogFile
    data: bytes | bytearray  # the file's own buffer when it is one segment
    lines: int
    line_base: int  # lines of its file before it
    offset_base: int  # bytes of its file before it
    file_no: int  # which file of the listing
    size: int = 0  # its bytes

    def __post_init__(self) -> None:
        self.size = len(self.data)


def read_event_pieces(source: Source, progress: bool | None = None,
                      go_version: str | GoSemantics | None = None,
                      rows: int = _PIECE) -> Iterator[pd.DataFrame]:
    """:func:`read_log_events` in pieces of at most about ``rows`` rows (twice that at most),
    one after another: laid end to end they are its rows, in its order, with the same
    values (``line`` and ``offset`` counted in the whole file, ``too_long`` only on the line
    that stops a file's scanner). A file with more lines is cut between lines, so holding
    a piece costs a piece's rows whatever the size of the files; a file's own bytes are held
    while it is read. Each piece's ``attrs``: ``go_version``; ``continued``, whether the
    cart of its last row has more lines (or files) in the next piece; ``files``, one record per file
    with lines in the piece (its ``bytes`` and ``lines`` in the piece; an empty file: one
    record, in the piece where it comes); ``problems``, those found so far. The problems
    are warned about as read_events does.

    >>> logs = ["sample_data/cart-1003.events.log", "sample_data/cart-1005.events.log"]
    >>> [len(p) for p in read_event_pieces(logs, rows=3)]  # 7 lines, then 8
    [3, 3, 4, 3, 2]
    """
    sem = semantics(go_version)
    logs = find_logs(source)
    problems: list[FileProblem] = list(logs.skipped)
    for skipped in problems:
        warnings.warn(f"{skipped.path}: {skipped.error}", stacklevel=2)
    iterator: Iterable[LogFile] = logs
    if progress is None:
        progress = None if len(logs) > 200 else False
    if progress is not False:
        iterator = progress_bar(logs, desc="reading logs", unit="file", enabled=progress)
    pending: list[_Segment] = []
    stopped = [-1]  # the last file whose scanner stopped at a too-long line

    def flush(continued: bool = False) -> pd.DataFrame:
        counts: list[int] = []
        datas = [s.data for s in pending]
        for s in pending:  # (a lone whole-file buffer is packed in place: ours alone)
            s.data = b""
        table = _read_batch([s.log for s in pending], datas, sem, counts, owned=True)
        del datas
        too_long = table["too_long"].to_numpy(zero_copy_only=False).copy()
        ends = np.cumsum(counts)
        for s, end, k in zip(pending, ends.tolist(), counts, strict=True):
            if s.file_no == stopped[0]:
                too_long[end - k : end] = False
            elif too_long[end - k : end].any():
                stopped[0] = s.file_no
        reps = np.asarray(counts, dtype=np.int64)
        line = table["line"].to_numpy() + np.repeat(
            np.array([s.line_base for s in pending], dtype=np.int64), reps)
        offset = table["offset"].to_numpy() + np.repeat(
            np.array([s.offset_base for s in pending], dtype=np.int64), reps)
        for name, values in (("line", line), ("offset", offset), ("too_long", too_long)):
            table = table.set_column(table.schema.get_field_index(name), name,
                                     pa.array(values))
        df = to_frame(table, consume=True)
        df.attrs["go_version"] = sem.spec
        df.attrs["continued"] = continued
        df.attrs["problems"] = SharedList(p.__dict__ for p in problems)
        df.attrs["files"] = SharedList(
            {"path": str(s.log.path), "cart_id": s.log.cart_id, "bytes": s.size,
             "lines": s.lines} for s in pending)
        pending.clear()
        return df

    held = size = 0
    for file_no, log in enumerate(iterator):
        data, err = read_bytes(log)
        if err is not None:
            problems.append(FileProblem(str(log.path), log.cart_id, err))
            warnings.warn(f"{log.path}: {err}", stacklevel=2)
        line_base = 0
        segments = _file_segments(data, rows)
        for j, (a, b) in enumerate(segments):
            seg = data if len(segments) == 1 else bytes(data[a:b])
            if b == len(data):  # its last segment: the file's buffer is let go
                data = b""
            k = count_lines(seg)
            pending.append(_Segment(log, seg, k, line_base, a, file_no))
            line_base += k
            held += k
            size += len(seg)
            del seg
            if held >= rows or size > _BATCH_BYTES or len(pending) >= _BATCH_FILES:
                yield flush(j + 1 < len(segments) or (file_no + 1 < len(logs) and
                                                      logs[file_no + 1].cart_id == log.cart_id))
                held = size = 0
    if pending:
        yield flush()
    for problem in several_files([(str(log.path), log.cart_id) for log in logs]):
        problems.append(problem)
        warnings.warn(problem.error, stacklevel=2)
