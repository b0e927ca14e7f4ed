"""The fleet dashboard: every line of a replay filtered by date, type and outcome (see
:mod:`cartforensics.present.widgets`).

An ``anywidget.AnyWidget`` drawn by one ES module (``static/dashboard.js``), in JupyterLab,
Notebook 7, VS Code and marimo alike. The kernel counts the lines once, per chart window, type
and outcome in both modes (:func:`line_counts`), and sends those counts; the page draws both
charts from them as SVG on one time axis, so a filter or a date step redraws them without
asking the kernel. The kernel answers each filter with what needs every line: the lines and
carts matched and the worst carts.

Rates keep their denominator: a window's rate is over every line of the chosen types in that
window, whatever the outcome filter; the outcome filter picks which failures are counted (so
filtering to one outcome shows that outcome's true share, not 100 %).

Over a converted dataset (``FleetDashboard("carts.parquet")``, or a :func:`cartforensics.sql`
connection) nothing is replayed or loaded into the kernel: DuckDB counts the lines once into a
compact table of (chart window, type, outcome in both modes, cart, lines), answers each filter
from it, and opening a cart reads and replays that cart alone.

>>> ev = cf.read_events("sample_data")                             # doctest: +SKIP
>>> FleetDashboard(cf.replay(ev))                                  # doctest: +SKIP
FleetDashboard(1,540 of 1,540 lines, 300 carts, go)
>>> FleetDashboard("carts.parquet")                                # doctest: +SKIP
FleetDashboard(1,540 of 1,540 lines, 300 carts, go)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from typing import Any

import anywidget
import numpy as np
import pandas as pd
import traitlets

from cartforensics.analysis.notes import Notes
from cartforensics.analysis.sql import sql as sql_connection
from cartforensics.io.dataset import open_dataset
from cartforensics.io.sources import DatasetSource, resolve_source
from cartforensics.model.replay import Replay
from cartforensics.model.replay import replay as run_replay
from cartforensics.present.escaping import visible
from cartforensics.present.widgets.common import label_text, replay_pair, with_text_form
from cartforensics.present.widgets.frames import outcome_vocab
from cartforensics.present.widgets.scrubber import TimelineScrubber
from cartforensics.present.widgets.static import STATIC_DIR, module_text
from cartforensics.vocab import (
    FAILURE_OUTCOMES,
    MODES,
    MUTATION_ERROR_OUTCOMES,
    OUTCOMES,
    RATE_COLORS,
)

MAX_CHART_WINDOWS = 120  # chart windows over the logs' span at most
_STEPS = [pd.Timedelta(x) for x in ("1min", "5min", "15min", "1h", "6h", "1D", "7D")]
RATES = (  # the rate chart's series: name, label, outcomes counted
    ("failure_rate", "failures (replay_failures_total)", FAILURE_OUTCOMES),
    ("unknown_type_rate", "unknown types", ("unknown_type",)),
    ("mutation_error_rate", "mutation errors (mutation_errors_total)", MUTATION_ERROR_OUTCOMES),
)
NO_TYPE = "(no type)"


def date_windows(ts: pd.Series) -> tuple[pd.DatetimeIndex, str]:
    """The date filter's windows over ``ts``: edges of whole hours (a span of 3 days or
    less), days, or weeks (over 400 days), and the unit's word.

    >>> e, w = date_windows(pd.Series(pd.to_datetime(["2025-01-01T10:30Z", "2025-01-05T01:00Z"])))
    >>> w, len(e) - 1, str(e[0].date())
    ('day', 5, '2025-01-01')
    """
    ts = ts.dropna()
    if ts.empty:
        return pd.DatetimeIndex([]), "day"
    lo, hi = ts.min(), ts.max()
    unit, words = ("1h", "hour") if hi - lo <= pd.Timedelta(days=3) else ("1D", "day")
    if words == "day" and (hi - lo) > pd.Timedelta(days=400):
        unit, words = "7D", "week"
    edges = pd.date_range(lo.floor(unit), hi.floor(unit) + pd.Timedelta(unit), freq=unit)
    return edges, words


def chart_step(edges: pd.DatetimeIndex, limit: int = MAX_CHART_WINDOWS) -> pd.Timedelta:
    """The chart window: the smallest of 1 min … 7 days that divides a date window and cuts
    the span of ``edges`` into at most ``limit`` windows (so both charts and the date filter
    share one axis, and a date window is a whole number of chart windows).

    >>> chart_step(pd.date_range("2025-01-01", periods=8, freq="1D", tz="UTC"))
    Timedelta('0 days 06:00:00')
    """
    if len(edges) < 2:
        return pd.Timedelta("1D")
    unit = edges[1] - edges[0]
    span = edges[-1] - edges[0]
    for step in _STEPS:
        if step <= unit and unit % step == pd.Timedelta(0) and span / step <= limit:
            return step
    return unit


def line_counts(bins: np.ndarray, types: np.ndarray, go: np.ndarray, lenient: np.ndarray
                ) -> dict[str, list[int]]:
    """Lines counted per (chart window, type, go outcome, lenient outcome), the combinations
    that occur, as columns: ``bin`` (-1: no readable ts), ``type``, ``go``, ``le``, ``n``.

    >>> line_counts(np.array([0, 0, 1]), np.array([0, 0, 1]), np.array([0, 0, 4]),
    ...             np.array([0, 0, 0]))["n"]
    [2, 1]
    """
    n_types = int(types.max()) + 1 if len(types) else 1
    n_out = len(OUTCOMES)
    key = (((bins.astype(np.int64) + 1) * n_types + types) * n_out + go) * n_out + lenient
    uniq, counts = np.unique(key, return_counts=True)
    le_, rest = uniq % n_out, uniq // n_out
    go_, rest = rest % n_out, rest // n_out
    ty, b = rest % n_types, rest // n_types - 1
    return {"bin": b.tolist(), "type": ty.tolist(), "go": go_.tolist(), "le": le_.tolist(),
            "n": counts.tolist()}


def _codes_of(column: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Per row, an index into the returned values; 0 is a missing value (None)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy().astype(np.int64)
        values = list(column.cat.categories)
    else:
        codes, uniq = pd.factorize(column, use_na_sentinel=True)
        values = list(uniq)
    return codes + 1, [None, *(str(v) for v in values)]


def _dataset_lines(source: Any) -> _DatasetLines:
    """The lines of a converted dataset (its path, or its DatasetSource), or of a
    :func:`cartforensics.sql` connection, in DuckDB."""
    if isinstance(source, (str, os.PathLike, DatasetSource)):
        resolved = resolve_source(source)
        if not isinstance(resolved, DatasetSource):
            raise TypeError(f"{source}: not a converted dataset (for logs: "
                            "FleetDashboard(cf.replay(cf.read_events(...))))")

        def open_cart(cart_id: str) -> tuple[Replay, Replay]:
            df = open_dataset(resolved.root, carts=[cart_id], manifest=resolved.manifest)
            version = df.attrs.get("go_version")
            return (run_replay(df, mode="go", go_version=version),
                    run_replay(df, mode="lenient", go_version=version))

        return _DatasetLines(sql_connection(resolved), open_cart)
    if callable(getattr(source, "execute", None)) and callable(getattr(source, "register", None)):
        return _DatasetLines(source)
    raise TypeError(f"expected a Replay (cartforensics.replay(...)), a converted dataset's path "
                    f"or a cartforensics.sql connection, not {type(source).__name__}")


def _in_list(column: str, values: list[int]) -> str:
    return f"{column} in ({', '.join(str(int(v)) for v in values)})" if values else "false"


class _DatasetLines:
    """The dashboard's lines as DuckDB holds them: the counts per (chart window, type, go
    outcome, lenient outcome, cart) in one temporary table, made by one pass over the source
    (a converted dataset's Parquet, read where it lies); each filter is a query of it.

    ``con``: a :func:`cartforensics.sql` connection (its ``events`` view; the stored fragments
    when it is over a dataset); ``open_cart``: cart id -> (go, lenient) replays of that cart
    alone (None: carts cannot be opened)."""

    def __init__(self, con: Any, open_cart: Any = None) -> None:
        self.con = con
        self.open = open_cart
        self._table = f"_cf_dash_{uuid.uuid4().hex[:12]}"  # one per dashboard on a connection
        names = {r[0] for r in con.execute(
            "select view_name from duckdb_views() union all "
            "select table_name from duckdb_tables()").fetchall()}
        if "events" not in names:
            raise TypeError("expected a connection from cartforensics.sql (no events view)")
        if "_cf_stored_events" in names:  # a dataset: its stored ns and files, read in order
            self._base = ("select cart_id, source, line, ts_ns, type, outcome_go, "
                          "outcome_lenient from _cf_stored_events")
        else:
            self._base = ("select cart_id, '' as source, line, epoch_ns(ts) as ts_ns, type, "
                          "outcome_go, outcome_lenient from events")
        lo, hi, self.lines, self.no_ts = con.execute(
            f"select min(ts_ns), max(ts_ns), count(*), (count(*) - count(ts_ns))::bigint "
            f"from ({self._base})").fetchone()
        # every cart, those of empty files too (a replay has them)
        self.all_carts = {r[0] for r in con.execute("select distinct cart_id from files")
                          .fetchall()}
        self.carts = len(self.all_carts)
        stamps = [x for x in (lo, hi) if x is not None]
        self.ts_span = pd.Series(pd.to_datetime(stamps, utc=True), dtype="datetime64[ns, UTC]")
        # types: most lines first, ties in order of first appearance (as read_events' categories)
        rows = con.execute(
            f"select type, count(*), min({{'c': cart_id, 's': source, 'l': line}}) "
            f"from ({self._base}) group by type").fetchall()
        first = {r[0]: (r[2]["c"], r[2]["s"], r[2]["l"]) for r in rows}
        order = sorted(rows, key=lambda r: (-r[1], r[0] is not None, first[r[0]]))
        self.type_names: list[str | None] = [r[0] for r in order]
        self.type_counts = [int(r[1]) for r in order]
        self.cart_names = sorted(r[0] for r in con.execute(
            f"select distinct cart_id from ({self._base})").fetchall())
        self._names = np.asarray(self.cart_names, dtype=object)

    def count(self, start_ns: int, step_ns: int | None) -> None:
        """Fill the table of counts (chart windows from ``start_ns``, ``step_ns`` long; None:
        no windows, every line in window -1)."""
        import pyarrow as pa

        con = self.con
        con.register("_cf_dash_types", pa.table({
            "type": pa.array(self.type_names, pa.string()),
            "t": pa.array(range(len(self.type_names)), pa.int32())}))
        con.register("_cf_dash_carts", pa.table({
            "cart_id": pa.array(self.cart_names, pa.string()),
            "c": pa.array(range(len(self.cart_names)), pa.int32())}))
        outs = "[" + ", ".join(f"'{o}'" for o in OUTCOMES) + "]"
        window = ("-1" if step_ns is None else
                  f"coalesce((e.ts_ns - {int(start_ns)}) // {max(int(step_ns), 1)}, -1)")
        con.execute(f"""
            create or replace temp table {self._table} as
            select b, t, g, l, c, count(*)::bigint as n from (
                select ({window})::integer as b,
                       ty.t,
                       coalesce(list_position({outs}, e.outcome_go) - 1, 0)::tinyint as g,
                       coalesce(list_position({outs}, e.outcome_lenient) - 1, 0)::tinyint as l,
                       ca.c
                from ({self._base}) e
                join _cf_dash_types ty on e.type is not distinct from ty.type
                join _cf_dash_carts ca on e.cart_id = ca.cart_id)
            group by all""")
        con.unregister("_cf_dash_types")
        con.unregister("_cf_dash_carts")

    def present(self, mode: str) -> list[int]:
        col = "g" if mode == "go" else "l"
        got = dict(self.con.execute(
            f"select {col}, sum(n)::bigint from {self._table} group by 1").fetchall())
        return [int(got.get(k, 0)) for k in range(len(OUTCOMES))]

    def counts(self) -> dict[str, list[int]]:
        """:func:`line_counts` of every line, from the table."""
        got = self.con.execute(f"select b, t, g, l, sum(n)::bigint as n from {self._table} "
                               "group by all order by b, t, g, l").fetchnumpy()
        return {k: got[c].astype(np.int64).tolist() for k, c in
                (("bin", "b"), ("type", "t"), ("go", "g"), ("le", "l"), ("n", "n"))}

    def where(self, bins: tuple[int, int] | None, types: list[int] | None,
              outcomes: list[int], mode: str) -> str:
        """The filters as a condition on the table of counts."""
        parts = [_in_list("g" if mode == "go" else "l", outcomes)]
        if bins is not None:
            parts.append(f"b >= {int(bins[0])} and b < {int(bins[1])}")
        if types is not None:
            parts.append(_in_list("t", types))
        return " and ".join(parts)

    def mix(self, where: str, mode: str) -> list[int]:
        col = "g" if mode == "go" else "l"
        got = dict(self.con.execute(
            f"select {col}, sum(n)::bigint from {self._table} where {where} group by 1").fetchall())
        return [int(got.get(k, 0)) for k in range(len(OUTCOMES))]

    def per_cart(self, where: str) -> pd.DataFrame:
        """worst_carts' columns, per cart with a line the filters keep (unsorted)."""
        got = self.con.execute(f"""
            select c, sum(n)::bigint as lines,
                   sum(case when g <> 0 then n else 0 end)::bigint as problems_go,
                   sum(case when l <> 0 then n else 0 end)::bigint as problems_lenient,
                   sum(case when g <> 0 and l = 0 then n else 0 end)::bigint as lost
            from {self._table} where {where} group by c""").fetchnumpy()
        codes = got["c"].astype(np.int64)
        return pd.DataFrame(
            {k: got[k].astype(np.int64) for k in
             ("lines", "problems_go", "problems_lenient", "lost")},
            index=pd.Index(self._names[codes], name="cart_id")).assign(_c=codes)


class FleetDashboard(anywidget.AnyWidget):
    """Every line of a replay, filtered by date range, type and outcome: a rate chart and an
    outcome chart on one time axis, the lines and carts matched, the worst carts, and the
    chosen cart opened in a :class:`TimelineScrubber` shown below the dashboard.

    ``replay``: a go-mode :class:`~cartforensics.model.replay.Replay`; ``lenient``: the lenient
    one of the same events (replayed when not given); ``top``: rows of the worst-carts table;
    ``notes``: the notes (or notes file) the scrubber below writes to.

    The filters are traits: :attr:`date_index` (``[first, last]`` date window, see
    :attr:`date_labels`), :attr:`types` (the types chosen; ``None`` is a line without a type),
    :attr:`outcomes` (the outcomes chosen, in :attr:`mode`), :attr:`mode` (``go`` or
    ``lenient``). :meth:`mask`, :meth:`worst_carts`, :meth:`reset_filters`,
    :meth:`open_cart` (at the first line the filters match).

    >>> ev = cf.read_events("sample_data")                             # doctest: +SKIP
    >>> d = FleetDashboard(cf.replay(ev)); d.outcomes = ["apply_error"]  # doctest: +SKIP
    >>> d.open_cart("cart-1193").position                              # doctest: +SKIP
    5
    """

    # one module: timeline.js's helpers, then the dashboard's view; the CSS likewise
    _esm = module_text() + "\n" + (STATIC_DIR / "dashboard.js").read_text(encoding="utf-8")
    _css = ((STATIC_DIR / "timeline.css").read_text(encoding="utf-8") + "\n"
            + (STATIC_DIR / "dashboard.css").read_text(encoding="utf-8"))

    #: what stays: labels, the chart windows, the types, the outcomes and the line counts
    meta = traitlets.Dict().tag(sync=True)
    #: the date windows chosen, first and last (indices into :attr:`date_labels`)
    date_index = traitlets.List(traitlets.Int(), default_value=[0, 0]).tag(sync=True)
    #: the types chosen (None: lines without a type)
    types = traitlets.List().tag(sync=True)
    #: the outcomes chosen, in :attr:`mode`
    outcomes = traitlets.List(traitlets.Unicode()).tag(sync=True)
    #: the mode the outcome filter, the outcome chart and the ranking read
    mode = traitlets.Enum(MODES, default_value="go").tag(sync=True)
    #: what needs every line: lines and carts matched, the worst carts
    view = traitlets.Dict().tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    request = traitlets.Dict().tag(sync=True)  # what the page asks: {"n": k, "do": ...}

    def __init__(self, replay: Replay | str | os.PathLike[str] | DatasetSource | Any,
                 lenient: Replay | None = None, *, top: int = 10,
                 notes: Notes | str | os.PathLike[str] | None = None):
        super().__init__()
        self.notes = notes if isinstance(notes, Notes) else Notes(notes)
        self.top = top
        self.redraws = 0
        self._busy = False
        self._last_key: Any = None
        #: the lines in DuckDB (a dataset or a cf.sql connection); None: a replay's, in memory
        self._data: _DatasetLines | None = None
        if isinstance(replay, Replay):
            self.go, self.lenient = replay_pair(replay, lenient)
            self.replays = {"go": self.go, "lenient": self.lenient}
            ts = self._replay_lines()
            n_lines, n_carts = len(self._ts_ns), len(self.go.cart_ids)
            no_ts = int((~self._has_ts).sum())
            type_counts = self._type_counts
        else:
            if lenient is not None:
                raise ValueError("lenient= goes with a Replay: a dataset holds both modes")
            self._data = data = _dataset_lines(replay)
            self.go = self.lenient = None  # type: ignore[assignment]
            self.replays = {}
            ts = data.ts_span
            n_lines, n_carts, no_ts = int(data.lines), data.carts, int(data.no_ts)
            self._type_names = data.type_names
            type_counts = data.type_counts
            self._cart_names = np.asarray(data.cart_names, dtype=object)

        self._windows, self._unit_words = date_windows(ts)
        fmt = "%Y-%m-%d %H:00" if self._unit_words == "hour" else "%Y-%m-%d"
        self.date_labels: list[str] = [w.strftime(fmt) for w in self._windows[:-1]]
        step = chart_step(self._windows)
        self._step = step
        if len(self._windows) >= 2:
            start = self._windows[0].value
            n_bins = int((self._windows[-1] - self._windows[0]) / step)
            per_window = int((self._windows[1] - self._windows[0]) / step)
        else:
            start, n_bins, per_window = 0, 0, 1
        self._per_window = per_window
        if self._data is None:
            bins = (np.where(self._has_ts, (self._ts_ns - start) // step.value, -1)
                    if len(self._windows) >= 2 else np.full(n_lines, -1, dtype=np.int64))
            present = {m: np.bincount(self._codes[m], minlength=len(OUTCOMES)).tolist()
                       for m in MODES}
            counts = line_counts(bins, self._type_codes, self._codes["go"],
                                 self._codes["lenient"])
        else:
            # no ts window: every line in the no-ts window (-1), as line_counts has them
            self._data.count(start, step.value if len(self._windows) >= 2 else None)
            present = {m: self._data.present(m) for m in MODES}
            counts = self._data.counts()
        self.meta = {
            "lines": n_lines,
            "carts": n_carts,
            "no_ts": no_ts,
            "date_labels": self.date_labels,
            "date_unit": self._unit_words,
            "start_ms": int(start // 1_000_000),
            "step_ms": int(step.value // 1_000_000),
            "bins": n_bins,
            "per_window": per_window,
            "types": [[label_text(t, 48) if t is not None else NO_TYPE, n]
                      for t, n in zip(self._type_names, type_counts, strict=True)],
            "type_values": self._type_names,
            "outcomes": outcome_vocab()[: len(OUTCOMES)],
            "present": present,
            "rates": [[name, label, [OUTCOMES.index(o) for o in outs], RATE_COLORS[name]]
                      for name, label, outs in RATES],
            "counts": counts,
        }
        self._busy = True
        try:
            self._reset_traits()
        finally:
            self._busy = False
        self.scrubber: TimelineScrubber | None = None
        self._shown: Any = None  # the notebook display of the scrubber (to show another)
        self.refresh()

    def _replay_lines(self) -> pd.Series:
        """Per line of the replays: ts, type code, outcome codes, cart code (numpy)."""
        oc = self.go.outcomes
        ts = oc["ts"]
        self._ts_ns = np.asarray(ts.dt.as_unit("ns").array.asi8, dtype=np.int64)
        self._has_ts = ts.notna().to_numpy()
        raw, names = _codes_of(oc["type"])  # 0: no type
        counts = np.bincount(raw, minlength=len(names))
        order = [int(k) for k in np.argsort(-counts, kind="stable") if counts[k]]  # most first
        remap = np.full(len(names), -1, dtype=np.int64)
        remap[order] = np.arange(len(order))
        self._type_names: list[str | None] = [names[k] for k in order]
        self._type_codes = remap[raw]
        self._type_counts = counts[order].tolist()
        self._codes = {}
        for m in MODES:
            raw, names = _codes_of(self.replays[m].outcomes["outcome"])
            lut = np.array([OUTCOMES.index(str(o)) if o is not None else 0 for o in names])
            self._codes[m] = lut[raw]
        cart_codes, carts = pd.factorize(oc["cart_id"], sort=False)
        self._cart_codes = cart_codes.astype(np.int64)
        self._cart_names = np.asarray(carts, dtype=object)
        return ts


    # -- traits ------------------------------------------------------------------------------
    @traitlets.validate("date_index")
    def _check_dates(self, proposal: Mapping[str, Any]) -> list[int]:
        last = max(len(self.date_labels) - 1, 0)
        v = list(proposal["value"]) or [0, last]
        i0, i1 = (max(0, min(int(x), last)) for x in (v[0], v[-1]))
        return [min(i0, i1), max(i0, i1)]

    @traitlets.validate("outcomes")
    def _check_outcomes(self, proposal: Mapping[str, Any]) -> list[str]:
        bad = [o for o in proposal["value"] if o not in OUTCOMES]
        if bad:
            raise traitlets.TraitError(f"not an outcome: {bad!r} (one of {', '.join(OUTCOMES)})")
        return list(proposal["value"])

    @traitlets.validate("types")
    def _check_types(self, proposal: Mapping[str, Any]) -> list[str | None]:
        known = set(self._type_names)
        bad = [t for t in proposal["value"] if t not in known]
        if bad:
            raise traitlets.TraitError(f"no line has the type {bad!r}")
        return list(proposal["value"])

    @traitlets.observe("mode")
    def _on_mode(self, change: Mapping[str, Any]) -> None:
        # the outcome filter offers the outcomes of the mode: all of them again
        if not self._busy:
            self._busy = True
            try:
                self.outcomes = self._present_outcomes(change["new"])
            finally:
                self._busy = False
            self._maybe_refresh()

    @traitlets.observe("date_index", "types", "outcomes")
    def _on_filter(self, _change: Mapping[str, Any]) -> None:
        if not self._busy:
            self._maybe_refresh()

    @traitlets.observe("request")
    def _on_request(self, change: Mapping[str, Any]) -> None:
        req = change["new"] or {}
        try:
            if req.get("do") == "open":
                self.open_cart(str(req["cart"]))
            elif req.get("do") == "reset":
                self.reset_filters()
        except (KeyError, ValueError, IndexError) as e:
            self.status = f"could not do that: {visible(str(e))}"

    # -- public --------------------------------------------------------------------------------
    @property
    def filtered(self) -> bool:
        """Whether a filter leaves lines out (False: every line of the source)."""
        if self._data is not None:
            return self._answer()[0] != self.meta["lines"]
        return not bool(self.mask().all())

    def mask(self) -> np.ndarray:
        """Which lines (rows of the replays' ``outcomes``) pass the filters (a replay's
        dashboard: a dataset's lines are not in the kernel, see :meth:`worst_carts`)."""
        if self._data is not None:
            raise ValueError("a dataset's dashboard holds no lines in the kernel: see "
                             "view, worst_carts() or cartforensics.sql")
        return self._mask_of(self._ts_ns, self._has_ts, self._type_codes,
                             self._codes[self.mode])

    def _mask_of(self, ts_ns: np.ndarray, has_ts: np.ndarray, type_codes: np.ndarray,
                 codes: np.ndarray) -> np.ndarray:
        keep = np.ones(len(ts_ns), dtype=bool)
        if len(self._windows) >= 2:
            i0, i1 = self.date_index
            if not (i0 == 0 and i1 == len(self._windows) - 2):
                lo = self._windows[i0].value
                hi = self._windows[i1 + 1].value
                keep &= has_ts & (ts_ns >= lo) & (ts_ns < hi)
        if len(self.types) != len(self._type_names):
            chosen = np.zeros(len(self._type_names), dtype=bool)
            chosen[[self._type_names.index(t) for t in self.types]] = True
            keep &= chosen[type_codes]
        outs = np.zeros(len(OUTCOMES), dtype=bool)
        outs[[OUTCOMES.index(o) for o in self.outcomes]] = True
        keep &= outs[codes]
        return keep

    def _where(self) -> str:
        """The filters as a condition on the dataset's table of counts."""
        assert self._data is not None
        bins = None
        if len(self._windows) >= 2:
            i0, i1 = self.date_index
            if not (i0 == 0 and i1 == len(self._windows) - 2):
                bins = (i0 * self._per_window, (i1 + 1) * self._per_window)
        types = (None if len(self.types) == len(self._type_names)
                 else [self._type_names.index(t) for t in self.types])
        return self._data.where(bins, types, [OUTCOMES.index(o) for o in self.outcomes],
                                self.mode)

    def _answer(self) -> tuple[int, pd.DataFrame, list[int]]:
        """(lines the filters keep, worst_carts(), the outcome mix in the mode)."""
        if self._data is None:
            m = self.mask()
            mix = np.bincount(self._codes[self.mode][m], minlength=len(OUTCOMES)).tolist()
            return int(m.sum()), self._worst_of(m), mix
        where = self._where()
        t = self._data.per_cart(where)
        key = f"problems_{self.mode}"
        order = np.lexsort((t["_c"].to_numpy(), -t["lost"].to_numpy(), -t[key].to_numpy()))
        worst = t.iloc[order].drop(columns="_c")
        return int(worst["lines"].sum()), worst, self._data.mix(where, self.mode)

    def worst_carts(self) -> pd.DataFrame:
        """Per cart, over the filtered lines: lines, problem lines in both modes and lines
        lost (applied only in lenient mode), the worst first (most problem lines in the
        chosen mode, then most lost, then the cart id)."""
        return self._answer()[1]

    def _worst_of(self, m: np.ndarray) -> pd.DataFrame:
        cc = self._cart_codes[m]
        a = self._codes["go"][m] != 0
        b = self._codes["lenient"][m] != 0
        k = len(self._cart_names)
        t = pd.DataFrame({
            "lines": np.bincount(cc, minlength=k),
            "problems_go": np.bincount(cc, weights=a, minlength=k).astype(np.int64),
            "problems_lenient": np.bincount(cc, weights=b, minlength=k).astype(np.int64),
            "lost": np.bincount(cc, weights=~b & a, minlength=k).astype(np.int64),
        }, index=pd.Index(self._cart_names, name="cart_id"))
        t = t[t["lines"] > 0]
        key = f"problems_{self.mode}"
        t = t.assign(_id=t.index).sort_values([key, "lost", "_id"],
                                              ascending=[False, False, True], kind="stable")
        return t.drop(columns="_id")

    def refresh(self) -> None:
        """Send what needs every line for the current filters: lines and carts matched, the
        outcome mix and the worst carts (the page redraws the charts from :attr:`meta`)."""
        self.redraws += 1
        self._last_key = self._filter_key()
        self.status = ""  # what "open" said was about the filters before
        lines, worst, mix = self._answer()
        top = worst.head(self.top)
        rows = [[visible(str(c)), str(c), int(a), int(b), int(d), int(e)]
                for c, a, b, d, e in zip(top.index, top["lines"], top["problems_go"],
                                         top["problems_lenient"], top["lost"], strict=True)]
        self.view = {
            "key": self.redraws,
            "mode": self.mode,
            "lines": lines,
            "carts": len(worst),
            "mix": mix,
            "worst": rows,
            "more": max(0, len(worst) - self.top),
            "filtered": lines != self.meta["lines"],
        }

    def reset_filters(self) -> None:
        """Every line again (all dates, types and outcomes)."""
        self._busy = True
        try:
            self._reset_traits()
        finally:
            self._busy = False
        self.refresh()

    def open_cart(self, cart_id: str) -> TimelineScrubber:
        """Open ``cart_id`` in the scrubber below the dashboard (created the first time; over
        a dataset, that cart alone is read and replayed), at the first of its lines the
        filters match (without a filter: where the scrubber opens a cart, its first line
        where go and lenient part or its first problem)."""
        if self._data is None:
            if cart_id not in self.go.cart_ids:
                raise KeyError(f"no cart {cart_id!r} in this replay")
            go, lenient = self.go, self.lenient
        else:
            if cart_id not in self._data.all_carts:
                raise KeyError(f"no cart {cart_id!r} in this dataset")
            if self._data.open is None:
                raise ValueError("a cart opens from the dataset itself: "
                                 "FleetDashboard(path of the dataset)")
            go, lenient = self._data.open(cart_id)
        if self.scrubber is None or self.scrubber.go is not go:
            fresh = TimelineScrubber(go, cart_id=cart_id, lenient=lenient, notes=self.notes)
            if self.scrubber is not None and self._shown is not None:
                self._shown.update(fresh)  # the page shows the new cart's scrubber
            self.scrubber = fresh
        else:
            self.scrubber.cart_id = cart_id
        rows = np.asarray(go.rows_of(cart_id), dtype=np.int64)
        m = self.mask()[rows] if self._data is None else self._cart_mask(go, lenient, rows)
        hits = np.flatnonzero(m)
        where = ""
        if self.view.get("filtered") and len(hits):
            self.scrubber.seek(line=int(hits[0]) + 1)
            where = ": the first line the filters match"
        p = self.scrubber.position
        self.status = (f"{visible(cart_id)} opened in the scrubber below, at "
                       f"{'the start' if p == 0 else f'line {p:,}'}{where}")
        return self.scrubber

    def _cart_mask(self, go: Replay, lenient: Replay, rows: np.ndarray) -> np.ndarray:
        """The filters over one cart's lines (its own replays' rows ``rows``)."""
        oc = go.outcomes.iloc[rows]
        ts = oc["ts"]
        index = {t: k for k, t in enumerate(self._type_names)}
        types = np.array([index.get(None if pd.isna(t) else str(t), -1) for t in oc["type"]],
                         dtype=np.int64)
        known = types >= 0
        r = (go if self.mode == "go" else lenient).outcomes["outcome"].iloc[rows]
        codes = np.array([OUTCOMES.index(str(o)) if not pd.isna(o) else 0 for o in r],
                         dtype=np.int64)
        keep = self._mask_of(np.asarray(ts.dt.as_unit("ns").array.asi8, dtype=np.int64),
                             ts.notna().to_numpy(), np.where(known, types, 0), codes)
        return keep & known

    # -- display -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        v = self.view or {}
        return (f"FleetDashboard({v.get('lines', 0):,} of {self.meta.get('lines', 0):,} lines, "
                f"{v.get('carts', 0):,} carts, {self.mode})")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return with_text_form(super()._repr_mimebundle_(**kwargs), repr(self))

    def _ipython_display_(self) -> None:
        """In a notebook: the dashboard, and below it the scrubber that "open" fills (the
        worst cart at first)."""
        from IPython.display import display

        data, meta = self._repr_mimebundle_()
        display(data, metadata=meta, raw=True)
        if self.scrubber is None and self.view.get("worst"):
            self.open_cart(self.view["worst"][0][1])
        if self.scrubber is not None:
            self._shown = display(self.scrubber, display_id=True)

    # -- internals -----------------------------------------------------------------------------
    def _present_outcomes(self, mode: str) -> list[str]:
        present = self.meta["present"][mode]
        return [o for k, o in enumerate(OUTCOMES) if present[k]]

    def _reset_traits(self) -> None:
        self.date_index = [0, max(len(self.date_labels) - 1, 0)]
        self.types = list(self._type_names)
        self.outcomes = self._present_outcomes(self.mode)

    def _filter_key(self) -> Any:
        return (tuple(self.date_index), tuple(self.types), tuple(self.outcomes), self.mode)

    def _maybe_refresh(self) -> None:
        # a page sends several filters at once: redraw once for them
        if self._filter_key() != self._last_key:
            self.refresh()


__all__ = ["MAX_CHART_WINDOWS", "RATES", "FleetDashboard", "chart_step", "date_windows",
           "line_counts"]
