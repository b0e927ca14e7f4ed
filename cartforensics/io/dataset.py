"""A converted dataset (see :mod:`cartforensics.jobs.convert`): its layout, schema and manifest, and
reading it back as ``read_events``' DataFrame with filters pushed down to Parquet.

    DST/manifest.json                         every input file, its hashes, sizes and problems
    DST/events/date=YYYY-MM-DD/part-RRRR-BBBBB.parquet   one row per physical line
    DST/events/date=__HIVE_DEFAULT_PARTITION__/...       lines without a readable ts
    DST/carts/part-RRRR-BBBBB.parquet                    one row per input file (= cart)

``R`` is the run (0 for a full conversion, +1 per ``--incremental`` run) and ``B`` the batch of
input files within the run. ``__HIVE_DEFAULT_PARTITION__`` is the Hive convention for a null
partition value: pyarrow, DuckDB, Spark and polars read it back as ``date = NULL``.

>>> df = open_dataset("carts.parquet", carts=["cart-1001"], start="2025-11-01")  # doctest: +SKIP
"""

from __future__ import annotations

import operator
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cartforensics.go.version import DEFAULT_GO_VERSION
from cartforensics.io import logs as events
from cartforensics.io.logs import SharedList, to_frame
from cartforensics.io.manifest import FORMAT as FORMAT  # their home: io/manifest.py
from cartforensics.io.manifest import DatasetError as DatasetError
from cartforensics.io.manifest import ManifestError as ManifestError
from cartforensics.io.manifest import parse_manifest
from cartforensics.vocab import MODES, OUTCOMES, TS_KINDS

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
EVENTS_DIR = "events"
CARTS_DIR = "carts"
PARTITION = "date"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


_TS = pa.timestamp("us", tz="UTC")

# One row per physical line: read_events' columns (ts as timestamp[us], plus its exact
# nanoseconds in ts_ns), the outcome and error under both modes, and the file it came from.
EVENTS_SCHEMA = pa.schema(
    [
        ("source", pa.string()),  # the file's path relative to SRC ('/'-separated)
        ("cart_id", pa.string()),
        ("line", pa.int64()),
        ("offset", pa.int64()),
        ("length", pa.int64()),
        ("newline", pa.bool_()),
        ("ts", _TS),
        ("ts_ns", pa.int64()),
        ("ts_kind", pa.string()),
        ("type", pa.string()),
        ("payload", pa.string()),
        ("envelope_error", pa.string()),
        ("lenient_error", pa.string()),
        ("too_long", pa.bool_()),
        ("outcome_go", pa.string()),
        ("error_go", pa.string()),
        ("outcome_lenient", pa.string()),
        ("error_lenient", pa.string()),
        ("raw", pa.large_binary()),
    ]
)

# One row per input file (a cart's log; a cart with both a .log and a .log.gz has two rows).
CARTS_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("cart_id", pa.string()),
        ("lines", pa.int64()),
        ("bytes", pa.int64()),  # decompressed content length
        ("first_ts", _TS),  # ts of the first line (in file order) that has a readable ts
        ("last_ts", _TS),  # ... and of the last one
        ("min_ts", _TS),
        ("max_ts", _TS),
        *[(f"{m}_{o}", pa.int64()) for m in MODES for o in OUTCOMES],
        ("state_go", pa.string()),  # final state JSON (docs/model.md), go mode
        ("state_lenient", pa.string()),  # ... lenient mode
        ("problems", pa.string()),  # this file's problems, one per line; null when none
    ]
)

# read_events' columns, in its order
READ_EVENTS_COLUMNS = [
    "cart_id", "line", "offset", "length", "newline", "ts", "ts_kind", "type", "payload",
    "envelope_error", "lenient_error", "too_long", "raw",
]


def manifest_path(path: str | os.PathLike[str]) -> Path:
    return Path(path) / MANIFEST


