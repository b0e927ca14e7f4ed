"""Fleet answers from a converted dataset, without replaying and without loading every column.

A dataset written by :func:`~cartforensics.jobs.convert.convert` already holds every line's outcome
and error in both modes (``outcome_go``, ``error_lenient``, ...) and every cart's final states
(``carts/``). Two ways to use them:

- :func:`stored_replays` reads the columns a report needs (never ``payload``; ``raw`` only for
  the lines whose snippet a finding shows or that may repeat another of their cart, a 64-bit
  hash of every line) and gives back
  objects that findings, metrics, plots and the report take wherever they take a
  :class:`~cartforensics.model.replay.Replay`. ``write_report(DATASET)`` reads its findings
  this way, and so its report equals the one from the logs.
- :func:`fleet_report` aggregates the report's fleet-wide numbers with DuckDB where the
  Parquet lies: :func:`fleet_counts` (counts, rates, metrics), the impact from the stored final
  states (:func:`~cartforensics.analysis.impact.impact_sql`) and the per-cart table.
- :func:`fleet_summary` counts per partition (one Parquet fragment at a time, on the workers
  of any ``concurrent.futures.Executor`` — a Dask cluster's too — or in this process) and
  combines the partial counts on the driver: outcomes per cart and mode, the seed's metrics,
  and lines per outcome per time window and type. Memory is bounded by one fragment, not by
  the fleet.

>>> events, go, lenient = stored_replays("carts.parquet")        # doctest: +SKIP
>>> s = fleet_summary("carts.parquet", freq="1h")                 # doctest: +SKIP
>>> s.metrics                                                     # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cartforensics.analysis.sql import parquet_view, process_connection
from cartforensics.go.version import GoSemantics, semantics
from cartforensics.io.dataset import (
    CARTS_DIR,
    EVENTS_DIR,
    DatasetError,
    as_read_events,
    carts_table,
    files_in_order,
    fragment_files,
    open_dataset,
    read_manifest,
)
from cartforensics.io.logs import SharedList, several_files, to_frame
from cartforensics.vocab import (
    EVIDENCE_ROWS,
    FAILURE_OUTCOMES,
    MODES,
    MUTATION_ERROR_OUTCOMES,
    OUTCOMES,
)

__all__ = ["DIGEST_COLUMN", "PARTITIONED_KINDS", "FleetCounts", "FleetReport", "FleetSummary",
           "StoredReplay", "fleet_counts", "fleet_report", "fleet_summary", "stored_replays",
           "stored_scan"]

DIGEST_COLUMN = "raw_digest"  # a 64-bit hash of a line's bytes (DuckDB's): equal lines, equal hash
# read_events' columns a report reads (payload never: the outcomes are stored)
_EVENT_COLUMNS = ["cart_id", "line", "offset", "length", "newline", "ts", "ts_kind", "type",
                  "envelope_error", "lenient_error", "too_long"]
_OUTCOME_COLUMNS = [f"{c}_{m}" for m in MODES for c in ("outcome", "error")]


class StoredReplay:
    """A replay read back from a dataset: the stored outcomes of one mode, the lines' columns
    (no payload), the carts' final states. Has what findings, metrics, plots and the report
    use of a :class:`~cartforensics.model.replay.Replay`
    (:class:`~cartforensics.model.protocol.ReplayOfEvents`: ``mode``, ``semantics``,
    ``events``, ``outcomes``, ``cart_ids``, ``rows_of``, ``final_state``), and ``summary``.
    History (``state_at``) needs the logs' replay:
    ``cf.replay(cf.open_dataset(path, carts=[...]))`` for the carts you want."""

    def __init__(self, mode: str, events: pd.DataFrame, outcomes: pd.DataFrame,
                 cart_ids: list[str], states: Mapping[str, str], root: Path,
                 sem: GoSemantics) -> None:
        self.mode = mode
        self.events = events
        self.outcomes = outcomes
        #: the toolchain the dataset was converted (replayed) as
        self.semantics = sem
        self.catalog = None
        self.registry = None
        self._root = root
        self._cart_ids = cart_ids
        self._states = states
        self._rows: dict[str, np.ndarray] | None = None
        #: this mode's rows of a report's outcomes.parquet, when read with the lines
        self.outcome_rows: pa.Table | None = None

    def load_raw(self, cart_ids: Sequence[str], raw: pa.Array) -> pa.Array:
        """``raw`` (one value per events row) with every line of ``cart_ids`` filled in from
        the dataset (the scan keeps only the bytes findings show)."""
        stored = open_dataset(self._root, carts=list(cart_ids),
                              columns=["cart_id", "source", "line", "raw"])
        stored = stored.sort_values(["cart_id", "source", "line"], kind="stable")
        values = raw.to_pylist()
        for cid, group in stored.groupby("cart_id", sort=False, observed=True):
            for r, data in zip(self.rows_of(str(cid)), group["raw"].tolist(), strict=True):
                values[r] = bytes(data)
        return pa.array(values, pa.large_binary())

    @property
    def cart_ids(self) -> list[str]:
        """Carts in replay order (first appearance; empty files too)."""
        return list(self._cart_ids)

    def rows_of(self, cart_id: str) -> list[int]:
        if self._rows is None:
            codes, uniq = pd.factorize(self.outcomes["cart_id"].astype(str))
            order = np.argsort(codes, kind="stable")
            bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=len(uniq)))]
            self._rows = {str(c): order[bounds[k]:bounds[k + 1]] for k, c in enumerate(uniq)}
        return self._rows.get(cart_id, np.zeros(0, np.int64)).tolist()

    def final_state(self, cart_id: str) -> dict[str, Any]:
        """The cart's state after its last line, as the conversion stored it."""
        if cart_id not in self._states:
            raise KeyError(f"no cart {cart_id!r} in this dataset")
        return orjson.loads(self._states[cart_id])

    def summary(self) -> pd.DataFrame:
        """Lines per outcome per cart (one column per outcome), carts in replay order."""
        oc = self.outcomes
        counts = pd.crosstab(oc["cart_id"].astype(str), oc["outcome"].astype(str))
        counts = counts.reindex(columns=list(OUTCOMES), fill_value=0)
        return counts.reindex(self.cart_ids, fill_value=0).astype("int64")


