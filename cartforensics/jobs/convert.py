"""Convert a directory of cart event logs into a Parquet dataset, and restore the logs from it.

>>> s = convert("logs/", "carts.parquet")                    # doctest: +SKIP
>>> s = convert("logs/", "carts.parquet", incremental=True)  # doctest: +SKIP
>>> r = restore("carts.parquet", "logs-again/")              # doctest: +SKIP

The dataset's layout and schema are in :mod:`cartforensics.io.dataset` and docs/convert.md. In
short: ``events/`` holds one row per physical line (read_events' columns, the outcome and
error in both replay modes, the raw bytes), hive-partitioned by the line's UTC date;
``carts/`` one row per input file; ``manifest.json`` every input file with its hashes.

The work unit is a batch of whole files: :func:`convert_files` is a pure function of the files
and :class:`ConvertOptions` that returns Arrow tables and manifest entries, so that it maps onto
a process pool here, and onto Dask or Spark tasks elsewhere. Memory is bounded by a batch
(a few MB of input per worker; one file is never split), not by the corpus.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cartforensics._runtime.pools import executor_width, main_module_hidden, process_pool
from cartforensics._runtime.progress import progress_bar
from cartforensics._runtime.publish import exchange, write_atomic
from cartforensics._version import __version__
from cartforensics.go.json import go_escape, marshal
from cartforensics.go.version import semantics
from cartforensics.io import logs as _events
from cartforensics.io.dataset import (
    CARTS_DIR,
    CARTS_SCHEMA,
    EVENTS_DIR,
    EVENTS_SCHEMA,
    FORMAT,
    MANIFEST,
    MODES,
    NULL_PARTITION,
    OUTCOMES,
    PARTITION,
    SCHEMA_VERSION,
    DatasetError,
    fragment_files,
    read_manifest,
)
from cartforensics.io.logs import NoLogsError, find_logs, open_regular
from cartforensics.io.provenance import call_record, write_provenance
from cartforensics.model.engine import core, engine_info

__all__ = [
    "ConvertError", "ConvertOptions", "ConvertSummary", "FileTask", "RestoreSummary",
    "convert", "convert_files", "iter_convert", "plan_batches", "restore",
    "write_batch",
]

BATCH_BYTES = 8 << 20  # input bytes per batch (a gzip file counts 6x its size)
REPLAY_LINES = 16384  # lines replayed at once (whole files)
BATCH_FILES = 1000
ROW_GROUP_ROWS = 128 * 1024
CARTS_ROW_GROUP_ROWS = 1024  # a carts row holds two state JSONs (kB each)
TMP_MARK = ".tmp-"  # a fragment being written: <name>.tmp-<attempt>, renamed when complete
_NAT = np.iinfo(np.int64).min
_COUNT_COLUMNS = {mode: [f"{mode}_{name}" for name in OUTCOMES] for mode in MODES}
_DAY_NS = 86_400 * 1_000_000_000
_NOT_REPLAYED = ("offset", "length", "newline")  # read_events' columns a replay never reads


# ------------------------------------------------------------------------------------------
# The pure part: files + options → Arrow tables + manifest entries


@dataclass(frozen=True)
class FileTask:
    """One input file: where it is, its path relative to SRC, its cart id, and its manifest
    entry from the previous run (``--incremental``; None for a full conversion)."""

    path: str
    rel: str
    cart_id: str
    previous: dict[str, Any] | None = None
    path_bytes: str | None = None  # hex of the name's bytes when they are not UTF-8
    special: str | None = None  # what it is when not a regular file (a FIFO, ...): never read


@dataclass(frozen=True)
class ConvertOptions:
    """Everything besides the files that decides the output (picklable, so that a task can
    travel to another process or machine)."""

    run: int = 0  # 0 for a full conversion, +1 per incremental run (in fragment names)
    row_group_rows: int = ROW_GROUP_ROWS
    compression: str = "zstd"
    compression_level: int | None = None
    go_version: str = "1.25"  # the toolchain the envelopes are decoded and replayed as


@dataclass
class FileOutcome:
    """What happened to one file in a batch."""

    rel: str
    action: str  # new, unchanged, tail, whole, kept (unreadable now: previous rows kept)
    reason: str | None
    entry: dict[str, Any]
    rows: int  # event rows produced for this file (the new lines only, for a tail)


@dataclass
class BatchResult:
    events: pa.Table  # EVENTS_SCHEMA rows of this batch, files in task order, lines in order
    dates: pa.Array  # the partition value of each row (string; null: no readable ts)
    carts: pa.Table  # CARTS_SCHEMA, one row per file that was (re)converted or grew
    files: list[FileOutcome]


def _sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def _plan(task: FileTask, blob: bytes, gz: bool) -> tuple[str, str | None, int]:
    """(action, reason, first line to write) for a readable file, from its previous entry."""
    prev = task.previous
    if prev is None:
        return "new", None, 1
    sha = _sha256(blob)
    if prev.get("sha256") == sha:
        return "unchanged", None, 0
    conv = int(prev.get("converted_bytes") or 0)
    if gz:
        return "whole", "the gzip file changed (a .gz is always reconverted whole)", 1
    if prev.get("problems"):
        return "whole", "it had problems when it was last converted", 1
    if len(blob) < conv:
        return "whole", f"it shrank from {conv} to {len(blob)} bytes", 1
    if _sha256(memoryview(blob)[:conv]) != prev.get("sha256"):
        return "whole", f"its first {conv} bytes (the converted part) changed", 1
    if prev.get("lines") and not prev.get("newline_at_end", True):
        return "whole", "its last converted line had no newline and has grown", 1
    return "tail", None, int(prev.get("lines") or 0) + 1


def _replay_columns(r: Any) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """(outcome index into OUTCOMES per row, outcome strings, error strings) of a Replay."""
    # the replay's compact columns, not its outcomes frame (built on first use, for nothing
    # here): per row the outcome's index in OUTCOMES, and its error text's index (-1: none)
    codes = r._codes
    outcome = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(OUTCOMES)).cast(
        pa.string()
    )
    index = np.asarray(r._error_index)
    error = pa.DictionaryArray.from_arrays(
        pa.array(index, mask=index < 0), pa.array(r._error_texts, pa.string())
    ).cast(pa.string())
    return codes, outcome, error


# what Go's json.Marshal escapes and orjson writes as it is (HTML characters, the line and
# paragraph separators), each with the escape go_escape writes (asked of it): replaced by
# Arrow's kernels, which release the GIL, instead of go_escape on every state text
_MARSHAL_ESCAPES = tuple((raw, go_escape(raw)) for raw in (
    b"&", b"<", b">", "\u2028".encode(), "\u2029".encode()))


def _marshalled(texts: list[bytes]) -> pa.Array:
    """orjson's compact texts as :func:`marshal` writes them (:func:`go_escape` applied to
    each), a string array.

    >>> _marshalled([b'{"a":"<&>"}', b'[]']).to_pylist()
    ['{"a":"\\\\u003c\\\\u0026\\\\u003e"}', '[]']
    """
    joined = b"".join(texts)
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), out=offsets[1:])
    out = pa.Array.from_buffers(pa.large_binary(), len(texts),
                                [None, pa.py_buffer(offsets), pa.py_buffer(joined)])
    for raw, escaped in _MARSHAL_ESCAPES:
        # replaced only when there: looking for a byte is a memchr, the separators' first
        # byte (E2) is looked for alone (a scan for three bytes is ten times slower)
        if raw[:1] in joined:
            out = pc.replace_substring(out, raw, escaped)
    return out.cast(pa.string())


def _final_states(r: Any, wanted: Sequence[tuple[str, int]]) -> pa.Array:
    """The state of each (cart id, after that many of its lines) as Go's ``json.Marshal``
    writes it (:func:`marshal`), a string array.

    A final state the compiled core holds is written by it (``go_json_states``: no dict,
    the GIL released); the others (a state before a cart's last line, a cart the
    reference core replayed, one not in the replay) are marshalled from their dicts, and so
    is every state when a text is not valid UTF-8 (the core then writes none).

    >>> from cartforensics.io.logs import read_events_bytes, to_frame
    >>> from cartforensics.model.replay import replay
    >>> r = replay(to_frame(read_events_bytes([("c", b'{"ts":"2024-01-01T00:00:00Z"}\\n')])))
    >>> _final_states(r, [("c", 1), ("new", 0)]).to_pylist()[1][:20]
    '{"id":"new","items":'
    """
    from cartforensics.model.cart import empty_cart

    known = set(r.cart_ids)
    if core is not None:
        states: list[Any] = []
        last_changes: list[str | None] = []
        for cid, line in wanted:
            held = r.compiled_final(cid, line) if cid in known else None
            if held is None:
                states.append(marshal(r.state_at(cid, line=line) if cid in known
                                      else r.state_json(empty_cart(cid))))
                last_changes.append(None)
            else:
                states.append(held[0])
                last_changes.append(held[1])
        try:
            data, offsets = core.go_json_states(states, last_changes)
        except core.Fallback:
            pass
        else:
            return pa.Array.from_buffers(pa.large_string(), len(wanted),
                                         [None, pa.py_buffer(offsets), pa.py_buffer(data)]
                                         ).cast(pa.string())
    return _marshalled([orjson.dumps(r.state_at(cid, line=line) if cid in known
                                     else r.state_json(empty_cart(cid)))
                        for cid, line in wanted])


def _ts_stats(ns: np.ndarray, bounds: np.ndarray) -> dict[str, pa.Array]:
    """Per segment ``ns[bounds[k]:bounds[k + 1]]`` (ns, NaT as min int64): the first, last,
    least and greatest readable time, in µs (null: the segment has none), in one pass each.

    >>> nat = np.iinfo(np.int64).min
    >>> st = _ts_stats(np.array([5000, nat, 2000, nat, nat]), np.array([0, 3, 4, 5]))
    >>> [st[k].to_pylist() for k in ("first_ts", "last_ts", "min_ts", "max_ts")]
    [[5, None, None], [2, None, None], [2, None, None], [5, None, None]]
    """
    readable = np.flatnonzero(ns != _NAT)
    lo = np.searchsorted(readable, bounds[:-1])
    hi = np.searchsorted(readable, bounds[1:])
    has = hi > lo
    values = ns[readable]
    # the segments that have a readable time hold consecutive runs of ``values``
    starts = lo[has]
    out: dict[str, np.ndarray] = {}
    for name, pick in (("first_ts", values[starts] if len(starts) else starts),
                       ("last_ts", values[hi[has] - 1] if len(starts) else starts),
                       ("min_ts", np.minimum.reduceat(values, starts) if len(starts) else starts),
                       ("max_ts", np.maximum.reduceat(values, starts) if len(starts) else starts)):
        full = np.zeros(len(has), dtype=np.int64)
        full[has] = np.floor_divide(pick, 1000)
        out[name] = pa.array(full, pa.int64(), mask=~has)
    return out


def _entry(task: FileTask, gz: bool, blob: bytes | None, content: bytes | None,
           lines: int, problems: list[str], run: int) -> dict[str, Any]:
    sha = None if blob is None else _sha256(blob)
    return {
        "path": task.rel,
        **({"path_bytes": task.path_bytes} if task.path_bytes else {}),
        "cart_id": task.cart_id,
        "compression": "gzip" if gz else None,
        "size": None if blob is None else len(blob),
        "sha256": sha,
        "content_size": None if content is None else len(content),
        "content_sha256": None if content is None else (_sha256(content) if gz else sha),
        "converted_bytes": None if blob is None else len(blob),
        "lines": lines,
        "newline_at_end": True if not content else content.endswith(b"\n"),
        "problems": problems,
        "run": run,
        "fragments": [],
    }


def iter_convert(tasks: Sequence[FileTask], options: ConvertOptions = ConvertOptions()
                 ) -> Iterator[BatchResult]:
    """Convert a batch of whole files, in pieces: a pure function of the files' bytes, their
    previous manifest entries and ``options`` (nothing else is read, nothing is written).

    Files are replayed in groups of whole carts (about REPLAY_LINES lines; a cart's files,
    ``x.events.log`` then ``x.events.log.gz``, are one log, as in :func:`read_events`), one
    piece per group, so memory is bounded by a group, not by the batch. Every file is read
    and replayed whole in both modes (a tail's outcomes depend on the state its file's
    earlier lines built); only the rows of lines not converted before are returned. A file
    that cannot be read gives a manifest entry with its problem and no rows.
    """
    group: list[_Parsed] = []
    lines = 0
    seen: set[str] = set()
    idle: list[FileOutcome] = []  # files that give no rows (unchanged, unreadable)
    # a cart with several files (x.events.log, then x.events.log.gz: read_events' order) is
    # one log, as read_events replays it: once one of its files changed, the later ones are
    # replayed again after it, and the earlier unchanged ones are replayed as their context
    cart_changed: str | None = None  # the cart id whose earlier file changed
    context: list[tuple[FileTask, bytes]] = []  # the current cart's unchanged files so far
    for task in tasks:
        gz = task.path.endswith(".gz")
        if context and context[0][0].cart_id != task.cart_id:
            context = []
        try:
            blob = _read_regular(task)
        except OSError as e:
            problem = f"cannot read: {e.strerror or e}"
            if task.previous is not None:  # keep what an earlier run converted
                idle.append(FileOutcome(task.rel, "kept", problem, dict(task.previous), 0))
            else:
                entry = _entry(task, gz, None, None, 0, [problem], options.run)
                idle.append(FileOutcome(task.rel, "new", problem, entry, 0))
            continue
        action, reason, first = _plan(task, blob, gz)
        if action == "unchanged" and cart_changed == task.cart_id:
            action, reason, first = ("whole", "an earlier file of its cart changed (a cart's "
                                     "files are replayed as one log)", 1)
        if action == "unchanged":
            idle.append(FileOutcome(task.rel, action, None, dict(task.previous or {}), 0))
            context.append((task, blob))
            continue
        members: list[_Parsed] = []
        if cart_changed != task.cart_id:
            cart_changed = task.cart_id
            for before, before_blob in context:  # replayed again, no rows written
                content, _problems = _content(before, before_blob)
                n = _events.count_lines(content)
                members.append(_Parsed(before, content, n, n + 1, len(content), [], None))
            context = []
        content, problems = _content(task, blob)
        n = _events.count_lines(content)
        entry = _entry(task, gz, blob, content, n, problems, options.run)
        members.append(_Parsed(task, content, n, first, len(content), problems,
                               FileOutcome(task.rel, action, reason, entry, 0)))
        del blob, content
        for m in members:  # a cart's files never straddle two groups
            if group and m.task.cart_id not in seen and lines + m.lines > REPLAY_LINES:
                yield _convert_group(group, options)
                group, lines, seen = [], 0, set()
            group.append(m)
            lines += m.lines
            seen.add(m.task.cart_id)
        del members
    if group:
        yield _convert_group(group, options)
    if idle:
        yield BatchResult(EVENTS_SCHEMA.empty_table(), pa.array([], pa.string()),
                          CARTS_SCHEMA.empty_table(), idle)


def _read_regular(task: FileTask) -> bytes:
    """A regular file's bytes; OSError for anything else (a FIFO is opened without blocking
    and never read: it may have replaced the file listed)."""
    if task.special is not None:
        raise OSError(0, f"{task.special}, not a regular file: not read")
    with open_regular(task.path) as fh:
        return fh.read()


def _content(task: FileTask, blob: bytes) -> tuple[bytes, list[str]]:
    """A file's log bytes (a .gz decompressed as far as its stream goes) and the problem."""
    if not task.path.endswith(".gz"):
        return blob, []
    content, err = _events.gunzip_prefix(blob)
    return content, [] if err is None else [err]


