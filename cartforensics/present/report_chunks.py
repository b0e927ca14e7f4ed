"""The report at fleet size: map over chunks of carts, combine small aggregates, render.

A chunk is a group of whole carts: log files (a cart split over ``.log`` and ``.log.gz``
stays in one chunk), or the event fragments of a converted dataset that hold a run of carts.
Each chunk is read, replayed (or read back from the dataset's stored outcomes) and reduced by
:func:`summarize_chunk` to what the report needs and nothing more: per-cart rows for the
"carts that lost lines" table, outcome counts per time window and type (the charts), lost
lines per cart and unknown types (two charts), the findings as combinable parts with a few
evidence lines each (:func:`cartforensics.analysis.findings.finding_parts`), the metrics' values,
and the chunk's rows of ``outcomes.parquet``, written to a part file of its own. The driver
(:func:`run_chunks`, :func:`combine`) adds them up in chunk order. Chunks run on a process
pool of the machine's cores, or on any ``concurrent.futures.Executor`` (``executor=``, e.g.
a Dask ``client.get_executor()``: the workers must see the logs and the output directory).
A converted dataset's chunks give their findings and rows of ``outcomes.parquet`` only
(:func:`summarize_findings`): its counts, impact and per-cart table are aggregated over the
whole fleet by DuckDB (:func:`~cartforensics.analysis.fleet.fleet_report`, which
:func:`combine` takes).

>>> plan = plan_logs("logs/")                                           # doctest: +SKIP
>>> results = run_chunks(plan, tmp_dir, freq=None, go_version=None)   # doctest: +SKIP
"""

from __future__ import annotations

import gc
import gzip
import math
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    Executor,
    Future,
    ThreadPoolExecutor,
    wait,
)
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cartforensics._runtime.pools import (
    RecycledPool,
    executor_width,
    main_module_hidden,
    process_pool,
)
from cartforensics.analysis.findings import (
    EVIDENCE_KEPT,
    Finding,
    FindingPart,
    OutcomeColumns,
    build_findings,
    cart_codes,
    combine_parts,
    finding_parts,
)
from cartforensics.analysis.impact import IMPACT_COLUMNS, cart_impact
from cartforensics.analysis.metrics import (
    combine_metric_values,
    metric_values,
    metrics_frame,
    rates_from_counts,
)
from cartforensics.io.dataset import CARTS_DIR, EVENTS_DIR, fragment_cart_spans, fragment_files
from cartforensics.io.logs import LogFile, LogList
from cartforensics.model.protocol import ReplayLike
from cartforensics.vocab import OUTCOMES

if TYPE_CHECKING:
    from cartforensics.analysis.fleet import FleetReport

__all__ = ["CHUNK_BYTES", "CHUNK_FILES", "CHUNK_LINES", "TIMELINE_CARTS", "CartTimeline",
           "TIMELINE_POSITIONS", "Chunk", "ChunkResult", "Combined", "build_timelines",
           "chunk_timelines", "position_limits", "ranked_timelines", "summarize_findings",
           "OutcomesWriter", "combine", "plan_dataset", "plan_logs", "read_chunk", "read_part",
           "run_chunks", "start_timelines", "start_workers_server", "summarize_chunk",
           "write_outcomes", "write_part"]

CHUNK_BYTES = 16 << 20  # of log input per chunk (about 90,000 writer-format lines)
CHUNK_FILES = 1000
CHUNK_LINES = 50_000  # of a converted dataset per chunk (a few fragments)
TASKS_PER_WORKER = 8  # chunks a worker process runs (about) before a fresh one takes over
TOP_CARTS = 30  # the report's per-cart table (report.TOP_CARTS)
TIMELINE_CARTS = 50  # carts a finding names whose timeline the report embeds (most affected)
# positions all the embedded timelines hold together (each costs a few ms to draw: blame and
# states), and the fewest one cart keeps when they are shared out
TIMELINE_POSITIONS = 600
TIMELINE_LEAST = 5
_DAY = 86_400 * 10**9
_NESTED = {"1min": 60 * 10**9, "5min": 300 * 10**9, "15min": 900 * 10**9,
           "1h": 3600 * 10**9, "6h": 6 * 3600 * 10**9, "1D": _DAY}
_NAT = np.iinfo(np.int64).min
OUTCOMES_SCHEMA = pa.schema([
    ("mode", pa.large_string()), ("cart_id", pa.large_string()), ("line", pa.int64()),
    ("ts", pa.timestamp("ns", tz="UTC")), ("type", pa.large_string()),
    ("outcome", pa.large_string()), ("error", pa.large_string()),
])


@dataclass
class Chunk:
    """One unit of work: log files (``logs``, as listed once), or a dataset's event fragments
    (``fragments``, with the ``carts`` they hold and their ``cart_fragments``)."""

    index: int
    logs: list[LogFile] = field(default_factory=list)
    root: str | None = None  # a dataset
    fragments: list[str] = field(default_factory=list)
    carts: list[str] = field(default_factory=list)
    cart_fragments: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None  # the part of the manifest these carts need


@dataclass
class CartTimeline:
    """One cart's timeline for the report: the static view's payload
    (:func:`~cartforensics.present.widgets.static.static_payload`) as gzip-compressed JSON,
    and what ranks it: the lines findings name in it, then the money (öre) its rebuild lacks.

    >>> t = CartTimeline("cart-1", 3, 500, False, b"")
    >>> t.rank
    (-3, -500, 'cart-1')
    """

    cart_id: str
    named_lines: int  # lines of this cart that findings name
    value_missing: int  # öre the rebuilt cart lacks
    noted: bool  # the analyst wrote a note on one of its lines
    data: bytes  # gzip of the payload's JSON (escaped for a page: embed_json)
    lines: int | None = None  # the cart's lines as the chunk read them (None: not counted)

    @property
    def rank(self) -> tuple[int, int, str]:
        """The sort key of the most affected first."""
        return (-self.named_lines, -self.value_missing, self.cart_id)


def _empty_impact() -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in IMPACT_COLUMNS})


@dataclass
class ChunkResult:
    """What one chunk contributes to the report (small: no per-line data but the parts)."""

    index: int
    lines: int
    carts: int
    applied_go: int
    applied_lenient: int
    lost: int
    carts_losing: int
    parts: dict[tuple[str, Any], FindingPart]
    metrics: dict[str, Any]
    ts_min: int | None
    ts_max: int | None
    counts: pd.DataFrame  # window (ns), type, outcome, lines: go mode, lines with a ts
    no_ts: dict[str, int]  # go outcome -> lines without a readable ts
    lost_by_cart: pd.DataFrame  # cart, outcome (go), lines
    unknown: pd.DataFrame  # type, lines, carts (lenient mode's unknown types)
    per_cart: pd.DataFrame  # the chunk's TOP_CARTS carts that lost the most lines
    outcomes: dict[str, str]  # mode -> this chunk's part of outcomes.parquet
    semantics: str = "1.25"
    # mode -> this chunk's rows of outcomes.parquet, held (not written to a part): a
    # dataset's go rows, which the driver writes as soon as the chunk is done
    outcome_rows: dict[str, pa.Table] = field(default_factory=dict)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (text, category name)
    # log path -> the sha256 and size of the file as this chunk read it (None: unreadable)
    read: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    impact: pd.DataFrame = field(default_factory=_empty_impact)  # cart_impact of every cart
    timelines: list[CartTimeline] = field(default_factory=list)  # its most affected carts'