def stored_scan(path: str | os.PathLike[str],
          lines: Iterable[tuple[str, int]] | None = None,
          fragments: Sequence[str | os.PathLike[str]] | None = None) -> pa.Table:
    """Every line's report columns, ``raw`` kept only where a finding shows it (lenient
    malformed, no final newline, a backslash: the line may decode under one toolchain only),
    on ``lines`` ((cart_id, line) pairs: noted lines) and where the duplicates finding must
    compare the bytes (another line of the cart has the same 64-bit hash), and that hash
    (DuckDB's ``hash``) of every line: equal lines, equal hashes. Read, filtered, hashed and
    sorted by DuckDB in its threads, where the Parquet lies; the lines of a repeated hash
    are picked in numpy and their bytes read again (seldom any). What :func:`stored_replays`
    reads (its ``scanned``: read ahead, in another thread)."""
    from cartforensics.io.dataset import EVENTS_SCHEMA

    cols = list(dict.fromkeys(_EVENT_COLUMNS + ["ts_ns", "source"] + _OUTCOME_COLUMNS))
    fields = [EVENTS_SCHEMA.field(c) for c in cols]
    schema = pa.schema(fields + [pa.field("raw", pa.large_binary()),
                                 pa.field(DIGEST_COLUMN, pa.uint64())])
    frags = fragment_files(path, EVENTS_DIR) if fragments is None else \
        [Path(f) for f in fragments]  # (a plan's fragments: checked by plan_dataset)
    con = process_connection()
    try:
        parquet_view(con, "stored", frags, EVENTS_SCHEMA, temporary=True)
        keep = ("(outcome_lenient = 'malformed' and lenient_error is not null) or not newline "
                "or coalesce(contains(try(decode(raw)), '\\'), true)")
        pairs = sorted(set(lines or ()))
        if pairs:
            con.register("noted", pa.table({
                "cart_id": pa.array([c for c, _ in pairs], pa.string()),
                "line": pa.array([int(n) for _, n in pairs], pa.int64())}))
            keep += (" or exists (select 1 from noted where noted.cart_id = stored.cart_id "
                     "and noted.line = stored.line)")
        listed = ", ".join(f'"{c}"' for c in cols)
        # the fragments' rows come in their order (DuckDB keeps it) and are sorted here
        # (_in_lines_order: cheaper than DuckDB's sort, measured) when they are not: date
        # partitions interleave carts (the noted lines' join may reorder: sorted by DuckDB then)
        # (hashing every line in DuckDB, the repeated hashes picked in numpy: an MD5 of each
        # line, or a window over (cart, hash), cost twice the CPU, measured)
        table = con.sql(
            f"select {listed}, case when coalesce({keep}, false) then raw end as raw, "
            f"hash(raw) as {DIGEST_COLUMN} from stored"
            + (" order by cart_id, source, line" if pairs else "")).to_arrow_table()
        table = _with_repeated_lines(con, table)
    finally:
        con.close()
    if not pairs:
        table = _in_lines_order(table)
    return pa.table([table[f.name].cast(f.type) for f in schema], schema=schema)


def _with_repeated_lines(con: Any, table: pa.Table) -> pa.Table:
    """``table`` (a scan of ``stored`` on ``con``) with the bytes of every line whose hash
    repeats in its cart filled in (read again, for those lines only: seldom any).

    >>> import duckdb
    >>> con = duckdb.connect()
    >>> _ = con.execute("create table stored as select * from (values ('a', 'f', 1, 'x'::blob),"
    ...                 " ('a', 'f', 2, 'x'::blob), ('a', 'f', 3, 'y'::blob)) t(cart_id, source,"
    ...                 " line, raw)")
    >>> t = con.sql("select cart_id, source, line, null::blob as raw, hash(raw) as raw_digest "
    ...             "from stored").to_arrow_table()
    >>> _with_repeated_lines(con, t)["raw"].to_pylist()
    [b'x', b'x', None]
    """
    missing = _hash_repeats(table) & ~table["raw"].is_valid().to_numpy(zero_copy_only=False)
    if not missing.any():
        return table
    at = np.flatnonzero(missing)
    keys = table.select(["cart_id", "source", "line"]).take(pa.array(at))
    con.register("_cf_repeated", keys)
    got = con.sql("select s.cart_id, s.source, s.line, s.raw from stored s semi join "
                  "_cf_repeated r on s.cart_id = r.cart_id and s.source = r.source and "
                  "s.line = r.line").fetchall()
    con.unregister("_cf_repeated")
    found = {(c, src, int(n)): bytes(data) for c, src, n, data in got}
    raw = table["raw"].to_pylist()
    for k, key in zip(at.tolist(), zip(*(keys[c].to_pylist() for c in keys.column_names),
                                       strict=True), strict=True):
        raw[k] = found.get((key[0], key[1], int(key[2])))
    column = table.schema.get_field_index("raw")
    return table.set_column(column, "raw", pa.array(raw, table.schema.field(column).type))


def _hash_repeats(table: pa.Table) -> np.ndarray:
    """Whether each line's cart may hold another line of the same hash (``raw_digest``):
    every line that can repeat one, whose bytes the duplicates finding compares
    (:func:`~cartforensics.analysis.findings.hash_repeats`).

    >>> _hash_repeats(pa.table({"cart_id": ["a", "a", "b", "a"],
    ...                         "raw_digest": pa.array([7, 8, 7, 7], pa.uint64())})).tolist()
    [True, False, False, True]
    """
    from cartforensics.analysis.findings import hash_repeats

    if not table.num_rows:
        return np.zeros(0, bool)
    cart = table["cart_id"].combine_chunks().dictionary_encode().indices
    return hash_repeats(cart.to_numpy(zero_copy_only=False),
                        table[DIGEST_COLUMN].combine_chunks().fill_null(0).to_numpy())


def _in_lines_order(table: pa.Table) -> pa.Table:
    """``table`` (fragments' rows as DuckDB read them, in their order) sorted by cart_id,
    source, line when it is not already (missing ones last, as DuckDB). The rows come as a
    few sorted runs (one per fragment): the texts are ranked (a few hundred distinct), the
    order is found on integers (one stable sort: near linear on runs), and the table taken
    once.

    >>> t = pa.table({"cart_id": ["b", "a", "a", "b"], "source": ["b/1", "a/2", "a/1", "b/1"],
    ...               "line": [1, 1, 1, 2]})
    >>> _in_lines_order(t).to_pydict()["source"]
    ['a/1', 'a/2', 'b/1', 'b/1']
    """
    keys = [("cart_id", "ascending"), ("source", "ascending"), ("line", "ascending")]
    if table.num_rows < 2:
        return table
    if any(table[k].null_count for k, _ in keys):
        return table.sort_by(keys)
    cart, source = _ranks(table["cart_id"]), _ranks(table["source"])
    line = table["line"].to_numpy()
    low = int(line.min())
    bits = [int(cart.max()).bit_length(), int(source.max()).bit_length(),
            (int(line.max()) - low).bit_length()]
    if sum(bits) <= 63:  # one integer per row, in the keys' order
        key = (cart << (bits[1] + bits[2])) | (source << bits[2]) | (line - low)
        if (key[1:] >= key[:-1]).all():
            return table
        order = np.argsort(key, kind="stable")
    else:
        order = np.lexsort((line, source, cart))
        if (order == np.arange(len(order))).all():
            return table
    return table.take(order)


