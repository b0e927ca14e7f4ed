"""Replay cart event logs line by line, exactly as the service's ``ReplayCartEvents`` does.

>>> r = replay("sample_data", mode="go")                       # doctest: +SKIP
>>> r.outcomes.groupby("outcome").size()                       # doctest: +SKIP
>>> r.final_state("cart-1001")["items"]                        # doctest: +SKIP
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from cartforensics.go.bufio import go_token
from cartforensics.go.envelope import decode_envelope, decode_ts_value
from cartforensics.go.json import go_quote
from cartforensics.go.time import ZERO_TIME_TEXT
from cartforensics.go.version import GoSemantics, semantics
from cartforensics.io.logs import Source, first_appearance
from cartforensics.io.sources import read_events
from cartforensics.model.cart import CartState, HandlerError, empty_cart, same_value, state_to_json
from cartforensics.model.engine import CompiledCore, Engine, EngineName, core
from cartforensics.model.registry import MutationType, Registry, default_registry
from cartforensics.vocab import (
    APPLIED,
    APPLY_ERROR,
    MALFORMED,
    MODES,
    NOT_REACHED,
    OUTCOMES,
    PAYLOAD_ERROR,
    PROMISED_UNKNOWN_METRIC,
    TOO_LONG,
    TOO_LONG_ERROR,
    UNKNOWN_TYPE,
    Mode,
)

METRIC_NAMES = (
    "cart_event_log_replay_total",
    "cart_event_log_replay_failures_total",
    "cart_event_log_mutation_errors_total",
    "cart_event_log_unknown_types_total",
)


_PIECE = 1 << 16  # rows renumbered at a time

# a cart's state is kept every CHECKPOINT_EVERY lines at least (more apart in large carts:
# see _replay_core.checkpoint_due) and after its last line; points between are rebuilt
CHECKPOINT_EVERY = 64


@dataclass(frozen=True)
class _CartRun:
    """One cart's replay: where its lines sit, and states at checkpoints (no state per line)."""

    cart_id: str
    rows: np.ndarray  # positions in the events frame, in file order
    ts_ns: np.ndarray  # int64 ns; NaT as min int64; readable times beyond ns range clamped
    engine: EngineName  # the core that replayed this cart (and rebuilds its points)
    # checkpoints[j] = the cart after its first checkpoint_lines[j] lines; final = after its
    # last line: CartState values on the reference core, the compiled core's own snapshots on
    # it (never changed once stored; ``_state`` turns one into a CartState)
    checkpoint_lines: np.ndarray
    checkpoints: tuple[Any, ...]
    final: Any


@dataclass(frozen=True)
class CartStart:
    """Where a cart's lines in a replay begin when its earlier lines were replayed before (a
    log replayed in pieces, see :meth:`Replay.cart_end`): the cart they left (``state``, its
    ``last_change`` the lastChange they set) and the too-long line among them that stopped
    the scanner (None: none did)."""

    state: CartState
    stop_line: int | None = None


def _catalog_from(catalog: Any) -> Mapping[str, Mapping[str, Any]] | None:
    if catalog is None:
        return None
    if isinstance(catalog, pd.DataFrame):
        if "sku" not in catalog.columns:
            raise ValueError("catalog DataFrame needs a 'sku' column (and AddItem fields)")
        out: dict[str, dict[str, Any]] = {}
        for rec in catalog.to_dict("records"):
            sku = str(rec["sku"])
            out[sku] = {k: v for k, v in rec.items() if not _is_missing(v)}
        return out
    if isinstance(catalog, Mapping):
        return catalog
    raise TypeError("catalog must be a DataFrame with a 'sku' column or a mapping sku -> fields")


def _is_missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


class PreparedEvents:
    """What replaying one events frame computes the same in either mode (the frame without
    attrs, ts placed in time, the payload bytes and row kinds the compiled core reads, the
    carts' rows and times): each part made by the first replay of the frame that needs it
    and taken as it is by the next (:func:`replay_modes`: both modes of one frame).

    >>> from cartforensics.io.logs import read_events_bytes, to_frame
    >>> df = to_frame(read_events_bytes([("c", b'{"ts":"2024-01-01T00:00:00Z"}\\n')]))
    >>> go, lenient = replay_modes(df)
    >>> go._prepared is lenient._prepared, go.cart_ids
    (True, ['c'])
    """

    def __init__(self, events: pd.DataFrame, sem: GoSemantics, registry: Registry) -> None:
        self.events = events
        self.semantics = sem
        self.registry = registry
        self.files = list(events.attrs.get("files", []))
        # pandas deep-copies attrs on every column access: work on a view without them
        self.plain = _without_attrs(events)
        self.raw = self.plain["raw"]
        self.kinds = self.plain["ts_kind"].array
        self.lines = np.ascontiguousarray(self.plain["line"].to_numpy(), dtype=np.int64)
        self.ts_key: np.ndarray | None = None  # Replay._ts_key of the frame
        # (payload buffers, row kinds) of the compiled core bound to the frame
        self.compiled_inputs: tuple[Any, np.ndarray] | None = None
        # carts in replay order, each (cart id, its first and end position in ``order``);
        # order: the rows grouped by cart (int32 when the rows fit); ts: each cart's times
        self.carts: list[tuple[str, int, int]] | None = None
        self.order: np.ndarray | None = None
        self.cart_ts: list[np.ndarray] | None = None
        self._raw_buffers: tuple[np.ndarray, np.ndarray] | None | bool = False  # False: not made

    def fits(self, events: pd.DataFrame, sem: GoSemantics, registry: Registry) -> bool:
        """It was prepared from this very frame, toolchain and registry."""
        return events is self.events and sem == self.semantics and registry is self.registry

    def raw_line(self, row: int) -> bytes:
        """The raw bytes of one row, straight from the Arrow buffers when the column has
        them in one piece (no pandas scalar lookup: a lastChange per cart)."""
        if self._raw_buffers is False:
            self._raw_buffers = _binary_buffers(self.raw)
        if self._raw_buffers is None:
            return bytes(self.raw.array[row])
        data, offsets = self._raw_buffers  # type: ignore[misc]
        return data[offsets[row] : offsets[row + 1]].tobytes()