# -- planning ------------------------------------------------------------------------------
def plan_logs(src: Any, chunk_bytes: int = CHUNK_BYTES, chunk_files: int = CHUNK_FILES
              ) -> list[Chunk]:
    """Cut the logs of ``src`` (a :class:`~cartforensics.io.sources.LogSource`, or what
    read_events takes) into chunks of whole carts, in read_events' order (cart id, then file
    name), using the sizes the listing took."""
    from cartforensics.io.sources import LogSource, resolve_source

    source = resolve_source(src)
    if not isinstance(source, LogSource):
        raise ValueError(f"{source}: a converted dataset; plan it with plan_dataset")
    chunks: list[Chunk] = []
    cur: list[LogFile] = []
    size = 0
    last_cart: str | None = None
    for log, log_size in zip(source.logs, source.sizes, strict=True):
        if cur and log.cart_id != last_cart and (size >= chunk_bytes or
                                                 len(cur) >= chunk_files):
            chunks.append(Chunk(len(chunks), logs=cur))
            cur, size = [], 0
        cur.append(log)
        size += max(log_size, 0)
        last_cart = log.cart_id
    if cur or not chunks:
        chunks.append(Chunk(len(chunks), logs=cur))
    # entries named like logs that are not regular files: problems of the first chunk's read
    chunks[0].logs = LogList(chunks[0].logs, source.skipped)
    return chunks


def plan_dataset(root: Any, chunk_lines: int = CHUNK_LINES) -> list[Chunk]:
    """Cut a converted dataset (a :class:`~cartforensics.io.sources.DatasetSource`, or its
    path) into chunks of whole carts: its event fragments grouped so that a cart's lines
    (every date partition, every file of it) are in one chunk and the chunks follow the
    carts' order (cart id, then file name), as the report from the logs does."""
    from cartforensics.io.sources import DatasetSource, resolve_source

    source = resolve_source(root)
    if not isinstance(source, DatasetSource):
        raise ValueError(f"{source}: not a converted dataset")
    base = source.root
    manifest = source.manifest
    files = source.files()
    order: dict[str, int] = {}
    for f in files:
        order.setdefault(f["cart_id"], len(order))
    cart_names = list(order)
    spans = []  # (first cart, last cart, lines, fragment)
    # checked: in the dataset, its schema; the carts each holds, from its footer's statistics
    # (the order is the cart ids' bytes: the least and the greatest bound the rest)
    for frag, span in fragment_cart_spans(base, EVENTS_DIR):
        if span is not None and (not span[0] or (span[1] in order and span[2] in order)):
            if span[0]:
                spans.append((order[span[1]], order[span[2]], span[0], str(frag)))
            continue
        # no statistics, or a cart the manifest does not list: the ids themselves
        t = pq.read_table(frag, columns=["cart_id"], read_dictionary=["cart_id"])
        if not t.num_rows:
            continue
        col = t["cart_id"].combine_chunks()
        names = col.dictionary.to_pylist() if pa.types.is_dictionary(col.type) else \
            pc.unique(col).to_pylist()
        pos = [order[c] for c in names if c in order]
        if not pos:
            continue
        spans.append((min(pos), max(pos), t.num_rows, str(frag)))
    spans.sort()
    groups: list[list[Any]] = []  # [lo, hi, lines, fragments]: runs of carts
    for lo, hi, n, frag in spans:
        # a fragment whose carts overlap the run must join it (a cart is whole in a chunk);
        # one that follows it may, while the chunk stays small
        if groups and (lo <= groups[-1][1] or groups[-1][2] + n <= chunk_lines):
            g = groups[-1]
            g[1], g[2] = max(g[1], hi), g[2] + n
            g[3].append(frag)
        else:
            groups.append([lo, hi, n, [frag]])
    carts_files: dict[str, str] = {}
    for cf in fragment_files(base, CARTS_DIR):
        for src in pq.read_table(cf, columns=["source"])["source"].to_pylist():
            carts_files[src] = str(cf)
    by_cart: dict[str, list[str]] = {}
    by_entry: dict[str, list[dict[str, Any]]] = {}
    for f in files:
        by_cart.setdefault(f["cart_id"], []).append(f["path"])
        by_entry.setdefault(f["cart_id"], []).append(f)
    chunks = []
    starts = [0] + [g[0] for g in groups[1:]]
    ends = starts[1:] + [len(cart_names)]
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
        carts = cart_names[a:b]
        cfrags = sorted({carts_files[p] for c in carts for p in by_cart.get(c, [])
                         if p in carts_files})
        chunks.append(Chunk(k, root=str(base), fragments=groups[k][3] if groups else [],
                            carts=carts, cart_fragments=cfrags,
                            manifest=_part_of(manifest, by_entry, carts)))
    if not chunks:
        chunks.append(Chunk(0, root=str(base), carts=cart_names,
                            cart_fragments=sorted(set(carts_files.values())),
                            manifest=_part_of(manifest, by_entry, cart_names)))
    return chunks


_ENTRY_KEYS = ("path", "cart_id", "content_size", "lines", "problems")


def _part_of(manifest: dict[str, Any], by_entry: dict[str, list[dict[str, Any]]],
             carts: list[str]) -> dict[str, Any]:
    """What stored_replays reads of the manifest, for ``carts`` only (a worker never parses
    the whole manifest: a fleet's is large)."""
    return {"format": manifest.get("format"), "go_version": manifest.get("go_version"),
            "source": manifest.get("source"),
            "files": [{k: f[k] for k in _ENTRY_KEYS if k in f}
                      for c in carts for f in by_entry.get(c, [])]}


# -- one chunk -----------------------------------------------------------------------------
def _base_ns(freq: str | None, ts_ns: np.ndarray) -> int:
    """The width of the windows a chunk counts lines in: one that divides the report's window
    (``freq``, or the one pick_freq will choose over the fleet, which is at least the one it
    chooses over this chunk) and whose windows never straddle one of the report's."""
    from cartforensics.analysis.metrics import pick_freq

    if freq is not None:
        try:
            width = int(pd.Timedelta(pd.tseries.frequencies.to_offset(freq)).value)
        except (ValueError, TypeError):
            return _DAY
        return math.gcd(width, _DAY) if width > 0 else _DAY
    ok = ts_ns[ts_ns != _NAT]
    if not len(ok):
        return _NESTED["1min"]
    own = pick_freq(pd.Series(pd.to_datetime(np.array([ok.min(), ok.max()]), utc=True)))
    return _NESTED.get(own, _DAY)


