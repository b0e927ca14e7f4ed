"""The fleet dashboard: every line of a replay filtered by date, type and outcome (see
:mod:`cartforensics.present.widgets`)."""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from cartforensics.analysis.notes import Notes
from cartforensics.model.replay import Replay
from cartforensics.present.plots import pick_freq, plot_outcome_mix, plot_rates
from cartforensics.present.widgets.common import CSS, esc, label_text, replay_pair, str_or_none
from cartforensics.present.widgets.scrubber import TimelineScrubber
from cartforensics.vocab import MODES, OUTCOME_LABELS, OUTCOMES


def _png(fig: Any, dpi: int = 80) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


class FleetDashboard(widgets.VBox):
    """Every line of a replay, filtered by date range, type and outcome: failure-rate and
    outcome charts (from :mod:`cartforensics.present.plots`) redrawn on every change, a table of the
    worst carts, and the chosen cart opened in a :class:`TimelineScrubber` below.

    ``replay``: a go-mode :class:`~cartforensics.model.replay.Replay`; ``lenient``: the lenient one
    of the same events (replayed when not given); ``top``: rows of the worst-carts table;
    ``notes``: the notes (or notes file) the scrubber below writes to.
    """

    def __init__(self, replay: Replay, lenient: Replay | None = None, *, top: int = 15,
                 notes: Notes | str | os.PathLike[str] | None = None):
        self.notes = notes if isinstance(notes, Notes) else Notes(notes)
        self.go, self.lenient = replay_pair(replay, lenient)
        self.replays = {"go": self.go, "lenient": self.lenient}
        self.top = top
        self.redraws = 0
        self.scrubber: TimelineScrubber | None = None
        self._busy = False
        oc = self.go.outcomes
        self._ts = oc["ts"]
        self._ts_ns = np.asarray(self._ts.dt.as_unit("ns").array.asi8, dtype=np.int64)
        self._has_ts = self._ts.notna().to_numpy()
        self._types = np.array([str_or_none(v) for v in oc["type"].to_numpy()], dtype=object)
        self._outcomes = {m: self.replays[m].outcomes["outcome"].astype(str).to_numpy()
                          for m in MODES}
        lay = widgets.Layout

        # date range over whole days (hours when the logs span 3 days or less)
        self._windows, unit_words = self._date_windows()
        labels = [w.strftime("%Y-%m-%d %H:00" if unit_words == "hour" else "%Y-%m-%d")
                  for w in self._windows[:-1]] or ["(no readable ts)"]
        self.date_range = widgets.SelectionRangeSlider(
            options=[(lab, k) for k, lab in enumerate(labels)], index=(0, len(labels) - 1),
            description="dates", continuous_update=False, readout=False,
            layout=lay(flex="1 1 auto", max_width="760px"),
            style={"description_width": "70px"})
        self.date_html = widgets.HTML()
        self.date_range.disabled = len(self._windows) < 2
        self._unit_words = unit_words
        types = Counter(self._types.tolist()).most_common()
        type_opts = [(f"{label_text(t) if t is not None else '(no type)'}  ({n:,})", t)
                     for t, n in types]
        self.type_filter = widgets.SelectMultiple(
            options=type_opts, value=tuple(v for _, v in type_opts), rows=7,
            description="types", layout=lay(width="340px"),
            style={"description_width": "70px"})
        self.mode = widgets.ToggleButtons(
            options=[("go (the service)", "go"), ("lenient (the writer)", "lenient")],
            value="go", description="mode", style={"button_width": "150px",
                                                  "description_width": "50px"})
        self.outcome_filter = widgets.SelectMultiple(
            options=[], rows=7, description="outcomes", layout=lay(width="300px"),
            style={"description_width": "70px"})
        self._fill_outcomes()
        self.reset_button = widgets.Button(description="all lines", tooltip="clear the filters",
                                           layout=lay(width="100px"))
        self.summary_html = widgets.HTML()
        self.rates_image = widgets.Image(format="png", layout=lay(width="100%",
                                                                  max_width="1000px"))
        self.mix_image = widgets.Image(format="png", layout=lay(width="100%",
                                                                max_width="1000px"))
        self.worst_html = widgets.HTML()
        self.cart_select = widgets.Select(options=[], rows=10, description="open cart",
                                          layout=lay(width="420px", margin="28px 0 0 0"),
                                          style={"description_width": "70px"})
        self.scrubber_box = widgets.VBox(layout=lay(width="100%"))

        for w in (self.date_range, self.type_filter, self.outcome_filter):
            w.observe(self._on_filter, names="value")
        self.mode.observe(self._on_mode, names="value")
        self.reset_button.on_click(lambda _b: self.reset_filters())
        self.cart_select.observe(self._on_cart, names="value")

        head = widgets.HTML(
            CSS + '<div class="cfw"><h4>Fleet: every line of every cart</h4><div '
            'class="cfw-sub">Filter the lines; the charts and the worst carts follow. Choose a '
            "cart to scrub through it below.</div></div>")
        filters = widgets.HBox([self.type_filter, self.outcome_filter,
                                widgets.VBox([self.mode, self.reset_button])],
                               layout=lay(flex_flow="row wrap", grid_gap="8px"))
        dates = widgets.HBox([self.date_range, self.date_html],
                             layout=lay(align_items="center", width="100%"))
        worst = widgets.HBox([self.worst_html, self.cart_select],
                             layout=lay(align_items="flex-start", flex_flow="row wrap",
                                        grid_gap="16px"))
        super().__init__([head, dates, filters, self.summary_html, self.rates_image,
                          self.mix_image, worst,
                          self.scrubber_box], layout=lay(width="100%"))
        self.add_class("cf-dashboard")
        self.refresh()

    # -- public --------------------------------------------------------------------------------
    def mask(self) -> np.ndarray:
        """Which lines (rows of the replays' ``outcomes``) pass the filters."""
        n = len(self._ts_ns)
        keep = np.ones(n, dtype=bool)
        if len(self._windows) >= 2:
            i0, i1 = self.date_range.index
            full = i0 == 0 and i1 == len(self._windows) - 2
            if not full:
                lo = self._windows[i0].value
                hi = self._windows[i1 + 1].value
                keep &= self._has_ts & (self._ts_ns >= lo) & (self._ts_ns < hi)
        chosen = set(self.type_filter.value)
        if len(chosen) != len(self.type_filter.options):
            keep &= np.fromiter((t in chosen for t in self._types), dtype=bool, count=n)
        outs = set(self.outcome_filter.value)
        keep &= np.isin(self._outcomes[self.mode.value], list(outs))
        return keep

    def worst_carts(self) -> pd.DataFrame:
        """Per cart, over the filtered lines: lines, problem lines in both modes and lines
        lost (applied only in lenient mode), the worst first (most problem lines in the
        chosen mode, then most lost)."""
        m = self.mask()
        a, b = self._outcomes["go"][m], self._outcomes["lenient"][m]
        frame = pd.DataFrame({
            "cart_id": self.go.outcomes["cart_id"].astype(str).to_numpy()[m],
            "lines": 1,
            "problems_go": (a != "applied").astype(int),
            "problems_lenient": (b != "applied").astype(int),
            "lost": ((b == "applied") & (a != "applied")).astype(int),
        })
        t = frame.groupby("cart_id", sort=False).sum()
        key = f"problems_{self.mode.value}"
        t = t.assign(_id=t.index).sort_values([key, "lost", "_id"],
                                              ascending=[False, False, True], kind="stable")
        return t.drop(columns="_id")

    def refresh(self) -> None:
        """Redraw the charts, the summary and the worst carts for the current filters."""
        self.redraws += 1
        mode = self.mode.value
        m = self.mask()
        rp = self.replays[mode]
        oc = rp.outcomes[m].reset_index(drop=True)
        # the plots module reads only .outcomes and .mode of a replay
        view = SimpleNamespace(outcomes=oc, mode=mode)
        freq = pick_freq(oc["ts"])
        self.rates_image.value = _png(plot_rates(view, freq=freq))  # type: ignore[arg-type]
        self.mix_image.value = _png(plot_outcome_mix(view, freq=freq))  # type: ignore[arg-type]
        n_all = len(m)
        counts = pd.Series(self._outcomes[mode][m]).value_counts()
        mix = " · ".join(f"{OUTCOME_LABELS[o]} {int(counts[o]):,}" for o in OUTCOMES
                         if o in counts.index)
        self.summary_html.value = (
            f'<div class="cfw"><div class="cfw-meta"><span><b>{int(m.sum()):,}</b> of '
            f"{n_all:,} lines</span><span>{int(pd.unique(oc['cart_id']).size):,} of "
            f"{len(self.go.cart_ids):,} carts</span><span>{esc(mix) or 'no lines'}</span>"
            "</div></div>")
        self.date_html.value = self._date_text()
        worst = self.worst_carts().head(self.top)
        self.worst_html.value = _worst_html(worst, mode)
        opts = [(f"{label_text(c, 40)}  ·  {int(r['problems_' + mode]):,} problems  ·  "
                 f"{int(r['lost']):,} lost", c) for c, r in worst.iterrows()]
        self._busy = True
        try:
            current = self.cart_select.value
            self.cart_select.options = opts
            self.cart_select.value = current if current in [v for _, v in opts] else None
        finally:
            self._busy = False

    def reset_filters(self) -> None:
        """Every line again (all dates, types and outcomes)."""
        self._busy = True
        try:
            if len(self._windows) >= 2:
                self.date_range.index = (0, len(self._windows) - 2)
            self.type_filter.value = tuple(v for _, v in self.type_filter.options)
            self.outcome_filter.value = tuple(v for _, v in self.outcome_filter.options)
        finally:
            self._busy = False
        self.refresh()

    def open_cart(self, cart_id: str) -> TimelineScrubber:
        """Open ``cart_id`` in the scrubber below the table (created the first time)."""
        if self.scrubber is None:
            self.scrubber = TimelineScrubber(self.go, cart_id=cart_id, lenient=self.lenient,
                                             notes=self.notes)
            self.scrubber_box.children = (self.scrubber,)
        else:
            self.scrubber.cart_id = cart_id
        return self.scrubber

    # -- internals -----------------------------------------------------------------------------
    def _date_windows(self) -> tuple[pd.DatetimeIndex, str]:
        ts = self._ts.dropna()
        if ts.empty:
            return pd.DatetimeIndex([]), "day"
        lo, hi = ts.min(), ts.max()
        unit, words = ("1h", "hour") if hi - lo <= pd.Timedelta(days=3) else ("1D", "day")
        if words == "day" and (hi - lo) > pd.Timedelta(days=400):
            unit, words = "7D", "week"
        start = lo.floor(unit)
        edges = pd.date_range(start, hi.floor(unit) + pd.Timedelta(unit), freq=unit)
        return edges, words

    def _date_text(self) -> str:
        if len(self._windows) < 2:
            return '<span class="cfw cfw-note">no line has a readable ts</span>'
        i0, i1 = self.date_range.index
        fmt = "%Y-%m-%d %H:00" if self._unit_words == "hour" else "%Y-%m-%d"
        lo = self._windows[i0].strftime(fmt)
        hi = (self._windows[i1 + 1] - pd.Timedelta(1, "ns")).strftime(fmt)
        whole = i0 == 0 and i1 == len(self._windows) - 2
        note = (" (all; lines without a readable ts included)" if whole
                else " (lines without a readable ts left out)")
        return (f'<span class="cfw"><b>{esc(lo)}</b> to <b>{esc(hi)}</b> UTC'
                f'<span class="cfw-sub">{esc(note)}</span></span>')

    def _fill_outcomes(self) -> None:
        present = pd.Series(self._outcomes[self.mode.value]).value_counts()
        opts = [(f"{OUTCOME_LABELS[o]}  ({int(present.get(o, 0)):,})", o) for o in OUTCOMES
                if present.get(o, 0)]
        self._busy = True
        try:
            self.outcome_filter.options = opts
            self.outcome_filter.value = tuple(v for _, v in opts)
        finally:
            self._busy = False

    def _on_filter(self, _change: Any) -> None:
        if not self._busy:
            self.refresh()

    def _on_mode(self, _change: Any) -> None:
        self._fill_outcomes()
        self.refresh()

    def _on_cart(self, change: Mapping[str, Any]) -> None:
        if not self._busy and change["new"] is not None:
            self.open_cart(change["new"])


def _worst_html(worst: pd.DataFrame, mode: str) -> str:
    if worst.empty:
        return '<div class="cfw cfw-note">no line passes the filters</div>'
    rows = "".join(
        f"<tr><td>{esc(c)}</td><td class=\"cfw-num\">{int(r['lines']):,}</td>"
        f"<td class=\"cfw-num\">{int(r['problems_go']):,}</td>"
        f"<td class=\"cfw-num\">{int(r['problems_lenient']):,}</td>"
        f"<td class=\"cfw-num\">{int(r['lost']):,}</td></tr>"
        for c, r in worst.iterrows()
    )
    return (f'<div class="cfw"><h4>Worst carts (most problem lines in {esc(mode)} mode)</h4>'
            '<table class="cfw-compact"><thead><tr><th>cart</th><th class="cfw-num">lines</th>'
            '<th class="cfw-num">problems (go)</th><th class="cfw-num">problems (lenient)</th>'
            '<th class="cfw-num">lost</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")