def convert_files(tasks: Sequence[FileTask], options: ConvertOptions = ConvertOptions()
                  ) -> BatchResult:
    """:func:`iter_convert` in one piece: (files, options) → (events rows, their date
    partitions, carts rows, manifest entries). The unit to map over files on Dask or Spark."""
    pieces = list(iter_convert(tasks, options))
    if not pieces:
        return BatchResult(EVENTS_SCHEMA.empty_table(), pa.array([], pa.string()),
                           CARTS_SCHEMA.empty_table(), [])
    return BatchResult(
        pa.concat_tables([p.events for p in pieces]),
        pa.concat_arrays([p.dates for p in pieces]),
        pa.concat_tables([p.carts for p in pieces]),
        [f for p in pieces for f in p.files],
    )


@dataclass
class _Parsed:
    task: FileTask
    content: bytes  # the whole file, decompressed
    lines: int
    first: int  # the first line to return (> 1 for a tail)
    content_size: int
    problems: list[str]
    outcome: FileOutcome | None  # None: replayed only as its cart's earlier lines


def _convert_group(members: list[_Parsed], options: ConvertOptions) -> BatchResult:
    """Replay files with distinct cart ids together; their event rows and carts rows."""
    from cartforensics.io.logs import to_frame
    from cartforensics.model.replay import replay_modes

    table = _events.read_events_bytes([(m.task.cart_id, m.content) for m in members],
                                      go_version=options.go_version)
    n = table.num_rows
    counts = [m.lines for m in members]
    if sum(counts) != n:  # never: both count Go's lines
        raise AssertionError(f"{n} rows decoded, {sum(counts)} lines counted")
    bounds = np.r_[0, np.cumsum(counts)].astype(np.int64)
    # a file's state: its cart's after the file's last line (a cart's files are one log)
    upto: list[int] = []
    for k, m in enumerate(members):
        same = k > 0 and members[k - 1].task.cart_id == m.task.cart_id
        upto.append((upto[-1] if same else 0) + m.lines)
    # the replays' frame: the columns a replay reads (not the offsets, lengths, newlines)
    df = to_frame(table.drop_columns([c for c in _NOT_REPLAYED if c in table.column_names]))
    written = [k for k, m in enumerate(members) if m.outcome is not None]  # carts rows
    per_mode: dict[str, tuple[np.ndarray, pa.Array, pa.Array]] = {}
    finals: dict[str, pa.Array] = {}
    wanted = [(members[k].task.cart_id, upto[k]) for k in written]
    # both modes' replays of one frame: what does not depend on the mode is made once
    for r in replay_modes(df, MODES, go_version=options.go_version):
        finals[r.mode] = _final_states(r, wanted)
        per_mode[r.mode] = _replay_columns(r)
        del r
    del df

    ts_ns = table["ts"].cast(pa.int64()).fill_null(_NAT).to_numpy()
    ts_null = ts_ns == _NAT
    source_idx = np.repeat(np.arange(len(members), dtype=np.int32), counts)
    sources = pa.DictionaryArray.from_arrays(
        pa.array(source_idx), pa.array([m.task.rel for m in members], pa.string())
    ).cast(pa.string())
    line = table["line"].to_numpy()
    keep = np.ones(n, dtype=bool)
    for k, m in enumerate(members):
        if m.first > 1:
            seg = slice(bounds[k], bounds[k + 1])
            keep[seg] = line[seg] >= m.first
    ts_us = pa.array(np.floor_divide(ts_ns, 1000), pa.int64(), mask=ts_null).cast(
        EVENTS_SCHEMA.field("ts").type
    )
    out = pa.table(
        {
            "source": sources,
            "cart_id": table["cart_id"].cast(pa.string()),
            "line": table["line"],
            "offset": table["offset"],
            "length": table["length"],
            "newline": table["newline"],
            "ts": ts_us,
            "ts_ns": pa.array(ts_ns, pa.int64(), mask=ts_null),
            "ts_kind": table["ts_kind"].cast(pa.string()),
            "type": table["type"].cast(pa.string()),
            "payload": table["payload"].cast(pa.string()),
            "envelope_error": table["envelope_error"].cast(pa.string()),
            "lenient_error": table["lenient_error"].cast(pa.string()),
            "too_long": table["too_long"],
            "outcome_go": per_mode["go"][1],
            "error_go": per_mode["go"][2],
            "outcome_lenient": per_mode["lenient"][1],
            "error_lenient": per_mode["lenient"][2],
            "raw": table["raw"].cast(pa.large_binary()),
        },
        schema=EVENTS_SCHEMA,
    )
    days = np.floor_divide(ts_ns, _DAY_NS)
    uniq, inv = np.unique(np.where(ts_null, _NAT, days), return_inverse=True)
    labels = [None if d == _NAT else str(np.datetime64(int(d), "D")) for d in uniq.tolist()]
    dates = pa.DictionaryArray.from_arrays(pa.array(inv.astype(np.int32)),
                                           pa.array(labels, pa.string())).cast(pa.string())
    if not keep.all():
        mask = pa.array(keep)
        out = out.filter(mask)
        dates = dates.filter(mask)

    # outcome counts per file and mode in one bincount each (file index * outcomes + code)
    n_out = len(OUTCOMES)
    kept_upto = np.r_[0, np.cumsum(keep)]
    kept = kept_upto[bounds[1:]] - kept_upto[bounds[:-1]]  # rows written per file
    for k in written:
        members[k].outcome.rows = int(kept[k])  # type: ignore[union-attr]
    ts_stats = _ts_stats(ts_ns, bounds)
    picked = pa.array(written, pa.int64())
    columns: dict[str, Any] = {
        "source": [members[k].task.rel for k in written],
        "cart_id": [members[k].task.cart_id for k in written],
        "lines": [members[k].lines for k in written],
        "bytes": [members[k].content_size for k in written],
        **{name: ts.take(picked).cast(CARTS_SCHEMA.field(name).type)
           for name, ts in ts_stats.items()},
    }
    for mode in MODES:
        per_file = np.bincount(source_idx.astype(np.int64) * n_out + per_mode[mode][0],
                               minlength=len(members) * n_out).reshape(-1, n_out)[written]
        columns.update(zip(_COUNT_COLUMNS[mode], per_file.T, strict=True))
    for mode in MODES:
        columns[f"state_{mode}"] = finals[mode]
    columns["problems"] = ["\n".join(members[k].problems) or None for k in written]
    carts = pa.table(columns, schema=CARTS_SCHEMA)
    return BatchResult(out, dates, carts, [m.outcome for m in members if m.outcome is not None])