def _text_array(s: pd.Series) -> pa.Array:
    """A text column as large_string (missing and non-text values null)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories
        codes = s.cat.codes.to_numpy()
        names = pa.array([c if isinstance(c, str) else None for c in cats], pa.large_string())
        idx = pa.array(codes, pa.int32(), mask=codes < 0)
        return names.take(idx) if len(names) else pa.nulls(len(s), pa.large_string())
    arr = pa.array(s.array if hasattr(s, "array") else s, from_pandas=True)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return pa.array([v if isinstance(v, str) else None for v in s.astype(object)],
                        pa.large_string())
    return arr.cast(pa.large_string())


def _coded_array(s: pd.Series, name: Callable[[Any], str | None]) -> pa.Array | None:
    """A categorical column as a dictionary array over its categories (each category's text:
    ``name``; a missing value null): a code per line, no text; None when ``s`` is no
    categorical."""
    if not isinstance(s.dtype, pd.CategoricalDtype):
        return None
    codes = np.asarray(s.cat.codes.to_numpy())
    names = pa.array([name(c) for c in s.cat.categories], pa.large_string())
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), names)


def _outcomes_table(r: Any) -> pa.Table:
    """A replay's rows of outcomes.parquet: OUTCOMES_SCHEMA's columns, the text ones as
    dictionary arrays where the replay keeps codes (:class:`OutcomeColumns`: a Replay never
    builds its outcomes frame for this), which :func:`write_part` decodes a batch at a time."""
    oc = OutcomeColumns(r)
    n = len(oc)
    ts = pd.to_datetime(oc["ts"], utc=True)
    outcome = oc["outcome"]
    if not (isinstance(outcome.dtype, pd.CategoricalDtype) and
            bool((outcome.cat.codes.to_numpy() >= 0).all())):
        outcome = outcome.astype(str)  # (a missing outcome as astype(str) names it)
    cart = oc["cart_id"]
    cart_codes_ = _coded_array(cart, str) if isinstance(cart.dtype, pd.CategoricalDtype) and \
        bool((cart.cat.codes.to_numpy() >= 0).all()) else None  # (missing: astype(str)'s)

    def text(c: Any) -> str | None:
        return c if isinstance(c, str) else None

    mode = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int8)),
                                          pa.array([r.mode], pa.large_string()))
    return pa.table([
        mode, cart_codes_ if cart_codes_ is not None else _text_array(cart.astype(str)),
        pa.array(oc["line"].to_numpy(np.int64)),
        pa.array(ts.dt.as_unit("ns").array, pa.timestamp("ns", tz="UTC")),
        *(_coded_array(s, text) or _text_array(s)
          for s in (oc["type"], outcome, oc["error"])),
    ], names=OUTCOMES_SCHEMA.names)


_PART_BATCH = 65_536  # rows of a part decoded at a time (write_part)


def write_part(table: pa.Table, path: str) -> None:
    """A chunk's rows of outcomes.parquet, as an LZ4-compressed Arrow IPC file: measured, it
    costs the worker a tenth of a Parquet part and the driver (which reads it back to write
    outcomes.parquet) no decoding. A ``table`` with dictionary columns
    (:func:`_outcomes_table`) is written as OUTCOMES_SCHEMA, decoded a batch at a time (never
    whole)."""
    codec = "lz4" if pa.Codec.is_available("lz4") else None
    options = pa.ipc.IpcWriteOptions(compression=codec)
    coded = any(pa.types.is_dictionary(t) for t in table.schema.types)
    schema = OUTCOMES_SCHEMA if coded else table.schema
    with pa.OSFile(path, "wb") as f, pa.ipc.new_file(f, schema, options=options) as w:
        if not coded:
            w.write_table(table)
            return
        for batch in table.to_batches(max_chunksize=_PART_BATCH):
            w.write_batch(batch.cast(schema))


def read_part(path: str) -> pa.Table:
    """What :func:`write_part` wrote."""
    with pa.OSFile(path, "rb") as src:  # read whole: the file is removed next
        return pa.ipc.open_file(src).read_all()


def summarize_chunk(events: pd.DataFrame, go: ReplayLike, lenient: ReplayLike, index: int,
                    tmp_dir: str | None, freq: str | None = None, *,
                    noted: frozenset[str] = frozenset(),
                    timelines: int = TIMELINE_CARTS) -> ChunkResult:
    """Reduce one chunk's replays (of whole carts) to what the report combines; its rows of
    outcomes.parquet go to ``tmp_dir`` (None: not written). Its carts' impact rows
    (:func:`~cartforensics.analysis.impact.cart_impact`) and the timelines of its
    ``timelines`` most affected carts a finding names and of the ``noted`` carts (ranked, not
    yet drawn: :func:`build_timelines`) come out too."""
    ev = events
    n = len(ev)
    go_oc, le_oc = OutcomeColumns(go), OutcomeColumns(lenient)  # never the outcomes frames
    go_c = _outcome_codes(go_oc["outcome"])
    le_c = _outcome_codes(le_oc["outcome"])
    applied = OUTCOMES.index("applied")
    lost = (le_c == applied) & (go_c != applied)
    cart, cart_names = cart_codes(ev["cart_id"])
    ts = pd.to_datetime(ev["ts"], utc=True)
    ts_ns = ts.dt.as_unit("ns").array.asi8 if n else np.zeros(0, np.int64)
    has = ts_ns != _NAT
    base = _base_ns(freq, ts_ns)
    names = np.asarray(OUTCOMES, dtype=object)
    # outcome counts per window and type (go mode): the three time charts
    t_codes, t_names = _type_codes(go_oc["type"], "(none)")
    g = pd.DataFrame({"window": (ts_ns[has] // base) * base, "type": t_codes[has],
                      "outcome": go_c[has]}).groupby(["window", "type", "outcome"]).size()
    counts = g.rename("lines").reset_index()
    counts["type"] = t_names[counts["type"].to_numpy()]
    counts["outcome"] = names[counts["outcome"].to_numpy()]
    counts = counts.sort_values(["window", "type", "outcome"], ignore_index=True)
    no_ts = {o: k for j, o in enumerate(OUTCOMES) if (k := int((go_c[~has] == j).sum()))}
    lc = pd.DataFrame({"cart": cart[lost], "outcome": go_c[lost]}).groupby(
        ["cart", "outcome"]).size().rename("lines").reset_index()
    lost_by_cart = pd.DataFrame({"cart": cart_names[lc["cart"].to_numpy()],
                                 "outcome": names[lc["outcome"].to_numpy()],
                                 "lines": lc["lines"].to_numpy(dtype=np.int64)})
    unk = le_c == OUTCOMES.index("unknown_type")
    u_codes, u_names = _type_codes(le_oc["type"], "")
    uk = pd.DataFrame({"type": u_names[u_codes[unk]], "cart": cart[unk]})
    unknown = uk.groupby("type").agg(lines=("cart", "size"), carts=("cart", "nunique")) \
        .reset_index()
    outcomes: dict[str, str] = {}
    if tmp_dir is not None:
        for r in (go, lenient):
            path = os.path.join(tmp_dir, f"{r.mode}-{index:06d}.arrow")
            write_part(_outcomes_table(r), path)
            outcomes[r.mode] = path
    ok = ts_ns[has]
    parts = finding_parts(go, lenient, limit=EVIDENCE_KEPT)
    impact = cart_impact(go, lenient)
    tls = chunk_timelines(go, parts, impact, noted, timelines)
    return ChunkResult(
        index=index, lines=n, carts=len(go.cart_ids),
        applied_go=int((go_c == applied).sum()),
        applied_lenient=int((le_c == applied).sum()), lost=int(lost.sum()),
        carts_losing=int(len(np.unique(cart[lost]))),
        parts=parts, metrics=metric_values(go), ts_min=int(ok.min()) if len(ok) else None,
        ts_max=int(ok.max()) if len(ok) else None, counts=counts, no_ts=no_ts,
        lost_by_cart=lost_by_cart, unknown=unknown,
        per_cart=per_cart_table(go, lenient, lost, cart, cart_names, go_c == applied,
                                le_c == applied),
        outcomes=outcomes, semantics=go.semantics.spec, impact=impact, timelines=tls)


def summarize_findings(events: pd.DataFrame, go: ReplayLike, lenient: ReplayLike, index: int,
                       tmp_dir: str | None) -> ChunkResult:
    """What :func:`summarize_chunk` gives of a chunk of a converted dataset, whose counts,
    impact and per-cart rows are aggregated over the whole fleet where the data lies
    (:func:`~cartforensics.analysis.fleet.fleet_report`): its lines, carts, findings' parts
    and rows of outcomes.parquet (to ``tmp_dir``; the stored replays' own Arrow rows when
    they have them, the go ones held in the result: :class:`OutcomesWriter` writes them
    when the chunk is done, never through a part file); :func:`combine` takes the rest
    from the fleet's aggregates."""
    outcomes: dict[str, str] = {}
    held: dict[str, pa.Table] = {}
    if tmp_dir is not None:
        for r in (go, lenient):
            rows = getattr(r, "outcome_rows", None)
            if rows is not None and r.mode == "go":
                held[r.mode] = rows.cast(OUTCOMES_SCHEMA)
                continue
            path = os.path.join(tmp_dir, f"{r.mode}-{index:06d}.arrow")
            write_part(_outcomes_table(r) if rows is None else rows.cast(OUTCOMES_SCHEMA),
                       path)
            outcomes[r.mode] = path
    return ChunkResult(
        index=index, lines=len(events), carts=len(go.cart_ids), applied_go=0,
        applied_lenient=0, lost=0, carts_losing=0,
        parts=finding_parts(go, lenient, limit=EVIDENCE_KEPT), metrics={}, ts_min=None,
        ts_max=None, counts=pd.DataFrame(), no_ts={}, lost_by_cart=pd.DataFrame(),
        unknown=pd.DataFrame(), per_cart=pd.DataFrame(), outcomes=outcomes,
        semantics=go.semantics.spec, outcome_rows=held)