class Replay:
    """The result of :func:`replay`: outcomes per line, states at any line (rebuilt from
    checkpoints), metrics. ``engine`` says which core ran it (docs/performance.md)."""

    def __init__(self, events: pd.DataFrame, mode: Mode, registry: Registry, catalog: Any,
                 sem: GoSemantics | None = None, engine: str | None = None,
                 starts: Mapping[str, CartStart] | None = None,
                 prepared: PreparedEvents | None = None):
        self.events = events
        # carts whose lines go on from a cart replayed before (their states, history and
        # skip-a-line replays are not rebuilt from there: see _unstarted)
        self._starts: dict[str, CartStart] = dict(starts or {})
        self.mode: Mode = mode
        #: the toolchain replayed as (:mod:`cartforensics.go.version`)
        self.semantics: GoSemantics = semantics(sem)
        # which core replays each cart (model/engine.py)
        self._engine = Engine(engine)
        #: the core asked for: "compiled" (a cart it cannot replay exactly runs on the
        #: reference, see ``carts_on_reference``) or "reference"
        self.engine: EngineName = self._engine.name
        self.registry = registry
        # what the compiled core decodes payloads with (registry[t].decode(payload)): the
        # registry itself for the default toolchain, else its decoders bound to this one
        self._decoders: Any = (registry if self.semantics == semantics(None)
                               else _ToolchainDecoders(registry, self.semantics))
        self.catalog = _catalog_from(catalog)
        self._runs: dict[str, _CartRun] = {}
        self._last_change_cache: dict[int, str] = {}
        self._payload_array: Any = None  # the payload column, fetched once (lastChange)
        # what does not depend on the mode, shared with the frame's other replays
        if prepared is None or not prepared.fits(events, self.semantics, registry):
            prepared = PreparedEvents(events, self.semantics, registry)
        self._prepared = prepared
        self._files = prepared.files
        self._plain = prepared.plain
        self._raw = prepared.raw
        self._kinds = prepared.kinds
        # the run makes millions of small acyclic objects (states are kept): the cyclic
        # collector would scan them again and again for nothing, so it waits until the end
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._run()
        finally:
            if collecting:
                gc.enable()

    # -- the engine --------------------------------------------------------------------------
    def _run(self) -> None:
        ev = self._plain
        p = self._prepared
        n = len(ev)
        self._codes = codes = np.zeros(n, dtype=np.int8)
        # per row, what the compiled core says of its error (see core.Replayer); the texts of
        # rows replayed on the reference core are in _errors
        self._error_ids = np.zeros(n, dtype=np.int64)
        self._errors: dict[int, str | None] = {}
        self._last_applied = np.full(n, -1, dtype=np.int64)  # per row: last applied row
        self._changed = np.zeros(n, dtype=np.uint8)  # per row: the line changed the state
        err_series = ev["envelope_error" if self.mode == "go" else "lenient_error"]
        too_long = ev["too_long"].to_numpy() if self.mode == "go" else np.zeros(n, dtype=bool)
        too_long = np.ascontiguousarray(too_long, dtype=bool).view(np.uint8)
        lines = p.lines
        if p.ts_key is None:
            p.ts_key = self._ts_key(_ts_ns(ev["ts"]))
        compiled = self._engine.bind(
            ev["payload"], ev["type"], self.registry, err_series, too_long, lines,
            self._decoders, self.catalog, codes, self._error_ids, self._last_applied,
            self._changed, CHECKPOINT_EVERY, inputs=p.compiled_inputs,
        )
        if compiled and p.compiled_inputs is None:
            p.compiled_inputs = (compiled.payload_buffers, compiled.row_kind)
        # the compiled core's inputs and pool (None: every cart runs on the reference)
        self._payload_buffers = compiled.payload_buffers if compiled else None
        self._row_kind = compiled.row_kind if compiled else None
        self._pool = compiled.pool if compiled else None
        columns: tuple | None = None  # the reference core's columns, made when first needed
        #: carts the compiled engine handed to the reference core (docs/performance.md)
        self.carts_on_reference: list[str] = self._engine.carts_on_reference
        if p.carts is None:
            self._group_carts(p)
        assert p.order is not None and p.carts is not None and p.cart_ts is not None
        order = np.ascontiguousarray(p.order, dtype=np.int64)  # the core runs on int64 rows

        def reference(cid: str, rows: np.ndarray) -> tuple[Any, Any, Any]:
            nonlocal columns
            if columns is None:
                columns = (ev["type"].tolist(), ev["payload"].tolist(), err_series.tolist(),
                           too_long, lines)
            return self._reference_cart(cid, rows.tolist(), columns)

        # a cart keeps its rows as the prepared order has them (int32 when they fit)
        for (cid, lo, hi), ts in zip(p.carts, p.cart_ts, strict=True):
            start = self._starts.get(cid)
            engine, (cp_lines, checkpoints, final) = self._engine.run_cart(
                cid, order[lo:hi], reference,
                *((start.state, start.stop_line) if start else ()))
            if start is not None:  # the state at line 0 is the start
                cp_lines, checkpoints = [0, *cp_lines], [start.state, *checkpoints]
            self._runs[cid] = _CartRun(
                cid, p.order[lo:hi], ts, engine, np.asarray(cp_lines, dtype=np.int64),
                tuple(checkpoints), final,
            )
        # what is kept of the run, in as few bytes as it takes: the per-row arrays only the
        # run needed let go, rows (and -1) as int32 (the core ran on int64 ones), the error
        # as an index into a table of distinct texts (the outcomes frame is built from these
        # when asked)
        if compiled:
            compiled.release_run()
        if n < (1 << 31):
            self._last_applied = self._last_applied.astype(np.int32)
        order = None  # (the int64 rows the core ran on)
        self._error_index, self._error_texts = self._error_table(err_series)
        del self._errors, self._error_ids
        self._outcomes: pd.DataFrame | None = None

    def _group_carts(self, p: PreparedEvents) -> None:
        """``p``'s carts, order and carts' times: carts in order of first appearance (files
        with no lines too); a cart's rows in the order given, which read_events makes file
        order."""
        n = len(self._plain)
        codes_f, uniques = _appearance_codes(self._plain["cart_id"])
        order = np.argsort(codes_f, kind="stable")
        order = order.astype(np.int32 if n < (1 << 31) else np.int64)
        counts = np.bincount(codes_f, minlength=len(uniques)) if n else np.zeros(0, int)
        bounds = np.r_[0, np.cumsum(counts)].tolist()
        index = {str(c): b for b, c in enumerate(uniques)}
        # an empty file is still a cart the service replays (replay_total +1, empty state)
        files = self._files
        carts = list(dict.fromkeys(
            [f["cart_id"] for f in files if f["cart_id"] in index or f["lines"] == 0]
            + list(index)
        ))
        ts_key = p.ts_key
        assert ts_key is not None
        p.carts, p.cart_ts = [], []
        for cid in carts:
            b = index.get(cid)
            lo, hi = (bounds[b], bounds[b + 1]) if b is not None else (0, 0)
            p.carts.append((cid, lo, hi))
            p.cart_ts.append(_rows_of(ts_key, order[lo:hi]))
        p.order = order

    @property
    def outcomes(self) -> pd.DataFrame:
        """One row per physical line (cart_id, line, ts, type, outcome, error), in the order of
        ``events``; built on first use from the per-row codes the replay keeps (counts,
        :meth:`summary`, :meth:`metrics` and :meth:`outcome_codes` never build it)."""
        if self._outcomes is None:
            self._outcomes = self._outcomes_frame()
        return self._outcomes

    def _outcomes_frame(self, rows: np.ndarray | None = None) -> pd.DataFrame:
        """:attr:`outcomes`, or its ``rows`` only (positions, in that order)."""
        ev = self._plain if rows is None else self._plain.iloc[rows]
        codes = self._codes if rows is None else self._codes[rows]
        return pd.DataFrame(
            {
                "cart_id": _as_str_column(ev["cart_id"]),
                "line": ev["line"].to_numpy(),
                "ts": ev["ts"].array,
                "type": ev["type"].array,
                "outcome": pd.Categorical.from_codes(codes, categories=OUTCOMES),
                "error": self._error_column(rows),
            },
            copy=False,  # the events' own columns, not a copy of each per replay
        )

    def _error_column(self, rows: np.ndarray | None = None) -> Any:
        """The ``error`` column (of ``rows`` only, when given): the table of distinct texts
        taken by each row's index, decoded to the column's string type."""
        index = self._error_index if rows is None else self._error_index[rows]
        n = len(index)
        if not n:
            return pd.array([], dtype="str")
        if not self._error_texts:  # (a list of None would be converted one by one)
            return pd.array(pa.nulls(n, type=pa.large_string()), dtype="str")
        dictionary = pa.array(self._error_texts, type=pa.large_string())
        arr = pa.DictionaryArray.from_arrays(pa.array(index, mask=index < 0), dictionary)
        return pd.array(arr.cast(pa.large_string()), dtype="str")

    def _error_texts_of(self, rows: np.ndarray) -> list[str | None]:
        """The error text (None: no error) of each of ``rows``."""
        texts = self._error_texts
        return [texts[i] if i >= 0 else None for i in self._error_index[rows].tolist()]

    def _error_table(self, err_series: pd.Series) -> tuple[np.ndarray, list[str]]:
        """(per row, the index of its error text in the list of distinct texts, -1 for no
        error, in the smallest int type that holds it; that list): each distinct text made
        once (the compiled core gives codes), in order of first appearance."""
        n = len(self._codes)
        codes = self._codes
        ids = self._error_ids
        index = np.full(n, -1, dtype=np.int32 if n < (1 << 31) else np.int64)
        texts: list[str] = []

        def put(mask: np.ndarray, table: list, where: np.ndarray) -> None:
            base = len(texts)
            texts.extend(table)
            index[mask] = where.astype(index.dtype, copy=False) + base  # (never int8's sum)

        on_ref = np.zeros(n, dtype=bool)
        if self._errors:
            on_ref[np.fromiter(self._errors, dtype=np.int64, count=len(self._errors))] = True
        core_rows = ~on_ref
        m = core_rows & (codes == APPLY_ERROR)
        if m.any():
            put(m, list(core.ERROR_TEXTS[1:]), ids[m] - 1)
        m = core_rows & (codes == PAYLOAD_ERROR)
        if m.any():
            put(m, list(self._pool.payload_errors[1:]), ids[m] - 1)
        m = core_rows & (codes == TOO_LONG)
        if m.any():
            put(m, [TOO_LONG_ERROR], np.zeros(int(m.sum()), dtype=np.int64))
        m = core_rows & (codes == NOT_REACHED)
        if m.any():
            stops, where = np.unique(ids[m], return_inverse=True)
            put(m, [f"not reached: the scanner stopped at line {s}" for s in stops.tolist()],
                where)
        m = core_rows & (codes == MALFORMED)
        if m.any():  # the envelope errors: a few texts, each made once
            where, uniq = _codes_of(err_series, m)
            put(m, list(uniq), where)
        m = core_rows & (codes == UNKNOWN_TYPE)
        if m.any():
            where, uniq = _codes_of(self._plain["type"], m)
            put(m, [f"unknown mutation type: {go_quote(t if isinstance(t, str) else '')}"
                    for t in uniq], where)
        if self._errors:
            rows = np.fromiter(self._errors, dtype=np.int64, count=len(self._errors))
            values = list(self._errors.values())
            base = len(texts)
            texts.extend(values)
            index[rows] = base + np.arange(len(values))
            index[rows[[v is None for v in values]]] = -1
        # each text once (the reference core's are one per row), numbered by first appearance
        order = first_appearance(index, len(texts))
        same, distinct = pd.factorize(pd.Series([texts[i] for i in order.tolist()],
                                                dtype=object), sort=False)
        remap = np.full(len(texts) + 1, -1, dtype=_index_type(len(distinct)))  # [-1]: none
        remap[order] = same
        compact = np.empty(n, dtype=remap.dtype)
        for a in range(0, n, _PIECE):
            compact[a : a + _PIECE] = remap[index[a : a + _PIECE]]
        return compact, list(distinct)

    def _reference_cart(
        self, cid: str, rows: list[int], columns: tuple
    ) -> tuple[list[int], list[CartState], CartState]:
        """The pure-Python core: one cart's lines through the registry's decoders and
        handlers, exactly as the service's loop; fills the per-row arrays and returns the
        checkpoint states and the final state."""
        types, payloads, err_col, too_long, lines = columns
        registry = self.registry
        catalog = self.catalog
        outcome = self._codes
        error = self._errors
        start = self._starts.get(cid)
        state = empty_cart(cid) if start is None else start.state
        checkpoints: list[CartState] = []
        cp_lines: list[int] = []
        last_applied = -1
        stop_line = None if start is None else start.stop_line
        for pos, r in enumerate(rows, 1):
            code, text, new, stop_line = _reference_line(
                registry, catalog, self.semantics, state, stop_line, too_long[r], lines[r],
                err_col[r], types[r], payloads[r])
            outcome[r] = code
            error[r] = text
            self._changed[r] = new is not state
            if code == APPLIED:
                state = new
                last_applied = r
            self._last_applied[r] = last_applied
            since = pos - (cp_lines[-1] if cp_lines else 0)
            if since >= CHECKPOINT_EVERY:  # states share their items: cheap to keep
                checkpoints.append(state)
                cp_lines.append(pos)
        return cp_lines, checkpoints, state

    def _advance(self, run: _CartRun, state: CartState, start: int, stop: int) -> CartState:
        """The state after the cart's lines ``start..stop-1`` (0-based), from ``state``, the
        state before line ``start``: only applied lines change a state, so only they are
        decoded and applied again."""
        rows = run.rows[start:stop]
        rows = rows[self._codes[rows] == APPLIED]
        if not len(rows):
            return self._state(run, state)
        compiled = self._engine.compiled_for(run.engine)
        if compiled is not None:
            return compiled.advance(state, rows)
        return self._apply_reference_rows(state, rows)

    def _apply_reference_rows(self, state: CartState, rows: np.ndarray) -> CartState:
        """``state`` after the events ``rows`` on the reference core, each known to apply."""
        types = self._plain["type"].iloc[rows].tolist()
        payloads = self._plain["payload"].iloc[rows].tolist()
        for t, p in zip(types, payloads, strict=True):
            _code, _text, state = _apply_reference(self.registry[t], state, p, self.catalog,
                                                   self.semantics)
        return state

    @staticmethod
    def _state(run: _CartRun, snapshot: Any) -> CartState:
        return snapshot if isinstance(snapshot, CartState) else core.to_state(snapshot)

    def _state_after(self, run: _CartRun, line: int) -> CartState:
        """The state after the cart's first ``line`` lines (0 <= line <= its lines)."""
        if line >= len(run.rows):
            return self._state(run, run.final)
        j = int(np.searchsorted(run.checkpoint_lines, line, side="right")) - 1
        if j < 0:
            return self._advance(run, empty_cart(run.cart_id), 0, line)
        return self._advance(run, run.checkpoints[j], int(run.checkpoint_lines[j]), line)

    def _ts_key(self, ts: np.ndarray) -> np.ndarray:
        """ts of every row, for placing lines in time: a readable time outside the ns range
        (years before 1678 or after 2261) is clamped to the range's ends instead of being
        unreadable."""
        nat = np.iinfo(np.int64).min
        # only a line whose ts is a string or a number can hold a time pandas cannot
        kinds = pd.Series(self._kinds)
        if isinstance(kinds.dtype, pd.CategoricalDtype):  # by its codes: no row copied
            timed = np.flatnonzero(kinds.cat.categories.isin(["string", "number"]))
            codes = np.asarray(kinds.cat.codes.to_numpy())
            missing = np.flatnonzero((ts == nat) & np.isin(codes, timed))
        else:
            missing = np.flatnonzero(ts == nat)
            missing = missing[kinds.iloc[missing].isin(["string", "number"]).to_numpy()]
        if not len(missing):
            return ts
        raw = self._raw
        ts = ts.copy()
        for j in missing.tolist():
            data = bytes(raw.iloc[j])
            env = decode_envelope(go_token(data, 0, len(data)), lenient=True,
                                  sem=self.semantics)
            if env.ts is not None:
                ts[j] = np.iinfo(np.int64).max if env.ts.unix_sec > 0 else nat + 1
        return ts

    # -- states ------------------------------------------------------------------------------
    @property
    def cart_ids(self) -> list[str]:
        """Carts in replay order."""
        return list(self._runs)

    def rows_of(self, cart_id: str) -> list[int]:
        """Row positions (in ``events`` and ``outcomes``) of a cart's lines, in line order."""
        return self._run_of(cart_id).rows.tolist()

    def _run_of(self, cart_id: str) -> _CartRun:
        try:
            return self._runs[cart_id]
        except KeyError:
            raise KeyError(f"no cart {cart_id!r} in this replay") from None

    def _last_change_text(self, row: int | None) -> str | None:
        if row is None:
            return None
        hit = self._last_change_cache.get(row)
        if hit is None:
            raw = self._prepared.raw_line(row)
            token = go_token(raw, 0, len(raw))
            lenient = self.mode == "lenient"
            value = _writer_ts(token, self._payload_of(row))
            pair = (None if value is None
                    else decode_ts_value(value, lenient=lenient, sem=self.semantics))
            if pair is None:
                ts = decode_envelope(token, lenient=lenient, sem=self.semantics).ts
            else:
                ts = pair[0]
            hit = ts.rfc3339nano() if ts is not None else ZERO_TIME_TEXT
            self._last_change_cache[row] = hit
        return hit

    def _payload_of(self, row: int) -> str | bytes | None:
        """A row's payload: its UTF-8 bytes from the compiled core's buffers when it has
        them, else the column's value."""
        if self._payload_buffers is not None:
            data, offsets, valid = self._payload_buffers
            return data[offsets[row] : offsets[row + 1]].tobytes() if valid[row] else None
        if self._payload_array is None:
            self._payload_array = self._plain["payload"].array
        return self._payload_array[row]

    def state_json(self, state: CartState, last_row: int | None = None) -> dict[str, Any]:
        """SPEC §5's state JSON of a state; ``last_row`` is the events row of the last applied
        line, whose ts is lastChange (None: the state's own ``last_change`` text, if any)."""
        out = state_to_json(state)
        if last_row is not None:
            out["lastChange"] = self._last_change_text(last_row if last_row >= 0 else None)
        return out

    def _json_after(self, cart_id: str, line: int) -> dict[str, Any]:
        run = self._run_of(cart_id)
        start = self._starts.get(cart_id)
        if line <= 0:
            return self.state_json(empty_cart(cart_id) if start is None else start.state,
                                   None if start else -1)
        if line > len(run.rows):
            raise IndexError(f"cart {cart_id!r} has {len(run.rows)} lines, not {line}")
        last_row = int(self._last_applied[run.rows[line - 1]])
        if line >= len(run.rows) and not isinstance(run.final, CartState):
            out = core.to_json(run.final)  # the compiled core's final cart, no CartState
        else:
            out = self.state_json(self._state_after(run, line), last_row)
        out["lastChange"] = (self._last_change_text(last_row) if last_row >= 0
                             else start.state.last_change if start else None)
        return out

    def cart_end(self, cart_id: str) -> CartStart:
        """Where the cart's lines leave it: the start of its next lines replayed apart
        (``replay(next_events, starts={cart_id: r.cart_end(cart_id)})``), as if they had
        followed in these events.

        >>> r = replay("sample_data/cart-1001.events.log")
        >>> r.cart_end("cart-1001").state.last_change == r.final_state("cart-1001")["lastChange"]
        True
        """
        run = self._run_of(cart_id)
        start = self._starts.get(cart_id)
        stop_line = None if start is None else start.stop_line
        if stop_line is None:
            hit = np.flatnonzero(self._codes[run.rows] == TOO_LONG)
            if len(hit):
                stop_line = int(self._plain["line"].iloc[int(run.rows[hit[0]])])
        state = self._state(run, run.final)
        return CartStart(state.with_last_change(self.final_state(cart_id)["lastChange"]),
                         stop_line)

    def _unstarted(self, cart_id: str) -> None:
        """Raise for a cart whose lines went on from a start: its states are only rebuilt
        from there (state_at, final_state), not line by line from the empty cart."""
        if cart_id in self._starts:
            raise ValueError(f"cart {cart_id!r} was replayed on from a start (starts=): "
                             "replay all its lines together for this")

    def compiled_final(self, cart_id: str, line: int) -> tuple[Any, str | None] | None:
        """(the compiled core's cart, its lastChange text) when the state after ``line``
        lines is the cart's final one and the compiled core holds it (what
        ``_replay_core.go_json_states`` writes without a dict); None otherwise (then
        :meth:`state_at`).

        >>> r = replay("sample_data")                                  # doctest: +SKIP
        >>> r.compiled_final("cart-1001", 0) is None                   # doctest: +SKIP
        True
        """
        run = self._run_of(cart_id)
        if line != len(run.rows) or not line or isinstance(run.final, CartState):
            return None
        last_row = int(self._last_applied[run.rows[line - 1]])
        return run.final, self._last_change_text(last_row if last_row >= 0 else None)

    def final_state(self, cart_id: str) -> dict[str, Any]:
        """The cart as the replay left it."""
        return self._json_after(cart_id, len(self._run_of(cart_id).rows))

    def line_at(self, cart_id: str, ts: Any) -> int:
        """How many lines of the cart are in the longest prefix whose ts are all ≤ ``ts``
        (a line with no readable ts goes with the line before it)."""
        return _line_at(self._run_of(cart_id).ts_ns, ts)

    def state_at(self, cart_id: str, ts: Any = None, line: int | None = None) -> dict[str, Any]:
        """The state after ``line`` lines (exact), or at time ``ts`` (SPEC §6)."""
        if (ts is None) == (line is None):
            raise ValueError("give exactly one of ts= or line=")
        n = self.line_at(cart_id, ts) if line is None else int(line)
        return self._json_after(cart_id, n)

    def applied_states(self, cart_id: str) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(position, state)`` after each line of the cart that applied, in line order, in
        one forward pass: each state is the one before with that line applied again by the
        core that replayed the cart, so ``state`` equals ``state_at(cart_id,
        line=position)`` without rebuilding each one from a checkpoint. An item or delivery
        the line left as it was may be the very dict of the state before: read the states,
        never change them.

        >>> r = replay("sample_data")                                  # doctest: +SKIP
        >>> next(r.applied_states("cart-1001"))[0]                     # doctest: +SKIP
        1
        """
        self._unstarted(cart_id)
        run = self._run_of(cart_id)
        at = np.flatnonzero(self._codes[run.rows] == APPLIED)
        if not len(at):
            return
        rows = np.ascontiguousarray(run.rows[at], dtype=np.int64)
        compiled = self._engine.compiled_for(run.engine)
        if compiled is None:
            state = last = empty_cart(cart_id)
            last_out = self.state_json(state)
            types = self._plain["type"].iloc[rows].tolist()
            payloads = self._plain["payload"].iloc[rows].tolist()
            for k, r in enumerate(rows.tolist()):
                code, _text, state = _apply_reference(self.registry[types[k]], state,
                                                      payloads[k], self.catalog,
                                                      self.semantics)
                if code != APPLIED:
                    raise RuntimeError(f"a line of cart {cart_id!r} that applied did not "
                                       "apply again")
                out = self.state_json(state, r)
                # an item or delivery the handler kept (the same object) is the dict the
                # state before holds
                for name in ("items", "deliveries"):
                    new, old = getattr(state, name), getattr(last, name)
                    for j in range(min(len(new), len(old))):
                        if new[j] is old[j]:
                            out[name][j] = last_out[name][j]
                last, last_out = state, out
                yield int(at[k]) + 1, out
            return
        step = _CompiledSteps(compiled, rows, cart_id)
        before: dict[str, Any] = {"items": [], "deliveries": []}
        for k, r in enumerate(rows.tolist()):
            out = core.to_json(step.next())
            out["lastChange"] = self._last_change_text(r)
            # an item or delivery the line left as it was is the dict the state before
            # holds (equal in every value and its type: the core's fields each have one
            # type), so that what reads the states one after the other can pass it over
            for name in ("items", "deliveries"):
                new, old = out[name], before[name]
                for j in range(min(len(new), len(old))):
                    if new[j] == old[j]:
                        new[j] = old[j]
            before = out
            yield int(at[k]) + 1, out

    def history(self, cart_id: str) -> pd.DataFrame:
        """One row per line: outcome, error and a summary of the state after it."""
        self._unstarted(cart_id)
        run = self._run_of(cart_id)
        oc = self._outcomes_frame(run.rows)
        summaries = self._summaries(cart_id, run.engine, run.rows, self._codes[run.rows])
        return _history_frame(oc, summaries, self._changed[run.rows])

    def _summaries(self, cart_id: str, engine: EngineName, rows: np.ndarray,
                   codes: np.ndarray) -> tuple[list[int], list[int], list[int], list[int]]:
        """(items, quantity, deliveries, total_price) after each of ``rows`` (a cart's
        lines, in order, from the empty cart) whose outcomes are ``codes``, on the core
        ``engine`` names."""
        compiled = self._engine.compiled_for(engine)
        if compiled is not None:
            return compiled.summaries(cart_id, rows, codes)
        types = self._plain["type"].iloc[rows].tolist()
        payloads = self._plain["payload"].iloc[rows].tolist()
        n_items: list[int] = []
        qty: list[int] = []
        n_del: list[int] = []
        total: list[int] = []
        state = empty_cart(cart_id)
        for pos in range(len(rows)):
            if codes[pos] == APPLIED:
                mt = self.registry[types[pos]]
                _code, _text, state = _apply_reference(mt, state, payloads[pos],
                                                       self.catalog, self.semantics)
            n_items.append(len(state.items))
            qty.append(sum(i.qty for i in state.items))
            n_del.append(len(state.deliveries))
            total.append(state.totalPrice)
        return n_items, qty, n_del, total

    def changed(self, cart_id: str) -> np.ndarray:
        """Per line of the cart (in line order): whether it changed the state, as
        :meth:`history`'s ``changed`` column, without rebuilding any state.

        >>> r.changed("cart-1001")[:3]                 # doctest: +SKIP
        array([ True,  True, False])
        """
        return self._changed[self._run_of(cart_id).rows].astype(bool)

    def outcome_codes(self, cart_id: str) -> np.ndarray:
        """Per line of the cart: its outcome as an index into :data:`OUTCOMES` (int8), as
        ``outcomes["outcome"]`` has it, without touching the outcomes frame."""
        return self._codes[self._run_of(cart_id).rows].copy()

    def without(self, cart_id: str, lines: Any) -> ReplayWithout:
        """The cart replayed as if the lines at positions ``lines`` (1 … its lines, as
        :meth:`state_at`'s ``line=`` counts them) had never been written: the same as
        replaying the events without those rows, but only the lines from the first one left
        out are replayed again, from the state this replay kept before it (docs/model.md,
        docs/performance.md). The result answers like a replay of that one cart.

        >>> r = replay("sample_data")                            # doctest: +SKIP
        >>> w = r.without("cart-1001", [3])                      # doctest: +SKIP
        >>> w.outcomes["outcome"].tolist()[:3]                   # doctest: +SKIP
        ['applied', 'applied', 'applied']
        >>> w.state_at("cart-1001", line=2) == r.state_at("cart-1001", line=2)  # doctest: +SKIP
        True
        """
        self._unstarted(cart_id)
        collecting = gc.isenabled()  # as in __init__: many small acyclic objects, no cycles
        gc.disable()
        try:
            return ReplayWithout(self, cart_id, lines)
        finally:
            if collecting:
                gc.enable()

    def _cart_columns(self, cart_id: str) -> dict[str, Any]:
        """The per-line inputs of a cart's replay (what ``_run`` reads), in line order; the
        last few carts asked for are kept (the scrubber asks again on every skip)."""
        cache: dict[str, dict[str, Any]] = self.__dict__.setdefault("_columns_cache", {})
        hit = cache.get(cart_id)
        if hit is not None:
            return hit
        run = self._run_of(cart_id)
        rows = run.rows
        ev = self._plain
        err = ev["envelope_error" if self.mode == "go" else "lenient_error"].iloc[rows]
        too_long = (ev["too_long"].to_numpy()[rows] if self.mode == "go"
                    else np.zeros(len(rows), dtype=bool))
        hit = {
            "types": ev["type"].iloc[rows].tolist(),
            "errs": err.tolist(),
            "too_long": np.ascontiguousarray(too_long, dtype=bool).view(np.uint8),
            "lines": np.ascontiguousarray(ev["line"].to_numpy()[rows], dtype=np.int64),
            "kinds": (np.ascontiguousarray(self._row_kind[rows])
                      if self._row_kind is not None else None),
            "payloads": None,  # str per line: only for the reference core, when asked
            # the replay's error text per line (None: no error), as an object array
            "errors": np.empty(len(rows), dtype=object),
        }
        hit["errors"][:] = self._error_texts_of(rows)
        if len(cache) >= 4:
            cache.pop(next(iter(cache)))
        cache[cart_id] = hit
        return hit

    def _payload_texts(self, cart_id: str) -> list[Any]:
        cols = self._cart_columns(cart_id)
        if cols["payloads"] is None:
            cols["payloads"] = self._plain["payload"].iloc[self._run_of(cart_id).rows].tolist()
        return cols["payloads"]

    def _snapshot_after(self, run: _CartRun, line: int) -> Any:
        """The state after the cart's first ``line`` lines as the core that replayed it holds
        it (a kept snapshot itself when one sits there; None for the empty cart)."""
        if line <= 0:
            return None
        if line >= len(run.rows):
            return run.final
        j = int(np.searchsorted(run.checkpoint_lines, line, side="right")) - 1
        if j >= 0 and int(run.checkpoint_lines[j]) == line:
            return run.checkpoints[j]
        return self._state_after(run, line)

    def _apply_applied(self, engine: EngineName, state: Any, rows: np.ndarray, cart_id: str
                       ) -> CartState:
        """``state`` (a snapshot of ``engine``'s, or None: the empty cart) after also
        applying ``rows``, events rows every one of which is known to apply."""
        compiled = self._engine.compiled_for(engine)
        if compiled is not None:
            return compiled.apply_applied(state, rows, cart_id)
        if state is None:
            state = empty_cart(cart_id)
        if not isinstance(state, CartState):
            state = core.to_state(state)
        return self._apply_reference_rows(state, rows)

    def _reference_from(self, cart_id: str, state: CartState, rows: np.ndarray,
                        at: np.ndarray, stop_line: int | None, last: int, done: int
                        ) -> tuple[np.ndarray, list[str | None], np.ndarray, np.ndarray,
                                   list[int], list[CartState], CartState]:
        """The reference core's loop (``_reference_cart``) over ``rows`` from ``state``: the
        cart's lines at positions ``at`` (0-based, in line order), ``done`` lines before them;
        outputs per position in ``rows``: codes, errors, last applied row, changed, and the
        checkpoints (lines counted from the cart's first line) and the final state."""
        registry, catalog, sem = self.registry, self.catalog, self.semantics
        cols = self._cart_columns(cart_id)
        payloads = self._payload_texts(cart_id)
        types, errs, too_long, lines = cols["types"], cols["errs"], cols["too_long"], cols["lines"]
        m = len(rows)
        codes = np.zeros(m, dtype=np.int8)
        errors: list[str | None] = [None] * m
        last_applied = np.full(m, -1, dtype=np.int64)
        changed = np.zeros(m, dtype=np.uint8)
        checkpoints: list[CartState] = []
        cp_lines: list[int] = []
        last_cp = done
        for j, (r, k) in enumerate(zip(rows.tolist(), at.tolist(), strict=True)):
            code, text, new, stop_line = _reference_line(
                registry, catalog, sem, state, stop_line, too_long[k], lines[k], errs[k],
                types[k], payloads[k])
            codes[j] = code
            errors[j] = text
            changed[j] = new is not state
            if code == APPLIED:
                state = new
                last = r
            last_applied[j] = last
            pos = done + j + 1
            if pos - last_cp >= CHECKPOINT_EVERY:
                checkpoints.append(state)
                cp_lines.append(pos)
                last_cp = pos
        return codes, errors, last_applied, changed, cp_lines, checkpoints, state

    def diff(self, cart_id: str, a: Any, b: Any) -> dict[str, Any]:
        """What changed between two points (line numbers as int, times otherwise)."""
        sa = self._point(cart_id, a)
        sb = self._point(cart_id, b)
        return diff_states(sa, sb)

    def _point(self, cart_id: str, p: Any) -> dict[str, Any]:
        if isinstance(p, (int, np.integer)):
            return self.state_at(cart_id, line=int(p))
        return self.state_at(cart_id, ts=p)

    # -- metrics -----------------------------------------------------------------------------
    def _outcome_counts(self) -> pd.DataFrame:
        """Lines per outcome (columns, in OUTCOMES' order) of each cart (rows, in replay
        order), counted from the outcome codes of each cart's rows."""
        counts = np.zeros((len(self._runs), len(OUTCOMES)), dtype=np.int64)
        for k, run in enumerate(self._runs.values()):
            counts[k] = np.bincount(self._codes[run.rows], minlength=len(OUTCOMES))
        return pd.DataFrame(counts, columns=list(OUTCOMES),
                            index=pd.Index(list(self._runs), name="cart_id"))

    def metrics(self, by_cart: bool = False) -> pd.DataFrame | pd.Series:
        """The seed's counters as the service would have exported them for this replay, plus
        the unknown-type count its comments promised (the code never increments it)."""
        return outcome_metrics(self._outcome_counts(), by_cart)

    def cart_metrics(self, cart_id: str) -> dict[str, int]:
        """The seed's four per-cart counters by their metric names (the jsonl contract)."""
        row = self.metrics(by_cart=True).loc[cart_id]
        return {name: int(row[name]) for name in METRIC_NAMES}

    def summary(self) -> pd.DataFrame:
        """One row per cart: lines per outcome, items and total of the final state."""
        counts = self._outcome_counts()
        finals = [self._runs[c].final for c in counts.index]
        return outcome_summary(counts, [len(s.items) if isinstance(s, CartState) else s.n_items
                                        for s in finals], [s.totalPrice for s in finals])

    # -- the investigation (cartforensics.model.blame, through the public API above) --------
    def blame(self, cart_id: str, line: int | None = None) -> pd.DataFrame:
        """One row per leaf field of the state after line ``line`` (default: the final
        state): ``path``, ``value`` and the ``line``, ``ts``, ``type`` that last changed it."""
        from cartforensics.model.blame import blame

        return blame(self, cart_id, line)

    def context(self, cart_id: str, line: int, minutes: float = 5) -> pd.DataFrame:
        """The other carts' lines within ``minutes`` of that line's ts, ordered by time."""
        from cartforensics.model.blame import context

        return context(self, cart_id, line, minutes)


class ReplayWithout:
    """One cart of a :class:`Replay` replayed as if some of its lines had never been written
    (made by :meth:`Replay.without`). It answers for that cart exactly as
    ``replay(events without those rows)`` would: ``outcomes`` (the kept lines, in order),
    ``cart_ids``, ``rows_of``, ``state_at`` (``line=`` counts the kept lines; ``ts=``),
    ``final_state``, ``history``, ``changed``, ``outcome_codes``, ``errors``. The lines
    before the first one left out are the replay's own; from there on they were replayed
    again, from the state the replay kept (its checkpoints), and new checkpoints rebuild any
    state after that on demand.

    ``kept[c - 1]`` is the position in the whole cart of the c-th kept line; ``skipped``
    lists the positions left out.

    >>> w = r.without("cart-1001", [2, 5])                           # doctest: +SKIP
    >>> w.skipped, len(w.kept)                                       # doctest: +SKIP
    ([2, 5], 10)
    """

    def __init__(self, replay: Replay, cart_id: str, lines: Any) -> None:
        run = replay._run_of(cart_id)
        n = len(run.rows)
        positions = np.asarray(lines if not isinstance(lines, (set, frozenset))
                               else sorted(lines)).ravel()
        if len(positions) and not (np.issubdtype(positions.dtype, np.integer)
                                   and not np.issubdtype(positions.dtype, np.bool_)):
            raise ValueError(f"lines must be line positions (1 … {n}), not {lines!r}")
        positions = positions.astype(np.int64)
        if len(positions) and (positions.min() < 1 or positions.max() > n):
            raise IndexError(f"cart {cart_id!r} has lines 1 … {n}: cannot leave out "
                             f"{positions[(positions < 1) | (positions > n)][0]}")
        skip = np.zeros(n, dtype=bool)
        skip[positions - 1] = True
        self.replay = replay
        self.cart_id = cart_id
        self.mode: Mode = replay.mode
        self.semantics = replay.semantics
        #: the positions (1 …) left out, ascending
        self.skipped: list[int] = (np.flatnonzero(skip) + 1).tolist()
        kept_at = np.flatnonzero(~skip)
        #: the position in the whole cart of each kept line (1 …)
        self.kept: np.ndarray = kept_at + 1
        self._rows = run.rows[kept_at]
        self._ts = run.ts_ns[kept_at]
        first = int(np.argmax(skip)) if len(skip) and skip.any() else n
        self._first = first  # lines before the first one left out: the replay's own
        m = len(kept_at)
        self.has_cart = m > 0 or any(f["cart_id"] == cart_id and f.get("lines") == 0
                                     for f in replay._files)
        head = run.rows[:first]
        codes = np.empty(m, dtype=np.int8)
        codes[:first] = replay._codes[head]
        last_applied = np.empty(m, dtype=np.int64)
        last_applied[:first] = replay._last_applied[head]
        changed = np.empty(m, dtype=np.uint8)
        changed[:first] = replay._changed[head]
        cols = replay._cart_columns(cart_id)
        errors: list[str | None] = cols["errors"][:first].tolist() + [None] * (m - first)
        self._codes, self._errors = codes, errors
        self._last_applied, self._changed = last_applied, changed
        start = replay._snapshot_after(run, first)
        engine: EngineName = run.engine
        cp_lines: list[int] = [first]
        checkpoints: list[Any] = [start]
        final = start
        #: kept lines after which this cart is again the replay's own cart (same state,
        #: same scanner): every later line does what it did in the replay (None: never)
        self.converged_at: int | None = None
        lines_of = cols["lines"]
        stop = np.flatnonzero(codes[:first] == TOO_LONG)
        stop_line = int(lines_of[stop[0]]) if len(stop) else None
        last = int(last_applied[first - 1]) if first else -1
        # the replay's own checkpoints after the last line left out: where the two carts can
        # be compared (then the kept lines between are line for line the replay's)
        n_skipped = len(self.skipped)
        ends = [(k, int(q)) for k, q in enumerate(run.checkpoint_lines.tolist())
                if self.skipped and q >= self.skipped[-1] and q - n_skipped >= first]
        # compared at the 1st, 2nd, 4th, 8th ... of them: a skip that rejoins mostly does so
        # at the first, and one that never does (an item added: every later id moves) then
        # runs its tail in a few long pieces instead of one per checkpoint. Carts that are
        # the same at one checkpoint are the same at every later one, so a later comparison
        # finds the same rejoined cart, only a few lines later.
        ends = [e for i, e in enumerate(ends) if not (i + 1) & i]
        their_too_long = np.flatnonzero(replay._codes[run.rows] == TOO_LONG)

        def compiled_tail(compiled: CompiledCore, start: Any, rows: np.ndarray, at: np.ndarray,
                          stop_line: int | None, last: int, done: int) -> Any:
            return compiled.run_tail(cart_id, cols, start, rows, at, stop_line, last, done, m)

        def reference_tail(start: Any, rows: np.ndarray, at: np.ndarray, stop_line: int | None,
                           last: int, done: int) -> Any:
            ref = empty_cart(cart_id) if start is None else Replay._state(run, start)
            return replay._reference_from(cart_id, ref, rows, at, stop_line, last, done)

        done = first
        state = start
        for k, q in [*ends, (None, n)]:
            stop_c = m if k is None else q - n_skipped
            if stop_c > done:
                seg = slice(done, stop_c)
                engine, out = replay._engine.run_tail(
                    engine, compiled_tail, reference_tail, state, self._rows[seg], kept_at[seg],
                    stop_line, last, done)
                t_codes, t_errors, t_last, t_changed, t_cp, t_states, state = out
                codes[seg] = t_codes
                errors[seg] = t_errors
                last_applied[seg] = t_last
                changed[seg] = t_changed
                cp_lines += list(t_cp)
                checkpoints += list(t_states)
                if stop_line is None:
                    hit = np.flatnonzero(t_codes == TOO_LONG)
                    if len(hit):
                        stop_line = int(lines_of[kept_at[done + int(hit[0])]])
                last = int(last_applied[stop_c - 1])
                done = stop_c
                if k is not None and (not cp_lines or cp_lines[-1] != done):
                    cp_lines.append(done)
                    checkpoints.append(state)
            final = state
            if k is None:
                break
            their_stop = (int(lines_of[their_too_long[0]])
                          if len(their_too_long) and their_too_long[0] < q else None)
            if their_stop == stop_line and _same_cart(state, run.checkpoints[k]):
                self._converge(run, done, q, last)
                codes, errors, last_applied, changed = (
                    self._codes, self._errors, self._last_applied, self._changed)
                final = None
                break
        self._codes = codes
        self._errors = errors
        self._last_applied = last_applied
        self._changed = changed
        #: the core that replayed the lines after the first one left out
        self.engine: EngineName = engine
        self._cp_lines = np.asarray(cp_lines, dtype=np.int64)
        self._checkpoints = checkpoints
        self._final = final
        self._outcomes: pd.DataFrame | None = None

    def _converge(self, run: _CartRun, done: int, q: int, last: int) -> None:
        """The kept lines after the first ``done`` are the replay's own lines after its first
        ``q`` (the carts are the same there): their outcomes are the replay's; lastChange is
        the replay's from its next applied line on, this cart's until then."""
        rp = self.replay
        rows = self._rows[done:]
        self.converged_at = done
        self._codes[done:] = rp._codes[rows]
        self._changed[done:] = rp._changed[rows]
        self._errors[done:] = rp._cart_columns(self.cart_id)["errors"][
            self.kept[done:] - 1].tolist()
        theirs = rp._last_applied[rows]
        before = int(rp._last_applied[run.rows[q - 1]]) if q else -1
        self._last_applied[done:] = np.where(theirs != before, theirs, last)

    # -- what a replay of the cart answers -----------------------------------------------------
    def _check(self, cart_id: str) -> None:
        if cart_id != self.cart_id or not self.has_cart:
            raise KeyError(f"no cart {cart_id!r} in this replay")

    @property
    def cart_ids(self) -> list[str]:
        """The cart, or nothing when every line of it is left out (and no file of it is
        empty), as a replay of the remaining events would list it."""
        return [self.cart_id] if self.has_cart else []

    def rows_of(self, cart_id: str) -> list[int]:
        """Rows of ``outcomes`` of the cart's kept lines: all of them, in order."""
        self._check(cart_id)
        return list(range(len(self._rows)))

    @property
    def outcomes(self) -> pd.DataFrame:
        """One row per kept line, as :attr:`Replay.outcomes` (cart_id, line, ts, type,
        outcome, error)."""
        if self._outcomes is None:
            oc = self.replay._outcomes_frame(self._rows)  # the kept lines' rows only
            errors = self._errors
            self._outcomes = pd.DataFrame({
                "cart_id": oc["cart_id"].to_numpy(),
                "line": oc["line"].to_numpy(),
                "ts": oc["ts"].array,
                "type": oc["type"].array,
                "outcome": pd.Categorical.from_codes(self._codes, categories=OUTCOMES),
                "error": (pd.array(errors, dtype="str") if len(errors)
                          else pd.array([], dtype="str")),
            })
        return self._outcomes

    def outcome_codes(self, cart_id: str) -> np.ndarray:
        """Per kept line: its outcome as an index into :data:`OUTCOMES` (int8)."""
        self._check(cart_id)
        return self._codes.copy()

    def errors(self, cart_id: str) -> list[str | None]:
        """Per kept line: its error text, or None."""
        self._check(cart_id)
        return list(self._errors)

    def changed(self, cart_id: str) -> np.ndarray:
        """Per kept line: whether it changed the state (:meth:`history`'s ``changed``)."""
        self._check(cart_id)
        return self._changed.astype(bool)

    def line_at(self, cart_id: str, ts: Any) -> int:
        """As :meth:`Replay.line_at`, over the kept lines."""
        self._check(cart_id)
        return _line_at(self._ts, ts)

    def state_at(self, cart_id: str, ts: Any = None, line: int | None = None
                 ) -> dict[str, Any]:
        """The state after ``line`` kept lines (exact), or at time ``ts``."""
        self._check(cart_id)
        if (ts is None) == (line is None):
            raise ValueError("give exactly one of ts= or line=")
        c = self.line_at(cart_id, ts) if line is None else int(line)
        rp = self.replay
        if c <= 0:
            return rp.state_json(empty_cart(cart_id), -1)
        m = len(self._rows)
        if c > m:
            raise IndexError(f"cart {cart_id!r} has {m} lines, not {c}")
        if c <= self._first:
            return rp._json_after(cart_id, c)
        if self.converged_at is not None and c > self.converged_at:
            # the replay's own state after the same lines (kept[c - 1] of them)
            state = rp._state_after(rp._run_of(cart_id), int(self.kept[c - 1]))
            return rp.state_json(state, int(self._last_applied[c - 1]))
        if c == m and self._final is not None:
            state = self._final
            state = state if isinstance(state, CartState) else core.to_state(state)
        else:
            j = int(np.searchsorted(self._cp_lines, c, side="right")) - 1
            a = int(self._cp_lines[j])
            rows = self._rows[a:c][self._codes[a:c] == APPLIED]
            state = rp._apply_applied(self.engine, self._checkpoints[j], rows, cart_id)
        return rp.state_json(state, int(self._last_applied[c - 1]))

    def final_state(self, cart_id: str) -> dict[str, Any]:
        """The cart after its last kept line."""
        self._check(cart_id)
        return self.state_at(cart_id, line=len(self._rows))

    def history(self, cart_id: str) -> pd.DataFrame:
        """As :meth:`Replay.history`: one row per kept line."""
        self._check(cart_id)
        summaries = self.replay._summaries(cart_id, self.engine, self._rows, self._codes)
        return _history_frame(self.outcomes, summaries, self._changed)


_WRITER_HEAD = re.compile(rb'\{"ts":("[^"\\]*"|-?[0-9]+),"type":"[^"\\]*","payload":')


def _writer_ts(token: bytes, payload: Any) -> bytes | None:
    """The ``ts`` value of a line in the writer's exact shape (``ts``, ``type``, ``payload`` and
    nothing else, no spaces, no escapes before the payload), else None. For a line that
    decodes, Go's envelope takes its ts from that key alone, so decoding the value alone gives
    the same ts at a fraction of the cost (lastChange of every cart). ``payload``: the
    payload column's value, a ``str`` or its UTF-8 bytes.

    >>> _writer_ts(b'{"ts":"2025-01-01T00:00:00Z","type":"X","payload":{}}', "{}")
    b'"2025-01-01T00:00:00Z"'
    """
    m = _WRITER_HEAD.match(token)
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogatepass")
    if m is None or not isinstance(payload, bytes) or not token.endswith(b"}"):
        return None
    if token[m.end():-1] != payload:
        return None
    return m.group(1)


class _CompiledSteps:
    """A cart's applied lines (events ``rows``, in order) applied one at a time by the
    compiled core's loop (:meth:`Replayer.run_from`), each on from the cart the line before
    left: :meth:`next` gives the cart after the next line, as a snapshot of the core."""

    def __init__(self, compiled: CompiledCore, rows: np.ndarray, cart_id: str) -> None:
        data, offsets, valid = compiled.payload_buffers
        m = len(rows)
        # the core's inputs of these rows alone, by their place here; an applied line had
        # no envelope error and was not too long (it applied)
        self._codes = np.zeros(m, dtype=np.int8)
        self._replayer = core.Replayer(
            (data, np.ascontiguousarray(offsets[rows]), np.ascontiguousarray(offsets[rows + 1]),
             np.ascontiguousarray(valid[rows])),
            np.ascontiguousarray(compiled.row_kind[rows]), np.zeros(m, dtype=np.uint8),
            np.zeros(m, dtype=np.uint8), np.zeros(m, dtype=np.int64), compiled.decoders,
            compiled.pool, self._codes, np.zeros(m, dtype=np.int64),
            np.full(m, -1, dtype=np.int64), np.zeros(m, dtype=np.uint8), CHECKPOINT_EVERY)
        self._at = np.arange(m, dtype=np.int64)
        self._cart_id = cart_id
        self._done = 0
        self._snapshot: Any = None  # the empty cart

    def next(self) -> Any:
        """The cart after the next applied line (a snapshot, never changed afterwards)."""
        j = self._done
        _cp, _states, final = self._replayer.run_from(
            self._snapshot, self._cart_id, self._at[j : j + 1], None, -1, -1, 0, 1)
        if self._codes[j] != APPLIED:
            raise RuntimeError(f"a line of cart {self._cart_id!r} that applied did not apply "
                               "again")
        self._snapshot = final
        self._done = j + 1
        return final


class _ToolchainDecoders:
    """``registry[t].decode(payload)`` as toolchain ``sem`` decodes (for the compiled core)."""

    def __init__(self, registry: Registry, sem: GoSemantics) -> None:
        self._registry, self._sem = registry, sem

    def __getitem__(self, name: str) -> _BoundDecoder:
        return _BoundDecoder(self._registry[name], self._sem)


@dataclass(frozen=True)
class _BoundDecoder:
    mt: MutationType
    sem: GoSemantics

    def decode(self, payload: bytes | None) -> tuple[Any, str | None]:
        return self.mt.decode(payload, self.sem)


def _reference_line(registry: Registry, catalog: Any, sem: GoSemantics, state: CartState,
                    stop_line: int | None, too_long: Any, line: Any, err: Any, type_: Any,
                    payload: Any) -> tuple[int, str | None, CartState, int | None]:
    """One line through the service's loop on the reference core: (outcome code, error text,
    the state after it, the too-long line that stopped the scanner, if one did). The state
    is ``state`` itself unless the line applied."""
    if stop_line is not None:
        return NOT_REACHED, f"not reached: the scanner stopped at line {stop_line}", state, \
            stop_line
    if too_long:
        return TOO_LONG, TOO_LONG_ERROR, state, int(line)
    if err is not None and not _is_na_str(err):
        return MALFORMED, err, state, None
    mt = registry.get(type_ if isinstance(type_, str) else None)
    if mt is None:
        return UNKNOWN_TYPE, f"unknown mutation type: {go_quote(type_ or '')}", state, None
    code, text, new = _apply_reference(mt, state, payload, catalog, sem)
    return code, text, (new if code == APPLIED else state), None


def _apply_reference(
    mt: MutationType, state: CartState, payload: Any, catalog: Any, sem: GoSemantics
) -> tuple[int, str | None, CartState]:
    """One line on the reference core: (outcome code, error text, state after it)."""
    msg, perr = mt.decode(None if not isinstance(payload, str) else payload.encode(), sem)
    if perr is not None:
        return PAYLOAD_ERROR, perr, state
    try:
        new = mt.handler(state, msg, catalog)
    except HandlerError as e:
        return APPLY_ERROR, str(e), state
    except Exception as e:  # a user's handler: report, never crash
        return APPLY_ERROR, f"{type(e).__name__}: {e}", state
    if not isinstance(new, CartState):
        text = f"handler for {mt.name} returned {type(new).__name__}, not a CartState"
        return APPLY_ERROR, text, state
    return APPLIED, None, new


def _without_attrs(df: pd.DataFrame) -> pd.DataFrame:
    """A shallow view of ``df`` without ``attrs`` (pandas deep-copies attrs, here the list of
    files, on every copy and column access)."""
    try:
        out = pd.DataFrame._from_mgr(df._mgr.copy(deep=False), axes=df._mgr.axes)
    except Exception:  # noqa: BLE001 - a pandas without it: the documented way
        out = df.copy(deep=False)
    out.attrs = {}
    return out


def _appearance_codes(col: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """``pd.factorize(col)``: per row the index of its value among the distinct values in
    order of first appearance; from a categorical's own codes (an int8 per row, not an intp)
    when it has no missing value.

    >>> _appearance_codes(pd.Series(["b", "a", "b"], dtype="category"))
    (array([0, 1, 0], dtype=int8), ['b', 'a'])
    """
    if not len(col):
        return np.zeros(0, np.intp), []
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = np.asarray(col.cat.codes.to_numpy())
        if not (codes < 0).any():
            cats = col.cat.categories
            order = first_appearance(codes, len(cats))
            remap = np.empty(len(cats), dtype=codes.dtype)
            remap[order] = np.arange(len(order), dtype=codes.dtype)
            return remap[codes], list(cats[order])
    codes, uniques = pd.factorize(col)
    return codes, list(uniques)


def _codes_of(col: pd.Series, mask: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """(per row of ``mask``, an index into the list; the list of values): a categorical's
    own codes and categories (a missing value indexes one more, None, at the end), else the
    values factorized.

    >>> _codes_of(pd.Series(["a", None, "b"], dtype="category"), np.array([1, 1, 0], bool))
    (array([0, 2], dtype=int8), ['a', 'b', None])
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = list(col.cat.categories)
        where = np.asarray(col.cat.codes.to_numpy())[mask]
        return np.where(where >= 0, where, len(cats)).astype(where.dtype), [*cats, None]
    where, uniq = pd.factorize(col.iloc[np.flatnonzero(mask)], use_na_sentinel=False)
    return where, list(uniq)


def _index_type(count: int) -> type:
    """The smallest signed int type whose values cover ``-1 .. count - 1``.

    >>> _index_type(100), _index_type(1000)
    (<class 'numpy.int8'>, <class 'numpy.int16'>)
    """
    for t in (np.int8, np.int16, np.int32):
        if count <= np.iinfo(t).max:
            return t
    return np.int64


def _as_str_column(col: pd.Series) -> Any:
    """``col.to_numpy()`` as the outcomes frame stores it (pandas' ``str`` column), made from
    the categories and codes when every category is a ``str`` (no ``str`` per row)."""
    if isinstance(col.dtype, pd.CategoricalDtype) and len(col):
        cats = col.cat.categories
        codes = np.asarray(col.cat.codes.to_numpy())
        if (codes >= 0).all() and all(type(c) is str for c in cats):
            dictionary = pa.array(list(cats), type=pa.large_string())
            arr = pa.DictionaryArray.from_arrays(pa.array(codes), dictionary)
            return pd.array(arr.cast(pa.large_string()), dtype="str")
    return col.to_numpy()


def _rows_of(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values[rows]`` for strictly increasing ``rows`` (a cart's rows in a replay); a view
    when they are consecutive (a cart's lines as read_events gives them), not a copy: then,
    and only then, the last is ``len - 1`` past the first (no per-row check per cart).

    >>> _rows_of(np.arange(10), np.array([3, 4, 5])).base is not None
    True
    """
    if len(rows) and int(rows[-1]) - int(rows[0]) == len(rows) - 1:
        return values[int(rows[0]) : int(rows[-1]) + 1]
    return values[rows]


def _binary_buffers(col: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """(data as uint8, offsets as int64) of an Arrow-backed binary or string column in one
    chunk with no nulls, read in place; None for any other column.

    >>> data, offsets = _binary_buffers(pd.Series(pd.array([b"ab", b"c"], dtype="binary[pyarrow]")))
    >>> data[offsets[1] : offsets[2]].tobytes()
    b'c'
    """
    arrow = getattr(col.array, "__arrow_array__", None)
    if arrow is None:
        return None
    chunks = pa.chunked_array(arrow())
    if chunks.num_chunks != 1:
        return None
    arr = chunks.chunk(0)
    t = arr.type
    if arr.null_count or not (pa.types.is_binary(t) or pa.types.is_large_binary(t)
                              or pa.types.is_string(t) or pa.types.is_large_string(t)):
        return None
    wide = pa.types.is_large_binary(t) or pa.types.is_large_string(t)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64 if wide else np.int32)
    offsets = offsets[arr.offset : arr.offset + len(arr) + 1].astype(np.int64, copy=False)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(1, np.uint8)
    return data, offsets


def _ts_ns(ts: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch, NaT as the minimum int64 (a view on a ``ns`` column).

    >>> _ts_ns(pd.Series(pd.to_datetime(["1970-01-01T00:00:01Z", None]))).tolist()
    [1000000000, -9223372036854775808]
    """
    arr = ts.array
    if getattr(arr, "unit", "ns") != "ns":
        arr = arr.as_unit("ns")
    return np.asarray(arr.asi8, dtype=np.int64)


def _is_na_str(v: Any) -> bool:
    return not isinstance(v, str)


def _same_cart(a: Any, b: Any) -> bool:
    """Two carts (the compiled core's snapshots or CartStates) that are the same in every
    value and its type: every later line does the same to both."""
    if a is None or b is None:
        return a is b
    if not isinstance(a, CartState) and not isinstance(b, CartState):
        return bool(core.same_cart(a, b))
    a = a if isinstance(a, CartState) else core.to_state(a)
    b = b if isinstance(b, CartState) else core.to_state(b)
    return same_value(a, b)


def _line_at(tsv: np.ndarray, ts: Any) -> int:
    """How many of the lines with times ``tsv`` (ns, NaT as min int64) are in the longest
    prefix whose ts are all <= ``ts`` (a line with no readable ts goes with the one before)."""
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    nat, top = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    try:
        limit = t.value
    except OverflowError:  # before or after every instant the ns range holds
        past = t.year < 1970
        if (tsv == (nat + 1 if past else top)).any():  # lines beyond it, clamped to its end
            raise ValueError(f"ts={ts!s}: beyond the nanosecond range (1677-09-21 to "
                             "2262-04-11), where lines of this cart lie whose times are "
                             "clamped to its end: ask by line= instead") from None
        limit = nat if past else top
    readable = tsv != nat
    later = np.flatnonzero(readable & (tsv > limit))
    return int(later[0]) if len(later) else len(tsv)


def _history_frame(oc: pd.DataFrame, summaries: tuple[list[int], ...],
                   changed: np.ndarray) -> pd.DataFrame:
    """:meth:`Replay.history`'s frame from a cart's outcomes rows (line, ts, type, outcome,
    error), the state summaries after each line and the changed flags."""
    n_items, qty, n_del, total = summaries
    return pd.DataFrame(
        {
            "line": oc["line"].to_numpy(),
            "ts": oc["ts"].array,
            "type": oc["type"].array,
            "outcome": oc["outcome"].array,
            "error": oc["error"].array,
            "items": np.asarray(n_items, dtype=np.int64) if n_items else [],
            "quantity": qty,
            "deliveries": np.asarray(n_del, dtype=np.int64) if n_del else [],
            "total_price": np.asarray(total, dtype=np.int64) if total else [],
            "changed": changed.astype(bool).tolist(),
        }
    )


def diff_states(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Items and deliveries added, removed and changed (by id), and changed cart fields."""
    out: dict[str, Any] = {}
    for key in ("items", "deliveries"):
        old = {x["id"]: x for x in a[key]}
        new = {x["id"]: x for x in b[key]}
        changed = {}
        for i in old.keys() & new.keys():
            fields = {f: (old[i][f], new[i][f]) for f in new[i] if old[i].get(f) != new[i][f]}
            if fields:
                changed[i] = fields
        out[key] = {
            "added": [new[i] for i in new if i not in old],
            "removed": [old[i] for i in old if i not in new],
            "changed": dict(sorted(changed.items())),
        }
    out["fields"] = {
        k: (a[k], b[k]) for k in b if k not in ("items", "deliveries") and a.get(k) != b[k]
    }
    return out


def replay(
    source: Source | pd.DataFrame,
    mode: Mode = "go",
    catalog: Any = None,
    registry: Registry | None = None,
    go_version: str | GoSemantics | None = None,
    engine: str | None = None,
    starts: Mapping[str, CartStart] | None = None,
) -> Replay:
    """Replay logs (anything :func:`read_events` takes, or its DataFrame) in ``"go"`` mode (the
    seed's reader, bugs and all) or ``"lenient"`` mode (numeric ts and long lines accepted).
    ``engine``: ``"compiled"`` (the default when built) or ``"reference"`` (pure Python); both
    give identical results (docs/performance.md). ``starts``: carts whose lines go on from
    a cart their earlier lines left (:class:`CartStart`, from :meth:`Replay.cart_end`).

    ``go_version``: the toolchain that built the service (``"1.25"`` default, ``"1.26"``,
    ``"1.27"``, ``"1.27+nojsonv2"``, ...; see :mod:`cartforensics.go.version`). A DataFrame
    from ``read_events`` carries the one it was read with; asking for another one is an error
    (read the logs again with that go_version).

    >>> r = replay("sample_data")                  # doctest: +SKIP
    >>> r.metrics()                                # doctest: +SKIP
    """
    if mode not in MODES:
        raise ValueError(f"mode must be 'go' or 'lenient', not {mode!r}")
    events, sem = _events_of(source, go_version)
    return Replay(events, mode, registry or default_registry(), catalog, sem, engine, starts)


def replay_modes(
    source: Source | pd.DataFrame,
    modes: Sequence[Mode] = MODES,
    catalog: Any = None,
    registry: Registry | None = None,
    go_version: str | GoSemantics | None = None,
    engine: str | None = None,
) -> Iterator[Replay]:
    """``replay(source, mode, ...)`` for each of ``modes`` in turn, the same replays, with
    what does not depend on the mode (:class:`PreparedEvents`) made once for all of them.
    One replay is made when the previous one has been taken (drop it to hold one at a time).

    >>> [r.mode for r in replay_modes("sample_data")]              # doctest: +SKIP
    ['go', 'lenient']
    """
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"mode must be 'go' or 'lenient', not {mode!r}")
    events, sem = _events_of(source, go_version)
    registry = registry or default_registry()
    prepared = PreparedEvents(events, semantics(sem), registry)
    for mode in modes:
        yield Replay(events, mode, registry, catalog, sem, engine, prepared=prepared)


def _events_of(source: Source | pd.DataFrame, go_version: str | GoSemantics | None
               ) -> tuple[pd.DataFrame, GoSemantics]:
    """(the events frame to replay, the toolchain to replay it as) for :func:`replay`'s
    ``source`` and ``go_version``; ValueError for a frame that is not read_events' or was
    read as another toolchain."""
    if isinstance(source, pd.DataFrame):
        events = source
        read_as = source.attrs.get("go_version")
        sem = semantics(go_version if go_version is not None else read_as)
        if read_as is not None and semantics(read_as) != sem:
            raise ValueError(
                f"these events were read as {semantics(read_as).label}: read them again with "
                f"read_events(..., go_version={sem.spec!r}) to replay as {sem.label}")
    else:
        sem = semantics(go_version)
        events = read_events(source, go_version=sem)
    missing = {"cart_id", "line", "ts", "type", "payload", "envelope_error", "lenient_error",
               "too_long", "raw"} - set(events.columns)
    if missing:
        raise ValueError(f"not a read_events DataFrame: missing columns {sorted(missing)}")
    index = events.index
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        events = events.reset_index(drop=True)
    return events, sem


def outcome_metrics(counts: pd.DataFrame, by_cart: bool = False) -> pd.DataFrame | pd.Series:
    """:meth:`Replay.metrics` from lines per outcome per cart (columns in OUTCOMES' order,
    one row per cart, as a replay counts them).

    >>> counts = pd.DataFrame([[3, 1, 0, 0, 0, 0, 0]], columns=list(OUTCOMES), index=["c"])
    >>> outcome_metrics(counts)["cart_event_log_replay_failures_total"]
    np.int64(1)
    """
    m = pd.DataFrame(index=counts.index)
    m["cart_event_log_replay_total"] = (counts["too_long"] == 0).astype("int64")
    m["cart_event_log_replay_failures_total"] = (
        counts["malformed"] + counts["unknown_type"] + counts["too_long"]
    )
    m["cart_event_log_mutation_errors_total"] = counts["payload_error"] + counts["apply_error"]
    m["cart_event_log_unknown_types_total"] = 0
    m[PROMISED_UNKNOWN_METRIC] = counts["unknown_type"]
    m.index.name = "cart_id"
    if by_cart:
        return m
    return m.sum().astype("int64")


def outcome_summary(counts: pd.DataFrame, items: list[int], total_price: list[int]
                    ) -> pd.DataFrame:
    """:meth:`Replay.summary` from lines per outcome per cart (as :func:`outcome_metrics`
    takes them) and each cart's final items and total price (``counts`` gets the columns).

    >>> counts = pd.DataFrame([[3, 1, 0, 0, 0, 0, 0]], columns=list(OUTCOMES), index=["c"])
    >>> outcome_summary(counts, [2], [500])[["lines", "items", "total_price"]].values.tolist()
    [[4, 2, 500]]
    """
    counts.insert(0, "lines", counts.sum(axis=1))
    counts["items"] = items
    counts["total_price"] = total_price
    counts.index.name = "cart_id"
    counts.columns.name = None
    return counts


def compare(go: Replay, lenient: Replay) -> pd.DataFrame:
    """Per cart: the lines the service dropped (applied only in lenient mode) and how the
    rebuilt cart differs from what the writer meant."""
    a = go.outcomes
    b = lenient.outcomes
    dropped = (b["outcome"] == "applied") & (a["outcome"] != "applied")
    rows = []
    for cid in lenient.cart_ids:
        ga = go.final_state(cid) if cid in go._runs else None
        le = lenient.final_state(cid)
        mask = (b["cart_id"] == cid).to_numpy()
        rows.append(
            {
                "cart_id": cid,
                "lines": int(mask.sum()),
                "applied_go": int(((a["outcome"] == "applied").to_numpy() & mask).sum()),
                "applied_lenient": int(((b["outcome"] == "applied").to_numpy() & mask).sum()),
                "dropped": int((dropped.to_numpy() & mask).sum()),
                "items_go": len(ga["items"]) if ga else 0,
                "items_lenient": len(le["items"]),
                "total_go": ga["totalPrice"] if ga else 0,
                "total_lenient": le["totalPrice"],
                "total_lost": le["totalPrice"] - (ga["totalPrice"] if ga else 0),
            }
        )
    return pd.DataFrame(rows)


def _check_pair(a: Replay, b: Replay) -> None:
    same = len(a.outcomes) == len(b.outcomes) and (
        a.outcomes["cart_id"].to_numpy() == b.outcomes["cart_id"].to_numpy()
    ).all() and (a.outcomes["line"].to_numpy() == b.outcomes["line"].to_numpy()).all()
    if not same:
        raise ValueError("the two replays are not of the same events: replay one DataFrame "
                         "from read_events in both modes")


def dropped_lines(go: Replay, lenient: Replay) -> pd.DataFrame:
    """The lines lenient mode applies and go mode does not, with go's outcome and error."""
    _check_pair(go, lenient)
    a = go.outcomes
    b = lenient.outcomes
    mask = (b["outcome"] == "applied") & (a["outcome"] != "applied")
    out = a.loc[mask, ["cart_id", "line", "ts", "type", "outcome", "error"]].copy()
    return out.reset_index(drop=True)