# ------------------------------------------------------------------------------------------
# Writing a batch's fragments (the worker side)


def _fragment_name(run: int, batch: int) -> str:
    return f"part-{run:04d}-{batch:05d}.parquet"


# columns whose values are (nearly) all distinct: a dictionary page for them is built, found
# too large and dropped, and min/max statistics of kB-long values help no reader
_DISTINCT_COLUMNS = frozenset({"line", "offset", "length", "ts", "ts_ns", "payload", "raw",
                               "state_go", "state_lenient"})
_NO_STATISTICS = frozenset({"payload", "raw", "state_go", "state_lenient"})


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    return [n for n in schema.names if n not in _DISTINCT_COLUMNS]


def _statistics_columns(schema: pa.Schema) -> list[str]:
    return [n for n in schema.names if n not in _NO_STATISTICS]


class _FragmentWriter:
    """One Parquet file written in row groups of about ``options.row_group_rows`` rows."""

    def __init__(self, path: Path, schema: pa.Schema, options: ConvertOptions,
                 row_group_rows: int, scratch: Path | None = None) -> None:
        self.path = path
        self.schema = schema
        self.options = options
        self.row_group_rows = row_group_rows
        self.buffer: list[pa.Table] = []
        self.rows = 0
        self.writer: pq.ParquetWriter | None = None
        # unique per attempt: two attempts of one task (a retry while the first is still
        # running on a dying worker) never write the same temporary file; both write the same
        # bytes under the final name, which os.replace puts in place whole. In ``scratch``
        # (a directory beside the dataset being built, never inside it) when given: an attempt
        # that outlives the conversion then writes into a directory that is gone, or was
        # removed, and never leaves a file in the committed dataset
        name = f"{path.name}{TMP_MARK}{uuid.uuid4().hex[:12]}"
        if scratch is not None:
            flat = "~".join(path.parts[-3:])  # events/date=D/part-R-B.parquet: unique in a run
            name = f"{flat}{TMP_MARK}{uuid.uuid4().hex[:12]}"
        self._tmp = (scratch / name) if scratch is not None else path.with_name(name)

    def add(self, table: pa.Table) -> None:
        self.buffer.append(table)
        self.rows += table.num_rows
        if self.rows >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if not self.buffer:
            return
        if self.writer is None:
            # not parents=True: a task that outlives its conversion (the driver gave up and
            # removed the temporary dataset) must fail, not create the dataset's folder again
            self.path.parent.mkdir(exist_ok=True)
            self.writer = pq.ParquetWriter(
                self._tmp, self.schema,
                compression=self.options.compression,
                compression_level=self.options.compression_level,
                use_dictionary=_dictionary_columns(self.schema),
                write_statistics=_statistics_columns(self.schema),
            )
        self.writer.write_table(pa.concat_tables(self.buffer),
                                row_group_size=self.row_group_rows)
        self.buffer, self.rows = [], 0

    def close(self) -> None:
        self._flush()
        if self.writer is not None:
            self.writer.close()
            os.replace(self._tmp, self.path)