def named_lines(parts: dict[tuple[str, Any], FindingPart]) -> dict[str, int]:
    """Per cart, the lines the findings name in it (a line named by two findings counts
    twice)."""
    named: dict[str, int] = {}
    for p in parts.values():
        for c, n in p.carts.items():
            named[str(c)] = named.get(str(c), 0) + int(n)
    return named


def chunk_timelines(go: ReplayLike, parts: dict[tuple[str, Any], FindingPart],
                    impact: pd.DataFrame, noted: frozenset[str] = frozenset(),
                    top: int = TIMELINE_CARTS) -> list[CartTimeline]:
    """The ``top`` most affected carts the findings name in these replays (most named lines,
    then most money lacking) and the ``noted`` carts, as timelines still without their data:
    :func:`build_timelines` draws the ones the whole report keeps, once. Each holds the
    cart's number of lines, which shares the positions out (:func:`position_limits`)."""
    tls = ranked_timelines(parts, impact, set(map(str, go.cart_ids)), noted, top)
    for t in tls:
        t.lines = len(go.rows_of(t.cart_id))
    return tls


def ranked_timelines(parts: dict[tuple[str, Any], FindingPart], impact: pd.DataFrame,
                     here: set[str], noted: frozenset[str] = frozenset(),
                     top: int = TIMELINE_CARTS) -> list[CartTimeline]:
    """:func:`chunk_timelines` of the carts ``here`` (the parts' and the impact rows' carts
    may be more): the ``top`` most affected and the noted ones, most affected first."""
    named = named_lines(parts)
    missing = dict(zip(impact["cart_id"].astype(str), impact["value_missing"].astype(int),
                       strict=True))
    tls = [CartTimeline(c, named[c], missing.get(c, 0), c in noted, b"") for c in named
           if c in here]
    tls.sort(key=lambda t: t.rank)
    chosen = tls[:top] + [t for t in tls[top:] if t.noted]
    chosen += [CartTimeline(c, 0, missing.get(c, 0), True, b"")
               for c in sorted(noted & here) if c not in named]
    return chosen


def position_limits(sizes: dict[str, int], budget: int = TIMELINE_POSITIONS,
                    least: int = TIMELINE_LEAST) -> dict[str, int]:
    """Per cart (``sizes``: its lines), how many positions its embedded timeline holds: every
    one while the report's ``budget`` lasts, shared out smallest cart first, and never fewer
    than ``least`` (the start, the end, where go and lenient part, problem lines).

    >>> position_limits({"a": 3, "b": 100, "c": 100}, budget=50, least=8)
    {'a': 3, 'b': 22, 'c': 22}
    """
    out: dict[str, int] = {}
    left = budget
    order = sorted(sizes, key=lambda c: (sizes[c], c))
    for i, c in enumerate(order):
        share = left // (len(order) - i)
        out[c] = sizes[c] if sizes[c] + 1 <= max(share, least) else max(share, least) - 1
        left -= out[c] + 1
    return {c: out[c] for c in sizes}