def _ranks(column: pa.ChunkedArray) -> np.ndarray:
    """Each value's rank among the column's distinct values (bytewise order, from 0).

    >>> _ranks(pa.chunked_array([["b", "a"], ["c", "b"]])).tolist()
    [1, 0, 2, 1]
    """
    coded = column.combine_chunks().dictionary_encode()
    rank = pc.rank(coded.dictionary, sort_keys="ascending", tiebreaker="dense")
    return (rank.to_numpy().astype(np.int64) - 1)[coded.indices.to_numpy(zero_copy_only=False)]


_OUTCOME_NAMES = pa.array(list(OUTCOMES), pa.large_string())


def _outcome_rows(table: pa.Table, cart_id: pa.ChunkedArray) -> dict[str, pa.Table]:
    """Per mode, the rows of a report's outcomes.parquet (mode, cart_id, line, ts, type,
    outcome, error) of a scan's lines, as the report writes them from a replay's frame (an
    outcome that is none of OUTCOMES reads ``nan``, as there); ``cart_id``: the scan's as
    large_string. The columns both modes share are built once."""
    text = pa.large_string()
    shared = {"cart_id": cart_id, "line": table["line"].cast(pa.int64()),
              "ts": table["ts_ns"].cast(pa.timestamp("ns", tz="UTC")),
              "type": table["type"].cast(text)}
    out = {}
    for mode in MODES:
        outcome = table[f"outcome_{mode}"].cast(text)
        out[mode] = pa.table({
            "mode": pa.repeat(pa.scalar(mode, text), table.num_rows), **shared,
            "outcome": pc.if_else(pc.is_in(outcome, value_set=_OUTCOME_NAMES), outcome,
                                  pa.scalar("nan", text)),
            "error": table[f"error_{mode}"].cast(text)})
    return out


def stored_replays(path: str | os.PathLike[str],
                   lines: Iterable[tuple[str, int]] | None = None, *,
                   fragments: Sequence[str | os.PathLike[str]] | None = None,
                   carts: Iterable[str] | None = None,
                   cart_fragments: Sequence[str] | None = None,
                   manifest: dict[str, Any] | None = None,
                   scanned: pa.Table | None = None,
                   ) -> tuple[pd.DataFrame, StoredReplay, StoredReplay]:
    """(events, go, lenient) from a converted dataset, without replaying: ``events`` has
    read_events' columns but ``payload`` (``raw`` only where a finding shows a line's bytes,
    else missing; ``raw_digest``, a 64-bit hash, for every line), ``go``/``lenient`` the
    stored outcomes.
    ``lines``: (cart_id, line) pairs whose bytes are wanted too (an analyst's noted lines).

    The same lines, outcomes and errors as ``read_events`` + ``replay`` of the logs (a cart
    with a ``.log`` and a ``.log.gz`` is one log in both).

    ``fragments`` (event fragments' paths) and ``carts`` (ids) read a part of the dataset: the
    lines of those fragments, and the files of those carts (empty ones too); the fragments
    must hold every line of the carts they hold (a report's chunks, see
    :mod:`cartforensics.present.report_chunks`); ``cart_fragments``: the ``carts/`` fragments that
    hold those carts' rows (default: all); ``manifest``: the dataset's manifest (or the part
    of it these carts need: their ``files`` entries, ``go_version``, ``source``), when read
    already; ``scanned``: what :func:`stored_scan` gave for ``path``, ``lines`` and
    ``fragments``, when read already."""
    root = Path(path)
    if manifest is None:
        manifest = read_manifest(root)
    if manifest is None:
        raise DatasetError(f"{root}: not a cartforensics dataset (no manifest.json of ours)")
    files = files_in_order(manifest)
    if carts is not None:
        wanted = set(carts)
        files = [f for f in files if f["cart_id"] in wanted]
    table = stored_scan(root, lines, fragments) if scanned is None else scanned
    ids = [f["cart_id"] for f in files]
    outcome_cols = {c: table[c] for c in _OUTCOME_COLUMNS}
    # the carts' ids as text and in order of first appearance, from the Arrow column (the
    # frame's categorical would make a Python string per line)
    cart_text = table["cart_id"].cast(pa.large_string())
    cart_col = pd.array(cart_text, dtype="str")
    present = pc.unique(table["cart_id"]).to_pylist()
    ev_cols = [c for c in _EVENT_COLUMNS] + ["ts_ns", "raw"]
    events = to_frame(as_read_events(table.select(ev_cols), ids).select(
        _EVENT_COLUMNS + ["raw"]))
    events[DIGEST_COLUMN] = table[DIGEST_COLUMN].combine_chunks().fill_null(0).to_numpy()
    # the report's outcomes.parquet rows, from the Arrow columns (no pandas round trip)
    rows_of_mode = _outcome_rows(table, cart_text)
    del table
    events.attrs["files"] = SharedList(
        {"path": f["path"], "cart_id": f["cart_id"], "bytes": f.get("content_size"),
         "lines": f.get("lines")} for f in files
    )
    # problems name the file where it was converted from, as a report from the logs does
    where = manifest.get("source")
    def named(rel: str) -> str:
        return os.path.join(where, rel) if where else rel

    several = several_files([(named(f["path"]), f["cart_id"]) for f in files])
    events.attrs["problems"] = SharedList(
        [{"path": named(f["path"]), "cart_id": f["cart_id"], "error": p}
         for f in files for p in f.get("problems", [])]
        + [{"path": p.path, "cart_id": p.cart_id, "error": p.error} for p in several]
    )
    # carts in replay order: files with lines (or empty) in file order, as replay() does
    seen = set(present)
    cart_ids = list(dict.fromkeys(
        [f["cart_id"] for f in files if f["cart_id"] in seen or not f.get("lines")]
        + present))
    whole = carts is None
    sources = [f["path"] for f in files]

    def read_states() -> pd.DataFrame:
        rows = carts_table(root).to_pandas() if whole else \
            _cart_states(root, sources, cart_fragments)
        # a cart's final state: its last file's (in read_events' order)
        order = {p: k for k, p in enumerate(sources)}
        rows["_order"] = rows["source"].map(order)
        return rows.sort_values("_order", kind="stable")

    finals = _FinalStates(read_states)
    out = []
    # the replay's dtypes, built from the Arrow columns (no Python object per line)
    outcome_names = pa.array(list(OUTCOMES), pa.string())
    for mode in MODES:
        states = _ModeStates(finals, mode)
        codes = pc.index_in(outcome_cols[f"outcome_{mode}"], value_set=outcome_names)
        oc = pd.DataFrame({
            "cart_id": cart_col,
            "line": events["line"].to_numpy(),
            "ts": events["ts"].array,
            "type": events["type"].array,
            "outcome": pd.Categorical.from_codes(
                codes.fill_null(-1).to_numpy(), categories=list(OUTCOMES)),
            "error": pd.array(outcome_cols[f"error_{mode}"].cast(pa.large_string()),
                              dtype="str"),
        })
        out.append(StoredReplay(mode, events, oc, cart_ids, states, root,
                                semantics(manifest.get("go_version"))))
        out[-1].outcome_rows = rows_of_mode[mode]
    return events, out[0], out[1]


