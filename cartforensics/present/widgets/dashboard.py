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

>>> ev = cf.read_events("sample_data")                             # doctest: +SKIP
>>> FleetDashboard(cf.replay(ev))                                  # doctest: +SKIP
FleetDashboard(1,540 of 1,540 lines, 300 carts, go)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import anywidget
import numpy as np
import pandas as pd
import traitlets

from cartforensics.analysis.notes import Notes
from cartforensics.model.replay import Replay
from cartforensics.present.escaping import visible
from cartforensics.present.widgets.common import label_text, replay_pair
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

    def __init__(self, replay: Replay, lenient: Replay | None = None, *, top: int = 10,
                 notes: Notes | str | os.PathLike[str] | None = None):
        super().__init__()
        self.notes = notes if isinstance(notes, Notes) else Notes(notes)
        self.go, self.lenient = replay_pair(replay, lenient)
        self.replays = {"go": self.go, "lenient": self.lenient}
        self.top = top
        self.redraws = 0
        self._busy = False
        self._last_key: Any = None
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
        type_counts = counts[order].tolist()
        self._codes = {}
        for m in MODES:
            raw, names = _codes_of(self.replays[m].outcomes["outcome"])
            lut = np.array([OUTCOMES.index(str(o)) if o is not None else 0 for o in names])
            self._codes[m] = lut[raw]
        cart_codes, carts = pd.factorize(oc["cart_id"], sort=False)
        self._cart_codes = cart_codes.astype(np.int64)
        self._cart_names = np.asarray(carts, dtype=object)

        self._windows, self._unit_words = date_windows(ts)
        fmt = "%Y-%m-%d %H:00" if self._unit_words == "hour" else "%Y-%m-%d"
        self.date_labels: list[str] = [w.strftime(fmt) for w in self._windows[:-1]]
        step = chart_step(self._windows)
        self._step = step
        if len(self._windows) >= 2:
            start = self._windows[0].value
            bins = np.where(self._has_ts, (self._ts_ns - start) // step.value, -1)
            n_bins = int((self._windows[-1] - self._windows[0]) / step)
            per_window = int((self._windows[1] - self._windows[0]) / step)
        else:
            start, n_bins, per_window = 0, 0, 1
            bins = np.full(len(oc), -1, dtype=np.int64)
        present = {m: np.bincount(self._codes[m], minlength=len(OUTCOMES)) for m in MODES}
        self.meta = {
            "lines": len(oc),
            "carts": len(self.go.cart_ids),
            "no_ts": int((~self._has_ts).sum()),
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
            "present": {m: present[m].tolist() for m in MODES},
            "rates": [[name, label, [OUTCOMES.index(o) for o in outs], RATE_COLORS[name]]
                      for name, label, outs in RATES],
            "counts": line_counts(bins, self._type_codes, self._codes["go"],
                                  self._codes["lenient"]),
        }
        self._busy = True
        try:
            self._reset_traits()
        finally:
            self._busy = False
        self.scrubber: TimelineScrubber | None = None
        self.refresh()

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
        """Whether a filter leaves lines out (False: every line of the replay)."""
        return not bool(self.mask().all())

    def mask(self) -> np.ndarray:
        """Which lines (rows of the replays' ``outcomes``) pass the filters."""
        n = len(self._ts_ns)
        keep = np.ones(n, dtype=bool)
        if len(self._windows) >= 2:
            i0, i1 = self.date_index
            if not (i0 == 0 and i1 == len(self._windows) - 2):
                lo = self._windows[i0].value
                hi = self._windows[i1 + 1].value
                keep &= self._has_ts & (self._ts_ns >= lo) & (self._ts_ns < hi)
        if len(self.types) != len(self._type_names):
            chosen = np.zeros(len(self._type_names), dtype=bool)
            chosen[[self._type_names.index(t) for t in self.types]] = True
            keep &= chosen[self._type_codes]
        outs = np.zeros(len(OUTCOMES), dtype=bool)
        outs[[OUTCOMES.index(o) for o in self.outcomes]] = True
        keep &= outs[self._codes[self.mode]]
        return keep

    def worst_carts(self) -> pd.DataFrame:
        """Per cart, over the filtered lines: lines, problem lines in both modes and lines
        lost (applied only in lenient mode), the worst first (most problem lines in the
        chosen mode, then most lost, then the cart id)."""
        m = self.mask()
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
        m = self.mask()
        worst = self.worst_carts()
        mix = np.bincount(self._codes[self.mode][m], minlength=len(OUTCOMES))
        rows = [[visible(str(c)), str(c), int(r["lines"]), int(r["problems_go"]),
                 int(r["problems_lenient"]), int(r["lost"])]
                for c, r in worst.head(self.top).iterrows()]
        self.view = {
            "key": self.redraws,
            "mode": self.mode,
            "lines": int(m.sum()),
            "carts": len(worst),
            "mix": mix.tolist(),
            "worst": rows,
            "more": max(0, len(worst) - self.top),
            "filtered": not bool(m.all()),
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
        """Open ``cart_id`` in the scrubber below the dashboard (created the first time), at
        the first of its lines the filters match (without a filter: where the scrubber opens
        a cart, its first line where go and lenient part or its first problem)."""
        if cart_id not in self.go.cart_ids:
            raise KeyError(f"no cart {cart_id!r} in this replay")
        if self.scrubber is None:
            self.scrubber = TimelineScrubber(self.go, cart_id=cart_id, lenient=self.lenient,
                                             notes=self.notes)
        else:
            self.scrubber.cart_id = cart_id
        m = self.mask()
        rows = np.asarray(self.go.rows_of(cart_id), dtype=np.int64)
        hits = np.flatnonzero(m[rows])
        where = ""
        if not m.all() and len(hits):
            self.scrubber.seek(line=int(hits[0]) + 1)
            where = ": the first line the filters match"
        p = self.scrubber.position
        self.status = (f"{visible(cart_id)} opened in the scrubber below, at "
                       f"{'the start' if p == 0 else f'line {p:,}'}{where}")
        return self.scrubber

    # -- display -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        v = self.view or {}
        return (f"FleetDashboard({v.get('lines', 0):,} of {len(self._ts_ns):,} lines, "
                f"{v.get('carts', 0):,} carts, {self.mode})")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data, meta = bundle if isinstance(bundle, tuple) else (bundle, {})
        data = dict(data or {})
        data["text/plain"] = repr(self)
        return data, meta

    def _ipython_display_(self) -> None:
        """In a notebook: the dashboard, and below it the scrubber that "open" fills (the
        worst cart at first)."""
        from IPython.display import display

        data, meta = self._repr_mimebundle_()
        display(data, metadata=meta, raw=True)
        if self.scrubber is None and self.view.get("worst"):
            self.open_cart(self.view["worst"][0][1])
        if self.scrubber is not None:
            display(self.scrubber)

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