def build_timelines(chosen: Sequence[CartTimeline], source: Any, go_version: Any = None,
                    notes_path: str | None = None,
                    budget: int = TIMELINE_POSITIONS) -> str | None:
    """Fill in the data of the ``chosen`` timelines (gzip of the scrubber's embedded payload,
    :func:`~cartforensics.present.widgets.static.static_payload`): only their carts are read
    from ``source`` (logs or a dataset) and replayed; together they hold about ``budget``
    positions (:func:`position_limits`, of the lines the chunks counted when every chosen
    cart has them, else of the lines read now). Returns why there are none when they cannot
    be drawn, else None. :func:`start_timelines` draws them on several processes."""
    if not chosen:
        return None
    problem, data = _draw_timelines([t.cart_id for t in chosen], _source_of(chosen, source),
                                    go_version, notes_path, _known_limits(chosen, budget),
                                    budget)
    for t in chosen:
        t.data = data.get(t.cart_id, t.data)
    return problem


def start_timelines(chosen: Sequence[CartTimeline], source: Any, go_version: Any = None,
                    notes_path: str | None = None, budget: int = TIMELINE_POSITIONS, *,
                    workers: int = 1, executor: Executor | None = None
                    ) -> Callable[[], str | None]:
    """:func:`build_timelines` started on ``workers`` processes (forked from the chunks'
    server, which holds the package) or on ``executor``, the carts shared out in groups of
    about equal work, while the caller does something else (the report draws its charts);
    returns the call that waits for them, fills in their data and returns what
    build_timelines returns. Every timeline's bytes are the ones build_timelines draws in
    this process: each cart's payload is its own, and the positions are shared out over the
    lines the chunks counted. In this process, when the call is made, for one worker, one
    cart, or carts the chunks did not count (a dataset's)."""
    limits = _known_limits(chosen, budget)
    n = executor_width(executor) if executor is not None else workers
    groups = _timeline_groups(chosen, limits, n) if limits is not None and n > 1 else []
    if len(groups) <= 1:
        return lambda: build_timelines(chosen, source, go_version, notes_path, budget)
    pool = process_pool(len(groups), __name__, initializer=_worker_started) \
        if executor is None else None
    run: Executor = pool if pool is not None else executor  # type: ignore[assignment]
    calls = [(_draw_timelines, [t.cart_id for t in g], _source_of(g, source), go_version,
              notes_path, {t.cart_id: limits[t.cart_id] for t in g}, budget) for g in groups]
    futures = []
    try:
        with main_module_hidden() if pool is not None else nullcontext():
            futures = [run.submit(*call) for call in calls]
    except BaseException:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        raise

    def result(future: Future, call: tuple[Any, ...]) -> tuple[str | None, dict[str, bytes]]:
        try:
            return future.result()
        except BrokenExecutor:  # a worker died (the OOM killer): its group drawn here
            return call[0](*call[1:])

    def finish() -> str | None:
        try:
            drawn = [result(f, call) for f, call in zip(futures, calls, strict=True)]
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        problems = [p for p, _ in drawn if p is not None]
        for _, data in drawn:
            for t in chosen:
                if t.cart_id in data:
                    t.data = data[t.cart_id]
        return problems[0] if problems else None

    return finish


def _known_limits(chosen: Sequence[CartTimeline], budget: int) -> dict[str, int] | None:
    """The positions of each chosen cart over the lines the chunks counted (None: some
    cart was not counted)."""
    if not chosen or any(t.lines is None for t in chosen):
        return None
    return position_limits({t.cart_id: int(t.lines) for t in chosen}, budget)  # type: ignore[arg-type]


def _timeline_groups(chosen: Sequence[CartTimeline], limits: dict[str, int] | None, n: int
                     ) -> list[list[CartTimeline]]:
    """``chosen`` in at most ``n`` groups of about equal work (a frame costs about what
    reading, replaying and blaming 25 lines does), the heaviest cart first to the lightest
    group; each group in the chosen order."""
    def work(t: CartTimeline) -> int:
        return 25 * ((limits or {}).get(t.cart_id, 0) + 1) + int(t.lines or 0)

    order = sorted(range(len(chosen)), key=lambda k: (-work(chosen[k]), k))
    loads = [0] * max(1, min(n, len(chosen)))
    members: list[list[int]] = [[] for _ in loads]
    for k in order:
        g = loads.index(min(loads))
        loads[g] += work(chosen[k])
        members[g].append(k)
    return [[chosen[k] for k in sorted(m)] for m in members if m]


def _source_of(chosen: Sequence[CartTimeline], source: Any) -> Any:
    """What a group's carts are read from: a dataset as it is (filtered in its scan), only
    their log files of logs (a worker is sent those, not the fleet's listing)."""
    from cartforensics.io.sources import DatasetSource

    if isinstance(source, DatasetSource):
        return source
    ids = {t.cart_id for t in chosen}
    return [log for log in source.logs if log.cart_id in ids]


def _draw_timelines(ids: Sequence[str], source: Any, go_version: Any,
                    notes_path: str | None, limits: dict[str, int] | None,
                    budget: int) -> tuple[str | None, dict[str, bytes]]:
    """(why none can be drawn or None, cart -> its timeline's data) of the carts ``ids``
    read from ``source`` (a dataset, or their log files); ``limits``: each cart's positions
    (None: shared out of ``budget`` over the lines read). What a worker runs."""
    import warnings

    from cartforensics.analysis.notes import NotesError
    from cartforensics.io.sources import DatasetSource, read_events
    from cartforensics.model.replay import replay
    from cartforensics.present.widgets.scrubber import TimelineScrubber
    from cartforensics.present.widgets.static import embed_json, static_payload

    with warnings.catch_warnings():  # the chunks' reading already reported them
        warnings.simplefilter("ignore")
        if isinstance(source, DatasetSource):  # filtered in the Parquet scan
            ev = read_events(source, progress=False, carts=sorted(set(ids)))
        else:  # only these carts' files
            ev = read_events(source, progress=False, go_version=go_version)
    go, lenient = replay(ev, mode="go"), replay(ev, mode="lenient")
    try:
        scrubber = TimelineScrubber(go, lenient=lenient, notes=notes_path)
    except (TypeError, ValueError, NotesError) as e:
        return f"the timelines need replays of the lines themselves: {e}", {}
    sizes = ev.groupby("cart_id", observed=True).size().to_dict() if len(ev) else {}
    if limits is None:
        limits = position_limits({c: int(sizes[c]) for c in ids if c in sizes}, budget)
    data = {}
    for c in ids:
        if c not in sizes or c not in limits:  # vanished since the chunk read it
            continue
        scrubber.cart_id = c
        payload = static_payload(scrubber, limits[c])
        payload["traits"]["carts_note"] = ""  # (the replays' cart count: not the page's)
        data[c] = gzip.compress(embed_json(payload).encode("utf-8"), 6, mtime=0)
    return None, data