def write_batch(pieces: Iterable[BatchResult], root: Path, batch: int,
                options: ConvertOptions, scratch: Path | None = None) -> list[FileOutcome]:
    """Write a batch's rows as ``events/date=D/part-R-B.parquet`` (one file per date) and
    ``carts/part-R-B.parquet``, piece by piece; note the fragments in each file's entry.
    ``scratch``: where the fragments are written before they are renamed into ``root``
    (default: beside them)."""
    name = _fragment_name(options.run, batch)
    writers: dict[str, _FragmentWriter] = {}
    by_source: dict[str, list[str]] = {}
    files: list[FileOutcome] = []

    def put(rel: str, schema: pa.Schema, table: pa.Table) -> None:
        w = writers.get(rel)
        if w is None:
            rows = options.row_group_rows if schema is EVENTS_SCHEMA else CARTS_ROW_GROUP_ROWS
            w = writers[rel] = _FragmentWriter(root / rel, schema, options, rows, scratch)
        w.add(table)
        for s in table["source"].unique().to_pylist():
            frags = by_source.setdefault(s, [])
            if rel not in frags:
                frags.append(rel)

    try:
        for piece in pieces:
            files.extend(piece.files)
            ev, dates = piece.events, piece.dates
            if ev.num_rows:
                # one hash pass, then integer compares (a string compare per date was ~5%
                # of a conversion); null dates get their own code
                coded = dates.dictionary_encode()
                codes = coded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
                labels = coded.dictionary.to_pylist()
                for k in np.unique(codes).tolist():
                    label = NULL_PARTITION if k < 0 else labels[k]
                    put(f"{EVENTS_DIR}/{PARTITION}={label}/{name}", EVENTS_SCHEMA,
                        ev.filter(pa.array(codes == k)))
            if piece.carts.num_rows:
                put(f"{CARTS_DIR}/{name}", CARTS_SCHEMA, piece.carts)
    finally:
        for w in writers.values():
            w.close()
    for f in files:
        if f.action in ("new", "whole", "tail"):
            f.entry["fragments"] = sorted(by_source.get(f.rel, []))
    return files