class _FinalStates:
    """Both modes' final states of the carts a scan read, from ``carts/`` on first use (a
    report reads its counts, impact and tables elsewhere: it seldom asks for one)."""

    def __init__(self, read: Callable[[], pd.DataFrame]) -> None:
        self._read = read
        self._by_mode: dict[str, dict[str, str]] | None = None

    def of(self, mode: str) -> dict[str, str]:
        if self._by_mode is None:
            rows = self._read()
            self._by_mode = {m: dict(zip(rows["cart_id"], rows[f"state_{m}"], strict=True))
                             for m in MODES}
        return self._by_mode[mode]


class _ModeStates(Mapping[str, str]):
    """One mode's final states (cart id -> JSON) of a :class:`_FinalStates`."""

    def __init__(self, finals: _FinalStates, mode: str) -> None:
        self._finals, self._mode = finals, mode

    def __getitem__(self, cart_id: str) -> str:
        return self._finals.of(self._mode)[cart_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._finals.of(self._mode))

    def __len__(self) -> int:
        return len(self._finals.of(self._mode))


# ------------------------------------------------------------------------------------------
# Counted per partition, combined on the driver


@dataclass
class FleetSummary:
    """What :func:`fleet_summary` counted: ``carts`` (one row per cart: lines, bytes, first
    and last ts, lines per outcome in each mode, lost = applied in lenient mode but not by the
    service), ``metrics`` (the seed's, as :func:`~cartforensics.analysis.metrics.metrics` gives
    them),
    ``rates`` (lines per window, type and outcome, go mode), ``partitions`` (fragments read),
    ``findings`` (the kinds in PARTITIONED_KINDS, one row per kind and key: lines, carts, first
    and last seen) and their ``evidence`` (the first lines of each, as the report shows them);
    the other kinds need ``write_report`` for now."""

    carts: pd.DataFrame
    metrics: pd.DataFrame
    rates: pd.DataFrame
    lines: int
    partitions: int
    findings: pd.DataFrame | None = None  # PARTITIONED_KINDS: kind, key, lines, carts, ...
    evidence: dict[tuple[str, str], pd.DataFrame] | None = None  # (kind, key) -> first lines


_RATE_COLUMNS = ["ts", "ts_ns", "type", "outcome_go", "outcome_lenient", "newline", "length",
                 "cart_id"]


def _count_fragment(path: str, freq_us: int) -> dict[str, Any]:
    """One partition's partial counts (a pure function of the fragment's bytes)."""
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=_RATE_COLUMNS)
    n = t.num_rows
    nl = t["newline"]
    length = t["length"]
    ts_us = t["ts"].cast(pa.int64())
    window = pc.multiply(pc.floor(pc.divide(ts_us.cast(pa.float64()), float(freq_us)))
                         .cast(pa.int64()), freq_us)
    typ = pc.fill_null(t["type"], "(none)")
    lost = pc.and_(pc.equal(t["outcome_lenient"], "applied"),
                   pc.not_equal(t["outcome_go"], "applied"))
    g = pa.table({"window": window, "type": typ, "outcome": t["outcome_go"],
                  "lost": lost}).group_by(["window", "type", "outcome"]).aggregate(
        [("lost", "count"), ("lost", "sum")])
    per_cart = pa.table({
        "cart_id": t["cart_id"], "appends": nl.cast(pa.int64()),
        "bytes": pc.if_else(nl, pc.add(length, 1), 0),
        "lost": lost.cast(pa.int64()), "ts": t["ts_ns"],
    }).group_by("cart_id").aggregate([("appends", "sum"), ("bytes", "sum"), ("lost", "sum"),
                                      ("ts", "max")])
    return {"rows": n, "rates": g, "carts": per_cart, "findings": _finding_rows(path)}


# the kinds of finding a partition can count alone (the others need a cart's earlier lines, or
# the lines' bytes: glued/torn, ts_backwards, duplicates; file problems are in the manifest)
PARTITIONED_KINDS = ("numeric_ts", "too_long", "unknown_type", "apply_error",
                     "no_final_newline")
_FINDING_COLUMNS = ["cart_id", "source", "line", "ts_ns", "type", "ts_kind", "envelope_error",
                    "too_long", "newline", "outcome_go", "error_go", "outcome_lenient",
                    "error_lenient"]
_EVIDENCE = ["cart_id", "source", "line", "ts", "type", "outcome_go", "error_go",
             "outcome_lenient", "error_lenient"]