def per_cart_table(go: ReplayLike, lenient: ReplayLike, lost: np.ndarray, cart: np.ndarray,
                   cart_names: np.ndarray, applied_go: np.ndarray, applied_lenient: np.ndarray,
                   top: int = TOP_CARTS) -> pd.DataFrame:
    """Carts that lost lines (most first, ties in the order the carts come, ``top`` of them)
    with the value they lost."""
    k = len(cart_names)
    lines = np.bincount(cart, minlength=k)
    n_lost = np.bincount(cart, weights=lost, minlength=k).astype(np.int64)
    first = np.full(k, len(cart), dtype=np.int64)
    np.minimum.at(first, cart, np.arange(len(cart)))
    losing = np.flatnonzero(n_lost > 0)
    losing = losing[np.lexsort((first[losing], -n_lost[losing]))][:top]
    a_go = np.bincount(cart, weights=applied_go, minlength=k).astype(np.int64)
    a_le = np.bincount(cart, weights=applied_lenient, minlength=k).astype(np.int64)
    rows = []
    for c in losing.tolist():
        cid = str(cart_names[c])
        a = go.final_state(cid)
        b = lenient.final_state(cid)
        rows.append({
            "cart_id": cid, "lines": int(lines[c]), "applied_go": int(a_go[c]),
            "applied_lenient": int(a_le[c]), "lost": int(n_lost[c]),
            "items_go": len(a["items"]), "items_lenient": len(b["items"]),
            "total_go": a["totalPrice"], "total_lenient": b["totalPrice"],
            "order_lenient": b.get("orderReference") or "",
        })
    return pd.DataFrame(rows)


def _outcome_codes(s: pd.Series) -> np.ndarray:
    """Each line's outcome as its index in OUTCOMES (-1: none of them), an int8."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        remap = np.array([OUTCOMES.index(c) if c in OUTCOMES else -1
                          for c in s.cat.categories] + [-1], dtype=np.int8)
        return remap[s.cat.codes.to_numpy()]
    return pd.Categorical(s.astype(str), categories=OUTCOMES).codes.astype(np.int8)


def _type_codes(s: pd.Series, missing: str) -> tuple[np.ndarray, np.ndarray]:
    """(code per line, name per code) of a type column; ``missing`` names a line without a
    type (the last code)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = [c if isinstance(c, str) else missing for c in s.cat.categories]
        codes = s.cat.codes.to_numpy().astype(np.int64)
    else:
        codes, uniq = pd.factorize(s, sort=False, use_na_sentinel=True)
        cats = [c if isinstance(c, str) else missing for c in uniq]
        codes = codes.astype(np.int64)
    names = np.asarray([*cats, missing], dtype=object)
    codes = np.where(codes < 0, len(cats), codes)
    return codes, names


def read_chunk(chunk: Chunk, go_version: Any = None,
               lines: Sequence[tuple[str, int]] | None = None,
               scanned: pa.Table | None = None) -> tuple[Any, Any, Any]:
    """(events, go, lenient) of one chunk: read and replayed from its log files, or read back
    from the dataset's stored outcomes (``scanned``: its fragments' lines, read ahead by
    :func:`~cartforensics.analysis.fleet.stored_scan` with these ``lines``)."""
    if chunk.root is not None:
        from cartforensics.analysis.fleet import stored_replays

        return stored_replays(chunk.root, lines, fragments=chunk.fragments,
                              carts=chunk.carts, cart_fragments=chunk.cart_fragments,
                              manifest=chunk.manifest, scanned=scanned)
    from cartforensics.io.logs import read_log_events
    from cartforensics.model.replay import replay

    # each file hashed as it is read: the report's provenance names the bytes analysed
    ev = read_log_events(chunk.logs, progress=False, go_version=go_version, digests=True)
    return ev, replay(ev, mode="go"), replay(ev, mode="lenient")


def run_chunk(chunk: Chunk, tmp_dir: str | None, freq: str | None = None,
              go_version: Any = None, noted: frozenset[str] = frozenset(),
              timelines: int = TIMELINE_CARTS, findings_only: bool = False,
              scanned: pa.Table | None = None) -> ChunkResult:
    """Read, replay and reduce one chunk (what a worker runs); ``noted``: the carts with an
    analyst's note, ``timelines``: how many carts to rank for a timeline (see
    :func:`summarize_chunk`); ``findings_only``: :func:`summarize_findings` instead;
    ``scanned``: a dataset chunk's lines, read ahead (see :func:`read_chunk`)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        events, go, lenient = read_chunk(chunk, go_version, scanned=scanned)
    if findings_only:
        result = summarize_findings(events, go, lenient, chunk.index, tmp_dir)
    else:
        result = summarize_chunk(events, go, lenient, chunk.index, tmp_dir, freq, noted=noted,
                                 timelines=timelines)
    result.warnings = [(str(w.message), w.category.__name__) for w in caught]
    result.read = {f["path"]: f["read"] for f in events.attrs.get("files") or () if "read" in f}
    del events, go, lenient  # no gc.collect: it cost seconds a fleet, and peak RSS is the same
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages
    return result


# -- running -------------------------------------------------------------------------------
def _pool(workers: int, in_flight: int) -> RecycledPool:
    # fresh workers (forked from the preloaded server: cheap) every few chunks, so that what
    # the allocators keep after a chunk never piles up
    return RecycledPool(workers, __name__, TASKS_PER_WORKER, in_flight,
                        initializer=_worker_started)


def _worker_started() -> None:
    """In a pool worker, before its first chunk: what the server imported never becomes
    garbage, so the collector stops walking it."""
    gc.freeze()


def start_workers_server() -> None:
    """Start the server the pool's workers fork from (it imports the package once, about a
    second) now, so that its start overlaps the driver's planning; the pool made later
    uses it. Nothing happens where there is no forkserver."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload([__name__])
    with main_module_hidden():
        forkserver.ensure_running()


class _ScansAhead:
    """In one process, a dataset's chunks' lines (:func:`~cartforensics.analysis.fleet.stored_scan`)
    each read in a thread while the chunk before is reduced: DuckDB's reading overlaps the
    Python work (one chunk ahead, so memory stays two chunks' lines). ``next()``: the next
    chunk's (None for logs)."""

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        self._todo = [c for c in chunks if c.root is not None]
        self._logs = len(self._todo) < len(chunks)
        self._pool: ThreadPoolExecutor | None = None
        self._next: Future | None = None

    def __enter__(self) -> _ScansAhead:
        if self._todo and not self._logs:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="cartforensics-scan")
            self._submit()
        return self

    def _submit(self) -> None:
        from cartforensics.analysis.fleet import stored_scan

        if self._todo and self._pool is not None:
            c = self._todo.pop(0)
            self._next = self._pool.submit(stored_scan, c.root, None, c.fragments)

    def next(self) -> pa.Table | None:
        if self._next is None:
            return None
        table = self._next.result()
        self._next = None
        self._submit()
        return table

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            if self._next is not None:
                self._next.cancel()
            self._pool.shutdown(wait=True, cancel_futures=True)