def _run_batch(tasks: list[FileTask], options: ConvertOptions, root: str, batch: int,
               scratch: str | None = None) -> list[FileOutcome]:
    """One task of the pool: convert a batch of files and write its fragments under root
    (through ``scratch``)."""
    return write_batch(iter_convert(tasks, options), Path(root), batch, options,
                       Path(scratch) if scratch is not None else None)


def _worker_init() -> None:
    # one process per core already: keep Arrow from starting a thread per core in each
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


# ------------------------------------------------------------------------------------------
# The driver: plan, run the batches, patch an incremental dataset, swap it into place


@dataclass
class ConvertSummary:
    """What one conversion did."""

    dst: str
    incremental: bool
    files: int = 0  # input files seen
    lines: int = 0  # event rows written by this run
    carts: int = 0  # carts rows in the dataset
    new: list[str] = field(default_factory=list)
    appended: list[str] = field(default_factory=list)  # grown files: only their tails
    reconverted: list[dict[str, str]] = field(default_factory=list)  # path, reason
    unchanged: int = 0
    missing: list[str] = field(default_factory=list)  # in the dataset, gone from SRC (kept)
    problems: list[dict[str, str]] = field(default_factory=list)  # path, error
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No input file had a problem."""
        return not self.problems

    def __str__(self) -> str:
        rate = f", {self.lines / self.seconds:,.0f} lines/s" if self.seconds > 0 else ""
        out = [f"{'updated' if self.incremental else 'wrote'} {self.dst}: {self.files} files, "
               f"{self.lines:,} event rows written, {self.carts} carts, "
               f"{self.seconds:.1f} s{rate}"]
        if self.incremental:
            out.append(f"  new files: {len(self.new)}, grown (tails only): "
                       f"{len(self.appended)}, unchanged: {self.unchanged}, reconverted "
                       f"whole: {len(self.reconverted)}, gone from the source (kept): "
                       f"{len(self.missing)}")
        out += [f"  reconverted {r['path']}: {r['reason']}" for r in self.reconverted]
        out += [f"  gone from the source, kept in the dataset: {m}" for m in self.missing]
        out += [f"  note: {n}" for n in self.notes]
        out += [f"  PROBLEM {p['path']}: {p['error']}" for p in self.problems]
        return "\n".join(out)


def plan_batches(tasks: list[FileTask]) -> list[list[FileTask]]:
    """Cut the (sorted) tasks into batches by input size, a cart's files in one batch;
    independent of the worker count, so that the dataset is too."""
    out: list[list[FileTask]] = []
    size = 0
    ids: set[str] = set()
    for t in tasks:
        try:
            est = os.stat(t.path).st_size * (6 if t.path.endswith(".gz") else 1)
        except OSError:
            est = 0
        if not out or (size + est > BATCH_BYTES and out[-1] or len(out[-1]) >= BATCH_FILES) \
                and t.cart_id not in ids:
            out.append([])
            size = 0
            ids = set()
        out[-1].append(t)
        size += est
        ids.add(t.cart_id)
    return out


def _tmp_sibling(dst: Path, what: str) -> Path:
    return dst.parent / f".{dst.name}.{what}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _check_fragments(dst: Path, old: dict[str, Any]) -> None:
    """Refuse (DatasetError, one line) a dataset whose fragments an incremental run cannot
    patch safely: one that is not a regular file inside ``dst`` or has another schema
    (:func:`fragment_files`), or one the manifest names that is not there."""
    there = {p.relative_to(dst).as_posix()
             for part in (EVENTS_DIR, CARTS_DIR) for p in fragment_files(dst, part)}
    for f in old.get("files", []):
        for frag in f.get("fragments", []):
            if frag not in there:
                raise DatasetError(f"{dst}: the manifest lists {frag} for {f['path']!r}, and "
                                   "the dataset has no such fragment: convert the logs anew")


def _clone(old: Path, new: Path) -> None:
    """Copy a dataset by hard links (files are only ever replaced, never written in place).
    A symbolic link inside it is refused: convert never writes one, and patching what it
    points to would write outside the dataset."""
    for dirpath, dirs, files in os.walk(old):
        rel = Path(dirpath).relative_to(old)
        (new / rel).mkdir(parents=True, exist_ok=True)
        for f in files + dirs:
            p = Path(dirpath) / f
            if p.is_symlink():
                raise DatasetError(f"{p}: a symbolic link inside the dataset; convert never "
                                   "writes one: convert the logs anew into a new path")
        for f in files:
            if rel == Path(".") and f == MANIFEST:
                continue
            try:
                os.link(Path(dirpath) / f, new / rel / f, follow_symlinks=False)
            except OSError:
                shutil.copy2(Path(dirpath) / f, new / rel / f, follow_symlinks=False)


def _drop_rows(root: Path, fragment: str, sources: set[str]) -> bool:
    """Rewrite a fragment without the rows of ``sources``; False when nothing is left. Only
    a regular file inside ``root`` is touched (the manifest named it: untrusted)."""
    path = root / fragment
    real_root = os.path.realpath(root)
    if not path.is_file() or path.is_symlink() or \
            os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
        raise DatasetError(f"{fragment}: not a fragment inside the dataset; convert the logs "
                           "anew")
    table = pq.ParquetFile(path).read()
    keep = pa.compute.invert(pa.compute.is_in(table["source"],
                                              value_set=pa.array(sorted(sources))))
    left = table.filter(keep)
    if left.num_rows == 0:
        path.unlink()
        return False
    meta = pq.ParquetFile(path).metadata
    rg = meta.row_group(0).num_rows if meta.num_row_groups else ROW_GROUP_ROWS
    codec = meta.row_group(0).column(0).compression.lower() if meta.num_row_groups else "zstd"
    # not synced: nothing of the dataset being built is, its rename into place publishes it
    write_atomic(path, lambda fh: pq.write_table(left, fh, row_group_size=max(rg, 1),
                                                 compression=codec), sync=False)
    return True


def _swap_into_place(tmp: Path, dst: Path) -> None:
    """Make ``tmp`` the dataset at ``dst``: a plain rename when there is none; an atomic
    exchange with the old dataset (then removed) when there is one."""
    if not dst.exists():
        os.rename(tmp, dst)
        return
    if read_manifest(dst, check=False) is None:  # someone put something else there meanwhile
        raise DatasetError(f"{dst}: no longer a cartforensics dataset; left untouched "
                           f"(the new one is in {tmp})")
    if exchange(tmp, dst):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old dataset
        return
    old = _tmp_sibling(dst, "old")
    os.rename(dst, old)
    os.rename(tmp, dst)
    shutil.rmtree(old, ignore_errors=True)


def check_destination(dst: str | os.PathLike[str], check: bool = True
                      ) -> dict[str, Any] | None:
    """The manifest of the dataset at ``dst``, None when nothing is there; refuses (raises
    DatasetError) anything else: we never overwrite what is not ours. ``check=False``: a
    dataset of ours whose manifest is damaged is accepted too (to be replaced whole; its
    manifest's fields are not to be used)."""
    p = Path(dst)
    if p.is_symlink():
        raise DatasetError(f"{p}: is a symbolic link; give the directory it points to")
    if not p.exists():
        return None
    manifest = read_manifest(p, check) if p.is_dir() else None
    if manifest is None:
        kind = "directory" if p.is_dir() else "file"
        raise DatasetError(
            f"{p}: exists and is not a cartforensics dataset (a {kind} without our "
            f"{MANIFEST}); refusing to overwrite it: give a new path, or remove it yourself"
        )
    return manifest


POOLS = ("process", "thread")
DEFAULT_POOL = "thread"  # the compiled replay core releases the GIL: docs/performance.md


def _process_pool(workers: int) -> ProcessPoolExecutor:
    return process_pool(workers, "cartforensics.jobs.convert", initializer=_worker_init)


def _describe_failure(e: BaseException) -> str:
    name = type(e).__name__
    if isinstance(e, BrokenProcessPool):
        return ("a worker process died (out of memory? killed?); nothing was written to the "
                "destination; retry, or pass workers=1")
    if name == "KilledWorker":  # dask: the task's workers died more times than allowed
        return (f"a batch's workers died repeatedly on the cluster ({e}); nothing was written "
                "to the destination")
    return f"a batch failed on a worker: {name}: {e}"


class ConvertError(RuntimeError):
    """A batch could not be converted (a worker died, a task failed); the destination was left
    as it was."""


def _run_all(batches: list[list[FileTask]], options: ConvertOptions, root: Path,
             workers: int, on_done: Callable[[list[FileOutcome]], None],
             executor: Executor | None = None, pool: str = DEFAULT_POOL,
             scratch: Path | None = None) -> None:
    """Run every batch (``_run_batch``: it writes its own fragments under ``root``) and pass
    each batch's manifest entries to ``on_done`` in the order they finish. ``executor``: any
    ``concurrent.futures.Executor`` (a Dask ``client.get_executor()`` too); else a pool of
    ``workers`` processes or threads (``pool``), or this thread for ``workers=1``."""
    where = str(scratch) if scratch is not None else None
    if executor is None and (workers <= 1 or len(batches) <= 1):
        for b, batch in enumerate(batches):
            on_done(_run_batch(batch, options, str(root), b, where))
        return
    own = executor is None
    if own:
        n = min(workers, len(batches))
        if pool == "thread":
            run: Executor = ThreadPoolExecutor(max_workers=n, thread_name_prefix="convert")
        else:
            run = _process_pool(n)
        window = 2 * n
    else:
        run = executor  # type: ignore[assignment]
        window = 2 * executor_width(run)
    hide = main_module_hidden if own and pool == "process" else nullcontext

    def submit(b: int, batch: list[FileTask]) -> Future:
        with hide():
            return run.submit(_run_batch, batch, options, str(root), b, where)

    pending: set[Future] = set()
    try:
        todo = iter(enumerate(batches))
        for b, batch in todo:
            pending.add(submit(b, batch))
            if len(pending) >= window:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    result = fut.result()
                except Exception as e:
                    raise ConvertError(_describe_failure(e)) from e
                on_done(result)
                nxt = next(todo, None)
                if nxt is not None:
                    pending.add(submit(*nxt))
    finally:
        for fut in pending:
            fut.cancel()
        if own:
            run.shutdown(wait=True, cancel_futures=True)
        elif pending:  # a foreign executor: wait for what already runs (it writes under root)
            wait(pending)


@contextmanager
def _old_objects_frozen() -> Iterator[None]:
    """While a conversion runs, the objects that existed before it (the imported modules':
    ~100,000) are left out of the cyclic collector's full scans (``gc.freeze``: one such scan
    took 50-100 ms, the GIL held) and given back after; as they are when something else
    froze objects already (a forkserver worker does).

    >>> with _old_objects_frozen():
    ...     gc.get_freeze_count() > 0
    True
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _remove_temporaries(root: Path) -> None:
    """Fragments an attempt left half-written (a worker that died mid-write)."""
    for p in root.rglob(f"*{TMP_MARK}*"):
        p.unlink(missing_ok=True)


def convert(src: str | os.PathLike[str], dst: str | os.PathLike[str],
            workers: int | None = None, incremental: bool = False,
            progress: bool | None = None, go_version: str | None = None, *,
            executor: Executor | None = None, pool: str = DEFAULT_POOL) -> ConvertSummary:
    """Convert the logs of directory ``src`` into the Parquet dataset ``dst``.

    ``workers``: how many batches run at once (default ``os.cpu_count()``; 1 runs in this
    process). ``pool``: ``"thread"`` (default: the compiled replay core releases the GIL) or
    ``"process"`` (also safe from a plain script without a ``__main__`` guard).
    ``executor``: run the batches on any ``concurrent.futures.Executor`` instead, e.g. a Dask
    cluster's
    ``client.get_executor()`` (the workers must see ``src`` and ``dst``'s directory: a shared
    file system); ``workers`` is then ignored.
    ``incremental``: keep what ``dst`` already holds; convert only new files and the new
    tails of grown ones (a file whose converted part changed, or that shrank, is reconverted
    whole and reported). ``progress``: a tqdm bar (None: when stderr is a terminal).
    ``go_version``: the toolchain the envelopes are decoded and replayed as (``"1.25"``
    default, ``"1.27"``, ...; see :mod:`cartforensics.go.version`), kept in the manifest; an
    incremental run as another toolchain converts everything anew.

    The dataset is built in a hidden sibling of ``dst`` and renamed into place when complete;
    an existing ``dst`` is replaced only when it is a cartforensics dataset. Problems with
    input files (unreadable, a broken gzip stream) are in the summary and the manifest; the
    other files are converted.
    """
    t0 = time.perf_counter()
    began = time.time()
    if workers is None:
        workers = os.cpu_count() or 1
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, not {workers!r}")
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}, not {pool!r}")
    if executor is not None and not isinstance(executor, Executor):
        raise ValueError(f"executor must be a concurrent.futures.Executor (for Dask: "
                         f"client.get_executor()), not {type(executor).__name__}")
    src_p, dst_p = Path(src).absolute(), Path(dst).absolute()  # workers may run elsewhere
    if not src_p.is_dir():
        raise NoLogsError(f"{src_p}: not a directory (convert takes a directory of logs)")
    sem = semantics(go_version)
    # a full conversion replaces a damaged dataset of ours; an incremental one reads it
    old = check_destination(dst_p, check=incremental)
    if not incremental:
        old = None
    summary = ConvertSummary(str(Path(dst)), incremental)
    if incremental and old is not None and semantics(old.get("go_version")) != sem:
        summary.notes.append(
            f"the dataset was converted as {semantics(old.get('go_version')).label}, this run "
            f"is {sem.label}: converted everything anew"
        )
        old = None
    if incremental and old is not None and old.get("schema_version") != SCHEMA_VERSION:
        summary.notes.append(
            f"the dataset has schema version {old.get('schema_version')}, this version writes "
            f"{SCHEMA_VERSION}: converted everything anew"
        )
        old = None
    if incremental and old is None and not summary.notes:
        summary.notes.append("no dataset there yet: converted everything")
    if incremental and old is not None:
        _check_fragments(dst_p, old)  # before anything is written
    previous = {f["path"]: f for f in (old or {}).get("files", [])} if incremental else {}
    run = int(old.get("run", 0)) + 1 if incremental and old is not None else 0
    options = ConvertOptions(run=run, go_version=sem.spec)

    logs = find_logs(src_p)
    tasks = []
    # the logs are SRC's entries (src_p / name, find_logs of a directory): their path is
    # SRC's text and the name, their relative path the name (str of a Path and
    # Path.relative_to format and parse paths again, in the driver alone)
    prefix = os.path.join(str(src_p), "")
    for log in logs:
        name = log.path.name
        rel, name_bytes = text_name(name)
        tasks.append(FileTask(prefix + name, rel, log.cart_id, previous.get(rel), name_bytes))
    for skip in logs.skipped:  # named like a log, not a regular file: a problem, never opened
        rel = skip.path.rsplit("/", 1)[-1]
        kind = skip.error.split(", not a regular file")[0]
        tasks.append(FileTask(os.path.join(src_p, rel), rel, skip.cart_id, previous.get(rel),
                              special=kind))
    tasks.sort(key=lambda t: (t.cart_id.encode("utf-8", "surrogateescape"), t.rel))
    summary.files = len(tasks)
    batches = plan_batches(tasks)

    dst_p.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(dst_p, "tmp")
    scratch = _tmp_sibling(dst_p, "attempts")  # fragments being written, outside tmp
    results: list[FileOutcome] = []
    try:
        scratch.mkdir()
        if incremental and old is not None:
            _clone(dst_p, tmp)
        else:
            tmp.mkdir()
        (tmp / EVENTS_DIR).mkdir(exist_ok=True)
        (tmp / CARTS_DIR).mkdir(exist_ok=True)
        bar = progress_bar(total=len(tasks), desc="converting", unit="file", enabled=progress)
        started = time.perf_counter()

        def on_done(files: list[FileOutcome]) -> None:
            results.extend(files)
            summary.lines += sum(f.rows for f in files)
            bar.update(len(files))
            rate = summary.lines / max(time.perf_counter() - started, 1e-9)
            bar.set_postfix_str(f"{summary.lines:,} lines, {rate:,.0f} lines/s", refresh=False)

        try:
            with _old_objects_frozen():
                _run_all(batches, options, tmp, workers, on_done, executor, pool, scratch)
        finally:
            bar.close()
        _remove_temporaries(tmp)
        shutil.rmtree(scratch, ignore_errors=True)  # a late attempt now writes nowhere
        manifest = _finish(tmp, old, results, previous, options, summary, src_p)
        # orjson: the stdlib's indenting encoder is pure Python, ~0.14 ms per file entry
        (tmp / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
        write_provenance(  # the inputs' hashes as the manifest has them (read once)
            tmp, input_root=src_p, started=began,
            inputs=[{"path": f["path"], "sha256": f["sha256"], "bytes": f["size"]}
                    for f in manifest["files"] if f.get("sha256") and f.get("size") is not None],
            call=call_record("convert", src=src, dst=dst, incremental=incremental or None,
                             go_version=go_version),
            details={"go_version": sem.spec, "modes": ["go", "lenient"],
                     "engine": engine_info()["engine"]})
        _swap_into_place(tmp, dst_p)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary.seconds = time.perf_counter() - t0
    return summary


def _finish(root: Path, old: dict[str, Any] | None, results: list[FileOutcome],
            previous: dict[str, dict[str, Any]], options: ConvertOptions,
            summary: ConvertSummary, src: Path) -> dict[str, Any]:
    """Patch the cloned old fragments (drop rows that were reconverted or replaced), and build
    the manifest."""
    drop: dict[str, set[str]] = {}
    entries: dict[str, dict[str, Any]] = {}
    for f in results:
        prev = previous.get(f.rel)
        if f.action in ("whole", "tail") and prev is not None:
            for frag in prev.get("fragments", []):
                is_carts = frag.startswith(CARTS_DIR + "/")
                if f.action == "whole" or is_carts:
                    drop.setdefault(frag, set()).add(f.rel)
            if f.action == "tail":
                f.entry["fragments"] = [
                    fr for fr in prev.get("fragments", []) if not fr.startswith(CARTS_DIR + "/")
                ] + f.entry["fragments"]
        entries[f.rel] = f.entry
        if f.action == "new" and f.reason is None:
            summary.new.append(f.rel)
        elif f.action == "tail":
            summary.appended.append(f.rel)
        elif f.action == "whole":
            summary.reconverted.append({"path": f.rel, "reason": f.reason or ""})
        elif f.action == "unchanged":
            summary.unchanged += 1
        if f.action == "kept":
            summary.problems.append({"path": f.rel, "error": f"{f.reason} (kept the rows "
                                     "converted before)"})
        else:
            summary.problems += [{"path": f.rel, "error": p} for p in f.entry["problems"]]
    gone = {frag for frag, srcs in drop.items() if not _drop_rows(root, frag, srcs)}
    if gone:
        for e in entries.values():
            e["fragments"] = [fr for fr in e["fragments"] if fr not in gone]
    for rel, prev in previous.items():
        if rel not in entries:
            summary.missing.append(rel)
            entries[rel] = prev
    files = [entries[k] for k in sorted(entries)]
    summary.carts = sum(1 for e in files if e.get("sha256") is not None)
    run_record = {
        "run": options.run,
        "incremental": options.run > 0,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": len(results),
        "new": len(summary.new),
        "appended": len(summary.appended),
        "unchanged": summary.unchanged,
        "reconverted": summary.reconverted,
        "missing": summary.missing,
    }
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "go_version": options.go_version,
        "package_version": __version__,
        "source": _events.name_text(str(src.resolve())),
        "layout": {
            "events": f"{EVENTS_DIR}/{PARTITION}=YYYY-MM-DD/part-RUN-BATCH.parquet "
                      f"({PARTITION}={NULL_PARTITION}: no readable ts)",
            "carts": f"{CARTS_DIR}/part-RUN-BATCH.parquet",
        },
        "run": options.run,
        "runs": ((old or {}).get("runs", []) if options.run > 0 else []) + [run_record],
        "lines": sum(int(e.get("lines") or 0) for e in files),
        "files": files,
    }


# ------------------------------------------------------------------------------------------
# Restore


@dataclass
class RestoreSummary:
    out: str
    files: int = 0
    bytes: int = 0
    verified: int = 0  # files whose content sha256 equals the manifest's
    mismatches: list[dict[str, str]] = field(default_factory=list)  # path, reason
    skipped: list[dict[str, str]] = field(default_factory=list)  # never converted: path, why

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def __str__(self) -> str:
        out = [f"restored {self.files} files ({self.bytes:,} bytes) into {self.out}; "
               f"{self.verified} verified against the manifest's sha256"]
        out += [f"  skipped {s['path']}: {s['reason']}" for s in self.skipped]
        out += [f"  MISMATCH {m['path']}: {m['reason']}" for m in self.mismatches]
        return "\n".join(out)


def text_name(rel: str) -> tuple[str, str | None]:
    """(the name as text, the hex of its bytes when it is not UTF-8): a name of bytes the
    file system gave keeps them as ``\\xNN`` in the dataset, and exactly in ``path_bytes``.

    >>> text_name("a.events.log")
    ('a.events.log', None)
    """
    text = _events.name_text(rel)
    return text, (None if text == rel else os.fsencode(rel).hex())


def disk_name(entry: dict[str, Any]) -> str:
    """A manifest entry's file name on disk (its exact bytes when they are not UTF-8)."""
    raw = entry.get("path_bytes")
    return os.fsdecode(bytes.fromhex(raw)) if raw else entry["path"]


def _safe_rel(rel: str) -> Path:
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise DatasetError(f"manifest path {rel!r} is not a plain relative path")
    return p


def restore(dataset: str | os.PathLike[str], out_dir: str | os.PathLike[str]
            ) -> RestoreSummary:
    """Write the logs of a converted dataset back into the new directory ``out_dir``, every
    line at its offset, and check each file's sha256 against the manifest.

    A plain log comes back byte-identical (its sha256 is the manifest's ``sha256``). A
    ``.gz`` log comes back under the same name, gzip-compressed anew (deterministically:
    mtime 0, level 6), so its decompressed content is byte-identical (the manifest's
    ``content_sha256``); the original compressed bytes are not kept. Files that could not be
    read when converted are skipped and listed.
    """
    root = Path(dataset)
    manifest = read_manifest(root)
    if manifest is None:
        raise DatasetError(f"{root}: not a cartforensics dataset (no {MANIFEST} of ours)")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"{out}: exists and is not an empty directory; restore writes into "
                           "a new one")
    summary = RestoreSummary(str(out))
    files = manifest.get("files", [])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(out, "tmp")
    tmp.mkdir()
    try:
        targets: dict[str, tuple[Path, dict[str, Any]]] = {}
        for e in files:
            if e.get("content_sha256") is None:
                summary.skipped.append({"path": e["path"], "reason": "; ".join(
                    e.get("problems") or ["no content was converted"])})
                continue
            rel = _safe_rel(disk_name(e))
            part = tmp / (str(rel) + ".restoring" if e.get("compression") else rel)
            part.parent.mkdir(parents=True, exist_ok=True)
            # created empty, grown only by the lines written (never to the manifest's
            # content_size: a damaged one must not make a huge sparse file)
            part.touch(exist_ok=False)
            targets[e["path"]] = (part, e)
        rows: dict[str, int] = {}
        written: dict[str, int] = {}
        beyond: dict[str, int] = {}
        fragment_files(root, CARTS_DIR)  # not read here: checked, as every reader does
        for frag in fragment_files(root, EVENTS_DIR):
            _restore_fragment(frag, targets, rows, written, beyond)
        for path, (part, e) in targets.items():
            problems = []
            if beyond.get(path):
                problems.append(f"{beyond[path]} line(s) in the dataset lie beyond the "
                                f"manifest's content_size {e['content_size']} (not written)")
            if rows.get(path, 0) != int(e.get("lines") or 0):
                problems.append(f"{rows.get(path, 0)} lines in the dataset, the manifest "
                                f"says {e.get('lines')}")
            if written.get(path, 0) != int(e["content_size"]):
                problems.append(f"{written.get(path, 0)} bytes written of "
                                f"{e['content_size']}")
            h = hashlib.sha256()
            with open(part, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
            if h.hexdigest() != e["content_sha256"]:
                problems.append(f"sha256 {h.hexdigest()} differs from the manifest's "
                                f"{e['content_sha256']}")
            if problems:
                summary.mismatches.append({"path": path, "reason": "; ".join(problems)})
            else:
                summary.verified += 1
            if e.get("compression"):
                final = tmp / _safe_rel(disk_name(e))
                with open(part, "rb") as src_fh, open(final, "wb") as raw_fh, \
                        gzip.GzipFile(filename="", mode="wb", fileobj=raw_fh, mtime=0,
                                      compresslevel=6) as gz_fh:
                    shutil.copyfileobj(src_fh, gz_fh, 1 << 20)
                part.unlink()
            summary.files += 1
            summary.bytes += written.get(path, 0)
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _restore_fragment(frag: Path, targets: dict[str, tuple[Path, dict[str, Any]]],
                      rows: dict[str, int], written: dict[str, int],
                      beyond: dict[str, int]) -> None:
    """Write every line of one fragment at its offset (contiguous lines in one write); lines
    that would end past the manifest's content_size (or have no offset, or a negative one)
    are counted in ``beyond``, not written."""
    table = pq.read_table(frag, columns=["source", "offset", "newline", "raw"])
    table = table.filter(pa.compute.is_valid(table["source"]))
    table = table.sort_by([("source", "ascending"), ("offset", "ascending")])
    sources = table["source"].to_pylist()
    offsets = table["offset"].to_pylist()
    newlines = table["newline"].to_pylist()
    raws = table["raw"].to_pylist()
    n = len(sources)
    i = 0
    while i < n:
        s = sources[i]
        j = i
        while j < n and sources[j] == s:
            j += 1
        rows[s] = rows.get(s, 0) + (j - i)
        target = targets.get(s)
        if target is not None:
            limit = int(target[1]["content_size"])
            fd = os.open(target[0], os.O_WRONLY)
            try:
                k = i
                while k < j:
                    start = pos = offsets[k]
                    if start is None or start < 0 or raws[k] is None:
                        beyond[s] = beyond.get(s, 0) + 1
                        k += 1
                        continue
                    pieces = []
                    first = k
                    while k < j and offsets[k] == pos and raws[k] is not None:
                        pieces.append(raws[k])
                        pos += len(raws[k]) + bool(newlines[k])
                        if newlines[k]:
                            pieces.append(b"\n")
                        k += 1
                    data = b"".join(pieces)
                    if start + len(data) > limit:
                        beyond[s] = beyond.get(s, 0) + (k - first)
                        continue
                    os.pwrite(fd, data, start)
                    written[s] = written.get(s, 0) + len(data)
            finally:
                os.close(fd)
        i = j


# ------------------------------------------------------------------------------------------
# Command line