def _finding_rows(path: str) -> dict[str, pd.DataFrame]:
    """One partition's findings: lines, first and last ts per (kind, key, cart), and the first
    EVIDENCE_ROWS lines per (kind, key) in read_events' order."""
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=_FINDING_COLUMNS)
    t = t.append_column("ts", t["ts_ns"].cast(pa.timestamp("ns", tz="UTC")))  # exact ts
    go, le = t["outcome_go"], t["outcome_lenient"]
    none = pa.nulls(t.num_rows, pa.string())
    kinds = [
        ("numeric_ts", pc.and_(pc.equal(t["ts_kind"], "number"),
                               pc.is_valid(t["envelope_error"])), none),
        ("too_long", pc.or_(t["too_long"], pc.equal(go, "not_reached")), none),
        ("unknown_type", pc.equal(le, "unknown_type"), pc.fill_null(t["type"], "")),
        ("apply_error", pc.or_(pc.equal(go, "apply_error"), pc.equal(le, "apply_error")),
         pc.if_else(pc.equal(go, "apply_error"), t["error_go"], t["error_lenient"])),
        ("no_final_newline", pc.invert(t["newline"]), none),
    ]
    pieces = []
    for kind, mask, key in kinds:
        mask = pc.fill_null(mask, False)
        sub = t.select(_EVIDENCE).filter(mask)
        if sub.num_rows:
            sub = sub.append_column("kind", pa.array([kind] * sub.num_rows, pa.string()))
            pieces.append(sub.append_column("key", key.filter(mask).cast(pa.string())))
    if not pieces:
        return {"groups": pd.DataFrame(), "evidence": pd.DataFrame()}
    rows = pa.concat_tables(pieces).to_pandas()
    rows["key"] = rows["key"].astype(object).where(rows["key"].notna(), "")
    groups = rows.groupby(["kind", "key", "cart_id"], sort=False).agg(
        lines=("line", "size"), first=("ts", "min"), last=("ts", "max")).reset_index()
    rows = rows.sort_values(["cart_id", "source", "line"], kind="stable")
    evidence = rows.groupby(["kind", "key"], sort=False).head(EVIDENCE_ROWS)
    return {"groups": groups, "evidence": evidence}