def read_manifest(path: str | os.PathLike[str], check: bool = True) -> dict[str, Any] | None:
    """The dataset's manifest, or None when ``path`` is not a cartforensics dataset (no
    readable ``manifest.json`` regular file, or another program's JSON). Raises
    :class:`ManifestError` (one line) when it is ours but breaks its schema
    (:mod:`cartforensics.io.manifest`): nothing of it is used unchecked. ``check=False``
    only tells whose it is (its fields then must not be used)."""
    mp = manifest_path(path)
    try:
        # O_NONBLOCK: a FIFO named manifest.json must not hang the reader
        fd = os.open(mp, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read()
    except OSError:
        return None
    finally:
        os.close(fd)
    return parse_manifest(data, str(mp), check)


CartSpan = tuple[int, str, str]  # a fragment's rows, its least and greatest cart_id

# file id -> why it is no fragment (None: it is one), and its CartSpan when its footer has one
_FRAGMENT_SCHEMAS: dict[tuple[str, int, int, int, int],
                        tuple[str | None, CartSpan | None]] = {}


def _schema_problem(path: Path, expected: pa.Schema) -> tuple[str | None, CartSpan | None]:
    """Why the Parquet file ``path`` cannot be read as ``expected`` (None: it can), and what
    its footer tells of its cart ids (:func:`_cart_span`)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path)
        got = meta.schema.to_arrow_schema()
    except (OSError, pa.ArrowException) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return f"not a readable Parquet file ({first[:160]})", None
    for want in expected:
        idx = got.get_field_index(want.name)
        if idx < 0:
            return f"has no column {want.name!r}", None
        if got.field(idx).type != want.type:
            return f"column {want.name!r} is {got.field(idx).type}, expected {want.type}", None
    return None, _cart_span(meta)


def _cart_span(meta: Any) -> CartSpan | None:
    """(rows, least cart_id, greatest cart_id) of a Parquet footer ``meta`` from its
    statistics, None when a row group with rows has none (or not exact, or not text); a file
    without rows: (0, "", "")."""
    try:
        col = next(i for i in range(meta.num_columns) if meta.schema.column(i).path == "cart_id")
        lows, highs = [], []
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            if not group.num_rows:
                continue
            st = group.column(col).statistics
            if st is None or not st.has_min_max or st.null_count or \
                    not getattr(st, "is_min_value_exact", True) or \
                    not getattr(st, "is_max_value_exact", True) or \
                    not isinstance(st.min, str) or not isinstance(st.max, str):
                return None
            lows.append(st.min)
            highs.append(st.max)
    except (StopIteration, ValueError, pa.ArrowException):
        return None
    if not lows:
        return (0, "", "") if not meta.num_rows else None
    return meta.num_rows, min(lows, key=_go_order), max(highs, key=_go_order)


def _go_order(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _checked_fragments(path: str | os.PathLike[str], part: str
                       ) -> list[tuple[Path, CartSpan | None]]:
    """:func:`fragment_files`, each with its :data:`CartSpan` (None: its footer has none)."""
    root = Path(path)
    expected = EVENTS_SCHEMA if part == EVENTS_DIR else CARTS_SCHEMA
    pattern = "*/*.parquet" if part == EVENTS_DIR else "*.parquet"
    real_root = os.path.realpath(root)
    out = []
    for p in sorted((root / part).glob(pattern)):
        try:
            st = os.lstat(p)
        except OSError as e:
            raise DatasetError(f"{p}: {e.strerror or e}") from None
        real = os.path.realpath(p)
        if not stat.S_ISREG(st.st_mode) or os.path.commonpath([real_root, real]) != real_root:
            what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
            if os.path.commonpath([real_root, real]) != real_root:
                what = "outside the dataset (through a symbolic link)"
            raise DatasetError(f"{p}: {what}; a dataset holds only the Parquet files convert "
                               "wrote: convert the logs anew")
        key = (str(p), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in _FRAGMENT_SCHEMAS:
            if len(_FRAGMENT_SCHEMAS) > 100_000:
                _FRAGMENT_SCHEMAS.clear()
            _FRAGMENT_SCHEMAS[key] = _schema_problem(p, expected)
        problem, span = _FRAGMENT_SCHEMAS[key]
        if problem is not None:
            raise DatasetError(f"{p}: {problem}; it is not a fragment convert wrote: convert "
                               "the logs anew")
        out.append((p, span))
    return out


def fragment_files(path: str | os.PathLike[str], part: str) -> list[Path]:
    """The Parquet fragments of ``part`` (``events`` or ``carts``) in the dataset at
    ``path``, sorted; raises :class:`DatasetError` naming the file when one is not a regular
    file inside the dataset (a symbolic link, one leading out of it) or lacks a column of the
    schema or has it with another type. The footers are read once per process and file.

    >>> fragment_files("no-such-dataset", "carts")
    []
    """
    return [p for p, _ in _checked_fragments(path, part)]


def fragment_cart_spans(path: str | os.PathLike[str], part: str
                        ) -> list[tuple[Path, CartSpan | None]]:
    """:func:`fragment_files` with each fragment's rows and least and greatest ``cart_id``
    (in Go's order: by bytes) as its footer's statistics give them, read with its schema
    (None: the footer has none; a fragment without rows: ``(0, "", "")``).

    >>> fragment_cart_spans("no-such-dataset", "events")
    []
    """
    return _checked_fragments(path, part)


def files_in_order(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's file entries in read_events' order: cart id (bytes, as Go sorts), then
    file name.

    >>> [f["path"] for f in files_in_order({"files": [
    ...     {"cart_id": "b", "path": "b.events.log"}, {"cart_id": "a", "path": "a.events.log"}]})]
    ['a.events.log', 'b.events.log']
    """
    files = manifest.get("files", [])
    try:  # sorted by Arrow (its text in the bytes' order; the paths' as Python's for UTF-8)
        keys = pa.table({k: pa.array(list(map(operator.itemgetter(k), files)), pa.string())
                         for k in ("cart_id", "path")})
        at = pc.sort_indices(keys, sort_keys=[("cart_id", "ascending"), ("path", "ascending")])
        return list(map(files.__getitem__, at.to_pylist()))
    except (ValueError, TypeError, pa.ArrowException):  # a name that is not UTF-8
        pass
    return sorted(files,
                  key=lambda f: (f["cart_id"].encode("utf-8", "surrogateescape"), f["path"]))


def events_dataset(path: str | os.PathLike[str],
                   manifest: dict[str, Any] | None = None):  # -> pyarrow.dataset.Dataset
    """The ``events/`` part as a pyarrow dataset (``date`` as a string partition column).
    ``manifest``: the dataset's manifest when the caller has read it already (not read
    again: a fleet's takes seconds to check)."""
    import pyarrow.dataset as ds

    root = Path(path)
    if (manifest if manifest is not None else read_manifest(root)) is None:
        raise DatasetError(f"{root}: not a cartforensics dataset (no {MANIFEST} of ours)")
    part = ds.partitioning(pa.schema([(PARTITION, pa.string())]), flavor="hive")
    files = [str(p) for p in fragment_files(root, EVENTS_DIR)]
    return ds.dataset(files, schema=EVENTS_SCHEMA.append(pa.field(PARTITION, pa.string())),
                      format="parquet", partitioning=part,
                      partition_base_dir=str(root / EVENTS_DIR))


def carts_table(path: str | os.PathLike[str]) -> pa.Table:
    """The ``carts/`` part, one row per input file, ordered by cart id then source."""
    import pyarrow.dataset as ds

    root = Path(path)
    if read_manifest(root) is None:
        raise DatasetError(f"{root}: not a cartforensics dataset (no {MANIFEST} of ours)")
    files = [str(p) for p in fragment_files(root, CARTS_DIR)]
    table = ds.dataset(files, schema=CARTS_SCHEMA, format="parquet").to_table()
    return table.sort_by([("cart_id", "ascending"), ("source", "ascending")])


def _utc(t: Any) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def dataset_filter(carts: Iterable[str] | str | None = None, start: Any = None,
                   end: Any = None):  # -> pyarrow.compute.Expression | None
    """The pushed-down filter: cart ids, and ``start <= ts < end`` (UTC; naive times are UTC),
    pruned first by the ``date`` partition. A time bound drops lines without a readable ts."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    expr = None

    def both(e):
        return e if expr is None else expr & e

    if carts is not None:
        ids = [carts] if isinstance(carts, str) else [str(c) for c in carts]
        expr = both(ds.field("cart_id").isin(pa.array(ids, pa.string())))
    if start is not None:
        s = _utc(start)
        expr = both((ds.field(PARTITION) >= s.strftime("%Y-%m-%d"))
                    & (ds.field("ts") >= pc.scalar(pa.scalar(s.value // 1000, _TS))))
    if end is not None:
        e = _utc(end)
        expr = both((ds.field(PARTITION) <= e.strftime("%Y-%m-%d"))
                    & (ds.field("ts") < pc.scalar(pa.scalar(-(-e.value // 1000), _TS))))
    return expr


def dataset_table(path: str | os.PathLike[str], carts: Iterable[str] | str | None = None,
                  start: Any = None, end: Any = None,
                  columns: Sequence[str] | None = None,
                  manifest: dict[str, Any] | None = None) -> pa.Table:
    """The events rows (all stored columns unless ``columns``), filtered in the scan, in
    read_events' order: cart id (bytes), then source file, then line."""
    dset = events_dataset(path, manifest)
    want = list(columns) if columns is not None else [f.name for f in EVENTS_SCHEMA]
    unknown = [c for c in want if c not in dset.schema.names]
    if unknown:
        raise ValueError(f"unknown column(s) {unknown}: the dataset has {dset.schema.names}")
    scan = list(dict.fromkeys(want + ["cart_id", "source", "line"]))
    table = dset.to_table(columns=scan, filter=dataset_filter(carts, start, end))
    table = table.sort_by([("cart_id", "ascending"), ("source", "ascending"),
                           ("line", "ascending")])
    return table.select(want)


def _read_events_type(name: str, stored: pa.DataType) -> pa.DataType:
    """read_events' Arrow type of a stored column (a column it does not have: as stored)."""
    schema = events.EVENTS_SCHEMA
    return schema.field(name).type if name in schema.names else stored


def as_read_events(table: pa.Table, cart_ids: list[str]) -> pa.Table:
    """Stored types → read_events' own Arrow types (dictionary-encoded text, ts in ns, ...),
    so that the result equals ``read_events`` of the source logs. ``cart_ids``: the cart_id
    categories (read_events has one per file, empty files too); ts_kind's are fixed."""
    cols = {}
    for name in table.column_names:
        col = table[name]
        target = _read_events_type(name, col.type)
        if name == "ts" and "ts_ns" in table.column_names:
            col = table["ts_ns"].cast(target)
        elif pa.types.is_dictionary(target):
            # one hash pass: the values in order of first appearance (as read_events'
            # categories are), missing ones null
            enc = (col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
                   ).dictionary_encode()
            idx, seen = enc.indices, enc.dictionary
            if name in ("cart_id", "ts_kind"):  # the files' carts first; the fixed kinds
                first = cart_ids if name == "cart_id" else list(TS_KINDS)
                values = pa.array(list(dict.fromkeys(first + seen.to_pylist())), pa.string())
                idx = pc.index_in(seen, value_set=values).take(idx)
                seen = values
            col = pa.DictionaryArray.from_arrays(idx.cast(target.index_type),
                                                 seen.cast(target.value_type))
        elif target != col.type:
            col = col.cast(target, safe=False)
        cols[name] = col
    return pa.table(cols)


def open_dataset(path: str | os.PathLike[str], carts: Iterable[str] | str | None = None,
                 start: Any = None, end: Any = None,
                 columns: Sequence[str] | None = None, *,
                 manifest: dict[str, Any] | None = None) -> pd.DataFrame:
    """The events of a converted dataset as ``read_events``' DataFrame (same columns, dtypes
    and row order), filtered in the Parquet scan: ``carts`` (ids), ``start <= ts < end``
    (UTC; a time bound drops lines without a readable ts). ``columns`` picks other stored
    columns too (``outcome_go``, ``error_lenient``, ``source``, ...). ``manifest``: the
    dataset's manifest when the caller has read it already.

    ``df.attrs["files"]`` and ``df.attrs["problems"]`` list, as read_events does, the files
    of the carts asked for (paths relative to the converted directory) and their problems.

    >>> df = open_dataset("carts.parquet", carts=["cart-1002"])  # doctest: +SKIP
    """
    want = list(columns) if columns is not None else list(READ_EVENTS_COLUMNS)
    need = list(dict.fromkeys(want + (["ts_ns"] if "ts" in want else [])))
    if manifest is None:
        manifest = read_manifest(path) or {}
    wanted = None if carts is None else ({carts} if isinstance(carts, str) else set(carts))
    files = files_in_order(manifest)
    ids = [f["cart_id"] for f in files if wanted is None or f["cart_id"] in wanted]
    table = as_read_events(dataset_table(path, carts, start, end, need, manifest),
                           ids).select(want)
    df = to_frame(table)
    df.attrs["files"] = SharedList(
        {"path": f["path"], "cart_id": f["cart_id"], "bytes": f.get("content_size"),
         "lines": f.get("lines")}
        for f in files if wanted is None or f["cart_id"] in wanted
    )
    df.attrs["problems"] = SharedList(
        {"path": f["path"], "cart_id": f["cart_id"], "error": p}
        for f in files
        if wanted is None or f["cart_id"] in wanted
        for p in f.get("problems", [])
    )
    # the toolchain whose encoding/json decoded the stored envelopes (older datasets: 1.25)
    df.attrs["go_version"] = manifest.get("go_version", DEFAULT_GO_VERSION)
    return df