def default_workers(chunks: Sequence[Chunk]) -> int:
    """Worker processes for ``chunks``: one per core, none for a single chunk."""
    return 1 if len(chunks) <= 1 else min(len(chunks), os.cpu_count() or 1)


def run_chunks(chunks: Sequence[Chunk], tmp_dir: str | None, freq: str | None = None,
               go_version: Any = None, executor: Executor | None = None,
               workers: int | None = None,
               on_done: Callable[[ChunkResult], None] | None = None,
               noted: frozenset[str] = frozenset(),
               timelines: int = TIMELINE_CARTS,
               findings_only: bool = False) -> list[ChunkResult]:
    """Every chunk's result, in chunk order: in this process (one worker), on a pool of
    ``workers`` processes (default: the cores; this process runs the last chunk while they
    start), or on ``executor``. At most twice the workers' chunks are in flight, so memory
    stays a few chunks' worth. ValueError for a ``freq`` that is no positive window.
    ``findings_only``: each chunk gives its findings and outcomes only
    (:func:`summarize_findings`; the fleet's aggregates give the rest to :func:`combine`)."""
    if freq is not None:  # refused before any chunk runs (the span is checked by combine)
        from cartforensics.analysis.metrics import window_width

        window_width(freq)
    n = workers if workers is not None else default_workers(chunks)
    results: dict[int, ChunkResult] = {}

    def done(r: ChunkResult) -> None:
        import builtins
        import warnings

        for text, cat in r.warnings:  # what read_events said in the worker, said here
            category = getattr(builtins, cat, UserWarning)
            if not (isinstance(category, type) and issubclass(category, Warning)):
                category = UserWarning
            warnings.warn(text, category, stacklevel=4)
        r.warnings = []
        results[r.index] = r
        if on_done is not None:
            on_done(r)

    if executor is None and n <= 1:
        with _ScansAhead(chunks) as ahead:  # a dataset's next lines read by DuckDB meanwhile
            for c in chunks:
                done(run_chunk(c, tmp_dir, freq, go_version, noted, timelines, findings_only,
                               ahead.next()))
        return [results[c.index] for c in chunks]
    own = executor is None
    window = 2 * (n if own else executor_width(executor))  # type: ignore[arg-type]
    # this process runs the last chunk itself while the workers start (their server's
    # imports leave a core idle for about a second, measured)
    local = chunks[-1] if own and len(chunks) > n else None
    todo = iter(chunks[:-1] if local is not None else chunks)
    if local is not None:  # queued meanwhile: workers never wait for this process's chunk
        window += n
    pool = _pool(n, window) if own else None
    run: Executor = pool if pool is not None else executor  # type: ignore[assignment]
    hide = main_module_hidden if own else nullcontext
    pending: set[Future] = set()

    def submit_more() -> None:
        while (pool.room() if pool is not None else window - len(pending)) > 0:
            c = next(todo, None)
            if c is None:
                return
            with hide():
                pending.add(run.submit(run_chunk, c, tmp_dir, freq, go_version,
                                       noted, timelines, findings_only))

    try:
        if local is not None:
            # the first submissions wait for the workers' server to finish its imports (a
            # spawn blocks until it answers): they wait in a thread, this chunk runs now
            with ThreadPoolExecutor(1, thread_name_prefix="cartforensics-submit") as feeder:
                feeding = feeder.submit(submit_more)
                try:
                    done(run_chunk(local, tmp_dir, freq, go_version, noted, timelines,
                                   findings_only))
                finally:
                    wait([feeding])
                feeding.result()
        else:
            submit_more()
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                done(fut.result())
            submit_more()
    finally:
        for fut in pending:
            fut.cancel()
        if own:
            run.shutdown(wait=True, cancel_futures=True)
        elif pending:
            wait(pending)
    return [results[c.index] for c in chunks]


# -- combining -----------------------------------------------------------------------------
@dataclass
class Combined:
    """The fleet's report inputs, added up over the chunks."""

    lines: int
    carts: int
    applied_go: int
    applied_lenient: int
    lost: int
    carts_losing: int
    findings: list[Finding]
    metrics: pd.DataFrame
    freq: str
    rates: pd.DataFrame  # rates(go, freq)
    rates_by_type: pd.DataFrame  # rates(go, freq, by="type")
    lost_table: pd.DataFrame | None  # lost lines per cart (sorted) and go outcome
    unknown: pd.DataFrame  # lines, carts per unknown type (sorted)
    per_cart: pd.DataFrame
    parts: dict[tuple[str, Any], FindingPart]
    impact: pd.DataFrame = field(default_factory=_empty_impact)  # cart_impact, every cart
    timelines: list[CartTimeline] = field(default_factory=list)  # most affected, then noted


def _shifted(parts: dict[tuple[str, Any], FindingPart], offset: int
             ) -> dict[tuple[str, Any], FindingPart]:
    if not offset:
        return parts
    for p in parts.values():
        if "row" in p.evidence.columns:
            p.evidence = p.evidence.assign(row=p.evidence["row"] + offset)
        for c in p.counters.values():
            for v in c.values():
                v[1] += offset
    return parts