def fleet_summary(path: str | os.PathLike[str], freq: str = "1h",
                  executor: Executor | None = None) -> FleetSummary:
    """Per-cart summaries, the seed's metrics and outcome counts per time window and type,
    counted fragment by fragment (on ``executor``'s workers when given: they must see the
    dataset) and combined here. Never holds more than one fragment's few columns at once."""
    from cartforensics.analysis.metrics import (
        METRIC_NOTES,
        PROMISED_UNKNOWN_HELP,
        PROMISED_UNKNOWN_METRIC,
        READER_METRICS,
        SEED_METRICS,
        WRITER_METRICS,
        window_width,
    )

    root = Path(path)
    manifest = read_manifest(root)
    if manifest is None:
        raise DatasetError(f"{root}: not a cartforensics dataset (no manifest.json of ours)")
    freq_us = int(window_width(freq).value // 1000)  # ValueError: no positive window
    if freq_us < 1:
        raise ValueError(f"freq {freq!r} is narrower than the dataset's 1us: give 1us or more")
    frags = [str(p) for p in fragment_files(root, EVENTS_DIR)]  # checked, as the report's
    if executor is None:
        parts = [_count_fragment(f, freq_us) for f in frags]
    else:
        parts = list(executor.map(_count_fragment, frags, [freq_us] * len(frags)))
    lines = sum(p["rows"] for p in parts)

    # per cart: the carts table holds the outcome counts; the fragments the writer side
    count_cols = [f"{m}_{o}" for m in MODES for o in OUTCOMES]
    ct = _carts_columns(root, ["cart_id", "lines", "bytes", "min_ts", "max_ts", *count_cols])
    carts = ct.groupby("cart_id", sort=False).agg(
        lines=("lines", "sum"), bytes=("bytes", "sum"), first_ts=("min_ts", "min"),
        last_ts=("max_ts", "max"), **{c: (c, "sum") for c in count_cols})
    writer = _combine([p["carts"] for p in parts], "cart_id",
                      {"appends_sum": "sum", "bytes_sum": "sum", "lost_sum": "sum",
                       "ts_max": "max"})
    carts = carts.join(writer, how="left").rename(columns={
        "appends_sum": "appends", "bytes_sum": "bytes_written", "lost_sum": "lost",
        "ts_max": "last_ts_ns"})
    for c in ("appends", "bytes_written", "lost"):
        carts[c] = carts[c].fillna(0).astype("int64")

    values: dict[str, Any] = {
        "cart_event_log_replay_total": int((carts["go_too_long"] == 0).sum()),
        "cart_event_log_replay_failures_total": int(
            sum(carts[f"go_{o}"].sum() for o in FAILURE_OUTCOMES)),
        "cart_event_log_mutation_errors_total": int(
            sum(carts[f"go_{o}"].sum() for o in MUTATION_ERROR_OUTCOMES)),
        "cart_event_log_unknown_types_total": 0,
        PROMISED_UNKNOWN_METRIC: int(carts["go_unknown_type"].sum()),
        "cart_event_log_appends_total": int(carts["appends"].sum()),
        "cart_event_log_bytes_written_total": int(carts["bytes_written"].sum()),
        "cart_event_log_files_existing": sum(
            1 for f in manifest.get("files", []) if f["path"].endswith(".events.log")),
    }
    last = carts["last_ts_ns"].max()
    values["cart_event_log_last_append_unix"] = 0.0 if pd.isna(last) else float(last) / 1e9
    rows = []
    for name in (*READER_METRICS, PROMISED_UNKNOWN_METRIC, *WRITER_METRICS):
        typ, help_text = (("counter", PROMISED_UNKNOWN_HELP) if name == PROMISED_UNKNOWN_METRIC
                          else SEED_METRICS[name])
        rows.append({"metric": name, "side": "writer" if name in WRITER_METRICS else "reader",
                     "type": typ, "value": values[name], "help": help_text,
                     "note": METRIC_NOTES[name]})
    metrics = pd.DataFrame(rows).set_index("metric")
    metrics["value"] = pd.Series([r["value"] for r in rows], index=metrics.index, dtype=object)

    rates = _combine([p["rates"] for p in parts], ["window", "type", "outcome"],
                     {"lost_count": "sum", "lost_sum": "sum"}).reset_index()
    rates = rates.rename(columns={"lost_count": "lines", "lost_sum": "lost"})
    rates["window"] = pd.to_datetime(rates["window"], unit="us", utc=True)
    found, evidence = _combine_findings([p["findings"] for p in parts])
    return FleetSummary(carts.drop(columns=["last_ts_ns"]), metrics,
                        rates.sort_values(["window", "type", "outcome"], ignore_index=True),
                        lines, len(frags), found, evidence)


def _combine_findings(parts: Sequence[dict[str, pd.DataFrame]]
                      ) -> tuple[pd.DataFrame, dict[tuple[str, str], pd.DataFrame]]:
    groups = [p["groups"] for p in parts if len(p["groups"])]
    cols = ["kind", "key", "lines", "carts", "first_seen", "last_seen"]
    if not groups:
        return pd.DataFrame(columns=cols), {}
    g = pd.concat(groups, ignore_index=True).groupby(["kind", "key"], sort=False).agg(
        lines=("lines", "sum"), carts=("cart_id", "nunique"), first_seen=("first", "min"),
        last_seen=("last", "max")).reset_index()
    g = g.sort_values(["lines", "kind", "key"], ascending=[False, True, True],
                      ignore_index=True)
    ev = pd.concat([p["evidence"] for p in parts if len(p["evidence"])], ignore_index=True)
    ev = ev.sort_values(["cart_id", "source", "line"], kind="stable")
    evidence = {(str(k), str(key)): e.head(EVIDENCE_ROWS).drop(columns=["kind", "key"])
                .reset_index(drop=True) for (k, key), e in ev.groupby(["kind", "key"],
                                                                      sort=False)}
    return g[cols], evidence


def _cart_states(root: Path, sources: list[str],
                 fragments: Sequence[str] | None = None) -> pd.DataFrame:
    """carts/ rows (with the states) of the files ``sources`` only, read from ``fragments``
    (default: every carts/ fragment) by DuckDB."""
    from cartforensics.io.dataset import CARTS_SCHEMA

    files = [str(p) for p in fragment_files(root, CARTS_DIR)] if fragments is None \
        else sorted(str(f) for f in fragments)
    con = process_connection()
    try:
        parquet_view(con, "carts", files, CARTS_SCHEMA, temporary=True)
        con.register("wanted", pa.table({"source": pa.array(sources, pa.string())}))
        t = con.sql("select * from carts where source in (select source from wanted) "
                    "order by cart_id, source").to_arrow_table()
    finally:
        con.close()
    t = pa.table([t[f.name].cast(f.type) for f in CARTS_SCHEMA], schema=CARTS_SCHEMA)
    return t.to_pandas()


def _carts_columns(root: Path, columns: list[str]) -> pd.DataFrame:
    """Some columns of ``carts/`` (not the states: kB per cart), in carts_table's order."""
    import pyarrow.dataset as ds

    from cartforensics.io.dataset import CARTS_DIR, CARTS_SCHEMA

    files = [str(p) for p in fragment_files(root, CARTS_DIR)]
    t = ds.dataset(files, schema=CARTS_SCHEMA, format="parquet").to_table(
        columns=list(dict.fromkeys(["source", *columns])))
    return t.sort_by([("cart_id", "ascending"), ("source", "ascending")]).to_pandas()


def _combine(tables: Sequence[pa.Table], keys: str | list[str],
             how: dict[str, str]) -> pd.DataFrame:
    """Partial aggregates of the partitions → one row per key."""
    keys = [keys] if isinstance(keys, str) else keys
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return pd.DataFrame(columns=[*keys, *how]).set_index(keys)
    t = pa.concat_tables(tables, promote_options="permissive")
    out = t.group_by(keys).aggregate([(c, f) for c, f in how.items()])
    df = out.to_pandas()
    df.columns = [c.rsplit("_", 1)[0] if c.rsplit("_", 1)[0] in how else c
                  for c in df.columns]
    return df.set_index(keys)


# ------------------------------------------------------------------------------------------
# Counted by DuckDB where the data lies (a dataset's Parquet, or logs' Arrow tables)


@dataclass
class FleetCounts:
    """What :func:`fleet_counts` counted, in the report's own shapes: ``lines``, ``carts``,
    ``applied_go``, ``applied_lenient``, ``lost`` (applied in lenient mode, not by the
    service) and ``carts_losing``; ``outcomes`` (lines per mode and outcome), ``by_type``
    (per mode, type and outcome), ``by_cart`` (one row per cart: lines per outcome in each
    mode, ``lost``); the charts' inputs: ``rates`` and ``rates_by_type`` (go mode, as
    :func:`~cartforensics.analysis.metrics.rates` gives them, windows of ``freq``),
    ``lost_table`` (lost lines per cart and go outcome; None when none), ``unknown`` (lenient
    mode's unknown types: lines, carts); ``metrics`` (the seed's, go mode)."""

    lines: int
    carts: int
    applied_go: int
    applied_lenient: int
    lost: int
    carts_losing: int
    freq: str
    outcomes: pd.DataFrame
    by_type: pd.DataFrame
    by_cart: pd.DataFrame
    rates: pd.DataFrame
    rates_by_type: pd.DataFrame
    lost_table: pd.DataFrame | None
    unknown: pd.DataFrame
    metrics: pd.DataFrame


_DAY_NS = 86_400 * 10**9
_LOST = "outcome_lenient = 'applied' and outcome_go <> 'applied'"


def fleet_counts(src: Any, freq: str | None = None) -> FleetCounts:
    """The fleet's counts, rates and metrics, aggregated by DuckDB in its threads: over a
    converted dataset's Parquet where it lies, or over logs replayed into Arrow tables (what
    :func:`cartforensics.analysis.sql.sql` takes, or a connection it made). No Python pass
    over the rows; the numbers equal the report's. ``freq``: the rates' window (default: as
    the report picks it from the span).

    >>> c = fleet_counts("sample_data", freq="1D")
    >>> c.lines, c.applied_go, c.applied_lenient, c.lost
    (1540, 713, 1506, 793)
    """
    from cartforensics.analysis.sql import sql

    given = hasattr(src, "execute") and hasattr(src, "sql")  # a connection cf.sql made
    con = src if given else sql(src)
    try:
        return _fleet_counts(con, freq, own=not given)
    finally:
        if given:
            for table in ("_cf_cells", "_cf_by_cart", "_cf_by_type"):
                con.execute(f"drop table if exists {table}")
        else:
            con.close()


def _fleet_counts(con: Any, freq: str | None, own: bool = False) -> FleetCounts:
    """:func:`fleet_counts` on a connection with cf.sql's views: two scans of ``events``
    (cells of a cart's lines per type and outcomes; per window and type), the rest from
    their small results. ``own``: the views are cf.sql's as it made them (not a caller's
    connection, whose ``events`` may have been redefined): a dataset's lines are read as
    stored (:func:`_lines_relation`)."""
    from cartforensics.analysis.metrics import metrics_frame, pick_freq, rates_from_counts

    def frame(query: str) -> pd.DataFrame:
        return con.sql(query).df()

    def one(query: str) -> tuple[Any, ...]:
        return con.sql(query).fetchall()[0]

    def counted(mode: str, name: str = "{o}") -> str:  # over cells of n lines each
        return ", ".join(f"coalesce(sum(n) filter (where outcome_{mode} = '{o}'), 0)::bigint "
                         f'as "{name.format(o=o, m=mode)}"' for o in OUTCOMES)

    stored, ts_ns = _lines_relation(con) if own else ("events", "epoch_ns(ts)")
    # one scan of the lines into cells (a cart's lines of one type and pair of outcomes):
    # every per-cart, per-type and unknown-type count adds up from them
    con.execute(f"""
        create or replace temp table _cf_cells as
        select cart_id, type, outcome_go, outcome_lenient, count(*)::bigint as n,
            min({ts_ns}) as ts_min, max({ts_ns}) as ts_max,
            count(*) filter (where newline)::bigint as appends,
            coalesce(sum(length + 1) filter (where newline), 0)::bigint as written
        from {stored} group by all""")
    con.execute(f"""
        create or replace temp table _cf_by_cart as
        select cart_id, sum(n)::bigint as lines, {counted("go", "go_{o}")},
            {counted("lenient", "lenient_{o}")},
            coalesce(sum(n) filter (where {_LOST}), 0)::bigint as lost,
            {", ".join(f"coalesce(sum(n) filter (where {_LOST} and outcome_go = '{o}'), 0)"
                       f'::bigint as "lost_{o}"' for o in OUTCOMES)},
            min(ts_min) as ts_min, max(ts_max) as ts_max,
            sum(appends)::bigint as appends, sum(written)::bigint as written
        from _cf_cells group by cart_id""")
    head = one("""
        select coalesce(sum(lines), 0), coalesce(sum(go_applied), 0),
            coalesce(sum(lenient_applied), 0), coalesce(sum(lost), 0),
            count(*) filter (where lost > 0), min(ts_min), max(ts_max),
            coalesce(sum(appends), 0), coalesce(sum(written), 0),
            count(*) filter (where go_too_long > 0)
        from _cf_by_cart""")
    lines, applied_go, applied_lenient, lost, carts_losing, ts_min, ts_max, appends, \
        written, long_carts = (None if v is None else int(v) for v in head)
    carts = int(one("select count(*) from (select cart_id from files union "
                    "select cart_id from _cf_by_cart)")[0])
    if freq is None:
        span = [] if ts_min is None else [ts_min, ts_max]
        freq = pick_freq(pd.Series(pd.to_datetime(np.array(span, dtype=np.int64), utc=True)))
    try:
        width = int(pd.Timedelta(pd.tseries.frequencies.to_offset(freq)).value)
    except (ValueError, TypeError):
        width = _DAY_NS
    base = math.gcd(width, _DAY_NS) if width > 0 else _DAY_NS  # windows nested in freq's

    # go mode per window and type: the time charts (rates_from_counts lays freq's windows);
    # lines without a ts in a window of their own (null)
    wide = frame(f"""
        select "window", type, {counted("go")} from (
            select ({ts_ns} - (({ts_ns} % {base}) + {base}) % {base}) as "window",
                coalesce(type, '(none)') as type, outcome_go, count(*)::bigint as n
            from {stored} group by all)
        group by all order by 1, 2""")
    timeless = wide["window"].isna().to_numpy()
    no_ts = {o: k for o in OUTCOMES if (k := int(wide.loc[timeless, o].sum()))}
    wide = wide[~timeless].reset_index(drop=True)
    wide["window"] = pd.to_datetime(wide["window"].to_numpy(dtype=np.int64), utc=True)
    wide["type"] = wide["type"].astype(object)
    wide = wide[["window", "type", *OUTCOMES]]
    rates_all = rates_from_counts(wide.drop(columns=["type"]), freq, None, "go", no_ts)
    rates_type = rates_from_counts(wide, freq, "type", "go", no_ts)

    lost_cols = [f"lost_{o}" for o in OUTCOMES]
    lost_rows = frame(f"select cart_id, {', '.join(lost_cols)} from _cf_by_cart "
                      "where lost > 0")
    lost_table = None
    if len(lost_rows):
        lost_table = lost_rows.set_index("cart_id")[lost_cols].rename(
            columns=lambda c: c[len("lost_"):])
        lost_table = lost_table.loc[:, lost_table.sum() > 0]
        lost_table = lost_table[sorted(lost_table.columns)].sort_index().astype("int64")
        lost_table.columns.name = "outcome"
        lost_table.index.name = "cart"
    unknown = frame("select coalesce(type, '') as type, sum(n)::bigint as lines, "
                    "count(distinct cart_id)::bigint as carts from _cf_cells "
                    "where outcome_lenient = 'unknown_type' group by all")
    unknown = unknown.astype({"type": object}).set_index("type").sort_index()

    con.execute("create or replace temp table _cf_by_type as select type, outcome_go, "
                "outcome_lenient, sum(n)::bigint as n from _cf_cells group by all")
    per_mode = " union all ".join(
        f"select '{m}' as mode, type, outcome_{m} as outcome, n from _cf_by_type"
        for m in MODES)
    outcomes = frame(f"select mode, outcome, sum(n)::bigint as lines from ({per_mode}) "
                     "group by all order by all")
    by_type = frame(f"select mode, type, outcome, sum(n)::bigint as lines from ({per_mode}) "
                    "group by all order by all")
    by_cart = frame("select cart_id, lines, "
                    + ", ".join(f'"{m}_{o}"' for m in MODES for o in OUTCOMES)
                    + ", lost from _cf_by_cart order by cart_id").set_index("cart_id")

    go = outcomes[outcomes["mode"] == "go"]
    count = dict.fromkeys(OUTCOMES, 0) | {str(o): int(k) for o, k in
                                          zip(go["outcome"], go["lines"], strict=True)}
    log_files = int(one("select count(*) from files where path like '%.events.log'")[0])
    values: dict[str, Any] = {
        "cart_event_log_replay_total": carts - long_carts,
        "cart_event_log_replay_failures_total": sum(count[o] for o in FAILURE_OUTCOMES),
        "cart_event_log_mutation_errors_total": sum(count[o] for o in MUTATION_ERROR_OUTCOMES),
        "cart_event_log_unknown_types_total": 0,
        "cartforensics_promised_unknown_types_total": count["unknown_type"],
        "cart_event_log_appends_total": appends,
        "cart_event_log_bytes_written_total": written,
        "cart_event_log_files_existing": log_files,
        "cart_event_log_last_append_unix": 0.0 if ts_max is None else float(ts_max) / 1e9,
    }
    return FleetCounts(
        lines=lines, carts=carts, applied_go=applied_go, applied_lenient=applied_lenient,
        lost=lost, carts_losing=carts_losing, freq=freq, outcomes=outcomes, by_type=by_type,
        by_cart=by_cart, rates=rates_all, rates_by_type=rates_type, lost_table=lost_table,
        unknown=unknown, metrics=metrics_frame(values, "go"))


def _lines_relation(con: Any) -> tuple[str, str]:
    """(relation, expression of its ts in ns since the epoch) of the lines on a cf.sql
    connection: a dataset's stored lines with their exact ``ts_ns`` (the ``events`` view
    makes a timestamp of it for each line, which the counts would turn back), else
    ``events``."""
    import duckdb

    try:
        con.execute("select ts_ns, type, newline, length from _cf_stored_events limit 0")
    except duckdb.Error:
        return "events", "epoch_ns(ts)"
    return "_cf_stored_events", "ts_ns"


@dataclass
class FleetReport:
    """What :func:`fleet_report` aggregated: ``counts`` (:class:`FleetCounts`), ``impact``
    (:func:`~cartforensics.analysis.impact.cart_impact`'s rows, every cart in replay order)
    and ``per_cart`` (the ``top`` carts that lost the most lines, ties in replay order: the
    report's table, with both final states' items, totals and the writer's order)."""

    counts: FleetCounts
    impact: pd.DataFrame
    per_cart: pd.DataFrame


def fleet_report(src: Any, freq: str | None = None, top: int = 30) -> FleetReport:
    """The report's fleet-wide numbers from a converted dataset (or logs, replayed on the way
    in), aggregated by DuckDB where the data lies: :func:`fleet_counts`, the impact from the
    ``carts/`` fragments' stored final states (:func:`~cartforensics.analysis.impact.impact_sql`)
    and the per-cart table. Equal to what the report's chunks count from the replays.

    >>> r = fleet_report("sample_data", freq="1D", top=3)
    >>> r.counts.lost, int(r.impact["value_missing"].sum()), r.per_cart["lost"].tolist()
    (793, 27722260, [16, 16, 14])
    """
    from cartforensics.analysis.impact import IMPACT_COLUMNS, ITEM_COLUMNS, impact_sql
    from cartforensics.analysis.sql import sql
    from cartforensics.io.sources import DatasetSource, resolve_source

    source = resolve_source(src)
    con = sql(source)
    try:
        counts = _fleet_counts(con, freq, own=True)
        by_cart = counts.by_cart
        with_lines = set(by_cart.index)
        dataset = isinstance(source, DatasetSource)
        files = source.files() if dataset else \
            con.sql("select cart_id, lines from files").df().to_dict("records")
        # replay order: the files' carts (with lines, or empty), then the lines' own
        order = list(dict.fromkeys(
            [f["cart_id"] for f in files if f["cart_id"] in with_lines or not f.get("lines")]
            + sorted(with_lines)))
        con.register("_cf_order", pa.table({
            "cart_id": pa.array(order, pa.string()),
            "ord": pa.array(np.arange(len(order), dtype=np.int64))}))
        parts = [impact_sql(con, states, "_cf_order") for states in
                 (_final_states(con, source.root) if dataset else ["_cf_states"])]
    finally:
        con.close()
    at = pd.Series(np.arange(len(order)), index=pd.Index(order, dtype=object))
    parts = [p for p in parts if len(p)]
    rows = parts[0] if len(parts) == 1 else \
        pd.DataFrame.from_records([], columns=[*IMPACT_COLUMNS, *ITEM_COLUMNS]) if not parts \
        else pd.concat(parts, ignore_index=True)
    if len(parts) > 1:  # the batches' rows in replay order
        rows = rows.iloc[np.argsort(at.reindex(rows["cart_id"].astype(object)).to_numpy(),
                                    kind="stable")].reset_index(drop=True)
    losing = by_cart[by_cart["lost"] > 0]
    pick = np.lexsort((at.reindex(losing.index.astype(object)).to_numpy(),
                       -losing["lost"].to_numpy()))[:top]
    ranked = [str(c) for c in losing.index[pick]]
    states = rows.set_index("cart_id").loc[ranked] if ranked else rows.iloc[:0]
    per_cart = pd.DataFrame([{
        "cart_id": str(c), "lines": int(by_cart.at[c, "lines"]),
        "applied_go": int(by_cart.at[c, "go_applied"]),
        "applied_lenient": int(by_cart.at[c, "lenient_applied"]),
        "lost": int(by_cart.at[c, "lost"]),
        "items_go": int(states.at[c, "items_go"]),
        "items_lenient": int(states.at[c, "items_lenient"]),
        "total_go": int(states.at[c, "value_go"]),
        "total_lenient": int(states.at[c, "value_lenient"]),
        "order_lenient": str(states.at[c, "order_lenient"]),
    } for c in ranked])
    return FleetReport(counts, rows[list(IMPACT_COLUMNS)], per_cart)


_STATES_BATCH = 4 << 20  # bytes of carts/ fragments (JSON, about 10x that read) per query


def _final_states(con: Any, root: Path) -> Iterator[str]:
    """Views on ``con`` (cf.sql's, over a dataset) of the carts' final states (each cart's
    last file's, as its ``_cf_states``), a few ``carts/`` fragments at a time: the states
    are kB per cart, never all in memory at once."""
    from cartforensics.io.dataset import CARTS_SCHEMA

    con.execute("create temp table _cf_last as select cart_id, max(source) as source "
                "from _cf_stored_carts group by cart_id")
    batch: list[Path] = []
    size = 0
    frags = fragment_files(root, CARTS_DIR)
    for k, frag in enumerate(frags):
        batch.append(frag)
        size += frag.stat().st_size
        if size < _STATES_BATCH and k + 1 < len(frags):
            continue
        name = f"_cf_final_{k}"
        parquet_view(con, name + "_rows", batch, CARTS_SCHEMA, temporary=True)
        con.execute(f"""
            create temp view {name} as
            select s.cart_id, s.state_go, s.state_lenient from {name}_rows s
            semi join _cf_last l on s.cart_id = l.cart_id and s.source = l.source""")
        yield name
        batch, size = [], 0