def combine(results: Sequence[ChunkResult], freq: str | None, sem: Any,
            timelines: int = TIMELINE_CARTS, fleet: FleetReport | None = None,
            noted: frozenset[str] = frozenset()) -> Combined:
    """Add up the chunks' results (in chunk order) into the report's inputs; of the carts
    ranked for a timeline, the ``timelines`` most affected and the noted ones are kept.
    ``fleet``: the counts, impact and per-cart table aggregated over the whole fleet
    (:func:`~cartforensics.analysis.fleet.fleet_report`; the chunks gave their findings only:
    ``run_chunks(findings_only=True)``), and then ``noted``: the carts with a note."""
    from cartforensics.analysis.metrics import pick_freq

    offset = 0
    parts = []
    for r in results:
        parts.append(_shifted(r.parts, offset))
        offset += r.lines
    combined = combine_parts(parts)
    lines = sum(r.lines for r in results)
    fs = build_findings(combined, lines, sem)
    if fleet is not None:
        c = fleet.counts
        tls = ranked_timelines(combined, fleet.impact, set(fleet.impact["cart_id"].astype(str)),
                               noted, timelines)
        return Combined(
            lines=c.lines, carts=c.carts, applied_go=c.applied_go,
            applied_lenient=c.applied_lenient, lost=c.lost, carts_losing=c.carts_losing,
            findings=fs, metrics=c.metrics, freq=c.freq, rates=c.rates,
            rates_by_type=c.rates_by_type, lost_table=c.lost_table,
            unknown=_unknown_table(c.unknown.reset_index()),
            per_cart=fleet.per_cart, parts=combined, impact=fleet.impact, timelines=tls)
    mins = [r.ts_min for r in results if r.ts_min is not None]
    maxs = [r.ts_max for r in results if r.ts_max is not None]
    if freq is None:
        span = pd.Series(pd.to_datetime(np.array([min(mins), max(maxs)] if mins else [],
                                                 dtype=np.int64), utc=True))
        freq = pick_freq(span)
    counts = pd.concat([r.counts for r in results], ignore_index=True)
    no_ts: dict[str, int] = {}
    for r in results:
        for o, k in r.no_ts.items():
            no_ts[o] = no_ts.get(o, 0) + k
    no_ts = {o: no_ts[o] for o in OUTCOMES if o in no_ts}
    wide = _wide(counts)
    rates_all = rates_from_counts(wide.drop(columns=["type"]), freq, None, "go", no_ts)
    rates_type = rates_from_counts(wide, freq, "type", "go", no_ts)
    lost = pd.concat([r.lost_by_cart for r in results], ignore_index=True)
    lost_table = None
    if len(lost):
        lost_table = lost.pivot_table(index="cart", columns="outcome", values="lines",
                                      aggfunc="sum", fill_value=0).sort_index()
        lost_table = lost_table.astype("int64")
        lost_table.columns.name = "outcome"
        lost_table.index.name = "cart"
    unknown = _unknown_table(pd.concat([r.unknown for r in results], ignore_index=True))
    pcs = [r.per_cart for r in results if len(r.per_cart)]
    per_cart = pd.concat(pcs, ignore_index=True).sort_values(
        "lost", ascending=False, kind="stable").head(TOP_CARTS).reset_index(drop=True) \
        if pcs else pd.DataFrame()
    values = combine_metric_values([r.metrics for r in results])
    impacts = [r.impact for r in results if len(r.impact)]
    impact = pd.concat(impacts, ignore_index=True) if impacts else _empty_impact()
    tls = sorted((t for r in results for t in r.timelines), key=lambda t: t.rank)
    tls = tls[:timelines] + [t for t in tls[timelines:] if t.noted]
    return Combined(
        lines=lines, carts=sum(r.carts for r in results),
        applied_go=sum(r.applied_go for r in results),
        applied_lenient=sum(r.applied_lenient for r in results),
        lost=sum(r.lost for r in results), carts_losing=sum(r.carts_losing for r in results),
        findings=fs, metrics=metrics_frame(values, "go"), freq=freq, rates=rates_all,
        rates_by_type=rates_type, lost_table=lost_table, unknown=unknown, per_cart=per_cart,
        parts=combined, impact=impact, timelines=tls)


def _unknown_table(unk: pd.DataFrame) -> pd.DataFrame:
    """Lines and carts per unknown type (rows: type, lines, carts; of several chunks)."""
    if not len(unk):
        return pd.DataFrame({"lines": [], "carts": []}, index=pd.Index([], name="type"))
    unk = unk.assign(type=unk["type"].astype("str"))
    return unk.groupby("type").agg(lines=("lines", "sum"), carts=("carts", "sum"))


def _wide(counts: pd.DataFrame) -> pd.DataFrame:
    """Long counts (window ns, type, outcome, lines) as rates' frame: window (UTC), type, one
    column per outcome."""
    if not len(counts):
        frame = pd.DataFrame({"window": pd.to_datetime(np.array([], dtype=np.int64), utc=True),
                              "type": pd.Series([], dtype=str)})
        for o in OUTCOMES:
            frame[o] = np.zeros(0, dtype=np.int64)
        return frame
    g = counts.groupby(["window", "type", "outcome"], sort=True)["lines"].sum().unstack(
        "outcome", fill_value=0)
    g = g.reindex(columns=list(OUTCOMES), fill_value=0).astype(np.int64).reset_index()
    g.columns.name = None
    g["window"] = pd.to_datetime(g["window"].to_numpy(dtype=np.int64), utc=True)
    return g[["window", "type", *OUTCOMES]]


def _outcomes_schema() -> pa.Schema:
    meta = pa.Schema.from_pandas(pd.DataFrame({
        "mode": pd.Series([], dtype="str"), "cart_id": pd.Series([], dtype="str"),
        "line": pd.Series([], dtype="int64"),
        "ts": pd.Series([], dtype="datetime64[ns, UTC]"), "type": pd.Series([], dtype="str"),
        "outcome": pd.Series([], dtype="str"), "error": pd.Series([], dtype="str"),
    }), preserve_index=False).metadata
    return OUTCOMES_SCHEMA.with_metadata(meta)


class OutcomesWriter:
    """outcomes.parquet from the chunks' parts as they finish: every go row, then every
    lenient row, in chunk order (the rows and order of stacking both whole replays). The go
    parts are copied while later chunks still run; one chunk's rows in memory at a time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.schema = _outcomes_schema()
        # dictionary pages for the text columns only: line numbers and times seldom repeat,
        # and hashing them cost a third of the writing (measured)
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
            self.path, self.schema, use_dictionary=[
                f.name for f in self.schema if pa.types.is_large_string(f.type)])
        self._waiting: dict[int, ChunkResult] = {}
        self._next = 0
        self._lenient: list[str] = []

    def _copy(self, part: str | None) -> None:
        if part is None or self._writer is None:
            return
        self._write(read_part(part))
        os.unlink(part)

    def _write(self, t: pa.Table | None) -> None:
        if t is not None and t.num_rows and self._writer is not None:
            self._writer.write_table(t.cast(self.schema))

    def add(self, r: ChunkResult) -> None:
        """A finished chunk (in any order)."""
        self._waiting[r.index] = r
        while self._next in self._waiting:
            done = self._waiting.pop(self._next)
            self._write(done.outcome_rows.pop("go", None))
            self._copy(done.outcomes.get("go"))
            if "lenient" in done.outcomes:
                self._lenient.append(done.outcomes["lenient"])
            self._next += 1

    def close(self) -> None:
        """Append the lenient rows and finish the file."""
        for part in self._lenient:
            self._copy(part)
        self._lenient = []
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def abort(self) -> None:
        """After a failure: close the file (what it holds is incomplete)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def write_outcomes(results: Sequence[ChunkResult], path: str | os.PathLike[str]) -> None:
    """outcomes.parquet from the chunks' parts (see :class:`OutcomesWriter`)."""
    w = OutcomesWriter(path)
    try:
        for r in results:
            w.add(r)
        w.close()
    finally:
        w.abort()
