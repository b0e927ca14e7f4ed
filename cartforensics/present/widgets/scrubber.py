"""The time-travel scrubber over one cart's lines (see :mod:`cartforensics.present.widgets`)."""

from __future__ import annotations

import copy
import json
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from cartforensics.analysis.notes import STANDARD_TAGS, Notes, NotesError
from cartforensics.go.json import marshal
from cartforensics.model.blame import blame_index, parting_index
from cartforensics.model.blame import leaves as _investigate_leaves
from cartforensics.model.cart import empty_cart, same_value, state_to_json
from cartforensics.model.replay import Replay, ReplayWithout, diff_states
from cartforensics.present.widgets.common import (
    CSS,
    FIELD_LABELS,
    MAX_CART_OPTIONS,
    SKIPPED,
    badge,
    cart_table,
    empty_diff,
    esc,
    format_field,
    label_text,
    mark_escapes,
    money_text,
    parse_time,
    pretty_line,
    replay_pair,
    state_html,
    str_or_none,
    when_text,
)
from cartforensics.present.widgets.strip import strip_cursor_html, strip_frame_html, strip_row_html
from cartforensics.vocab import APPLIED, MODES, OUTCOMES

# an outcome code per position: OUTCOMES' indices, and one more for a line switched off
SKIPPED_CODE = len(OUTCOMES)
APPLIED_CODE = APPLIED
_OUTCOME_NAMES = np.array([*OUTCOMES, SKIPPED], dtype=object)
BLAME_AUTO_LINES = 2000  # blame is read at once for carts up to this many lines
CONTEXT_ROWS = 200  # rows of the context table shown
BLAME_ROWS = 400  # fields listed in each blame (the cart's own first; scrubber.blame() has all)
STATES_KEPT = 16  # states kept per side (the positions last shown and their neighbours)
SKIP_SETS_KEPT = 4  # the last sets of skipped lines whose sides are kept (toggling back)


class _Side:
    """One mode's view of the current cart: outcomes per position and states, with the
    analyst's skipped lines left out (:meth:`Replay.without`: the cart replayed without
    them, only from the first skipped line on). What is derived from it (problem lines, the
    strip's row, states shown) is kept with it: the side without skips is kept for the
    cart, so that switching the last skip off again redraws from what was kept."""

    def __init__(self, rp: Replay, cart_id: str, rows: np.ndarray, skipped: np.ndarray):
        self.replay = rp
        self.cart_id = cart_id
        n = len(rows)
        #: per position: the outcome's index in OUTCOMES, or SKIPPED_CODE
        self.codes = np.full(n, SKIPPED_CODE, dtype=np.int8)
        changed = np.zeros(n + 1, dtype=bool)
        self._skipped = skipped
        if not skipped.any():
            self.sub: ReplayWithout | None = None
            self.counts = np.arange(n + 1)
            self.has_cart = True
            kept = np.arange(n)
            codes = rp.outcome_codes(cart_id)
            errors = [str_or_none(v) for v in rp.outcomes["error"].iloc[rows].tolist()]
            flags = rp.changed(cart_id)
        else:
            sub = rp.without(cart_id, np.flatnonzero(skipped) + 1)
            self.sub = sub
            self.counts = np.r_[0, np.cumsum(~skipped)]
            self.has_cart = sub.has_cart
            kept = np.flatnonzero(~skipped)
            if self.has_cart:
                codes = sub.outcome_codes(cart_id)
                errors = sub.errors(cart_id)
                flags = sub.changed(cart_id)
            else:
                kept = kept[:0]
                codes = np.zeros(0, dtype=np.int8)
                errors = []
                flags = np.zeros(0, dtype=bool)
        self.codes[kept] = codes
        self._errors: list[str | None] = errors  # per kept line
        # an applied line moves lastChange even where the state object stays the same
        changed[kept + 1] = flags | (codes == APPLIED_CODE)
        #: per position: whether the line that leads to it changed the cart (0: False)
        self.changed: np.ndarray = changed
        #: positions whose line was not applied (skipped lines left out)
        self.problems: np.ndarray = (np.flatnonzero(
            (self.codes != APPLIED_CODE) & (self.codes != SKIPPED_CODE)) + 1).astype(np.int64)
        #: per position - 1: whether the line was applied
        self.applied: np.ndarray = self.codes == APPLIED_CODE
        #: the states last asked for, by position (at most STATES_KEPT)
        self.states: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._strip_rows: dict[str, str] = {}

    def outcome_at(self, k: int) -> str:
        """The outcome of the cart's line ``k + 1`` (``skipped`` for a line switched off)."""
        return _OUTCOME_NAMES[self.codes[k]]

    def error_at(self, k: int) -> str | None:
        """The error text of the cart's line ``k + 1`` (None: none, or switched off)."""
        if self._skipped[k]:
            return None
        return self._errors[int(self.counts[k + 1]) - 1]

    @property
    def outcome(self) -> list[str]:
        """:meth:`outcome_at` of every line."""
        return _OUTCOME_NAMES[self.codes].tolist()

    @property
    def error(self) -> list[str | None]:
        """:meth:`error_at` of every line."""
        return [self.error_at(k) for k in range(len(self.codes))]

    def strip_row(self, mode: str) -> str:
        """This side's row of the timeline strip (drawn once per side)."""
        row = self._strip_rows.get(mode)
        if row is None:
            row = self._strip_rows[mode] = strip_row_html(mode, self.codes)
        return row

    def state(self, p: int) -> dict[str, Any]:
        if self.sub is None:
            return self.replay.state_at(self.cart_id, line=p)
        c = int(self.counts[p])
        if not self.has_cart:
            return state_to_json(empty_cart(self.cart_id))
        return self.sub.state_at(self.cart_id, line=c)

    def history(self) -> pd.DataFrame:
        if self.sub is None:
            return self.replay.history(self.cart_id)
        if not self.has_cart:
            return self.replay.history(self.cart_id).iloc[:0]
        return self.sub.history(self.cart_id)


def _notes_html(notes: Sequence[Mapping[str, Any]], where: str) -> str:
    """The notes on the line shown, escaped."""
    if not notes:
        return f'<div class="cfw cfw-note">no note on {esc(where)}</div>'
    out = []
    for n in notes:
        tags = "".join(f'<span class="cfw-tag">{esc(t)}</span>' for t in n.get("tags", []))
        who = " · ".join(esc(v) for v in (n.get("author"), n.get("created")) if v)
        out.append(f'<div class="cfw-noted">{tags}<div class="cfw-note-text">'
                   f'{mark_escapes(str(n.get("note", "")), keep_newlines=True)}</div>'
                   f'<div class="cfw-sub">{who}</div></div>')
    return f'<div class="cfw"><div class="cfw-sub">notes on {esc(where)}</div>{"".join(out)}</div>'


def _note_label(n: Mapping[str, Any]) -> str:
    tags = ", ".join(n.get("tags", []))
    text = " ".join(str(n.get("note", "")).split())
    return label_text(f"{n['cart_id']} · line {n['line']} · {tags or 'no tag'} · {text}", 90)


def _value_text(v: Any) -> str:
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return str(v)


def _offset_text(td: pd.Timedelta) -> str:
    s = int(td.total_seconds())
    sign = "-" if s < 0 else "+"
    s = abs(s)
    return f"{sign}{s // 60}m{s % 60:02d}s"


def _context_html(ctx: pd.DataFrame, lenient_outcome: Sequence[str], limit: int) -> str:
    if ctx.empty:
        why = ctx.attrs.get("reason", "")
        return ('<div class="cfw cfw-note">no line of another cart in this window'
                + (f" ({esc(why)})" if "no line" in why else "") + "</div>")
    rows = []
    for (_, r), lo in zip(ctx.head(limit).iterrows(), lenient_outcome, strict=False):
        rows.append(f"<tr><td>{esc(when_text(r['ts']))}</td><td>{esc(_offset_text(r['offset']))}</td>"
                    f"<td>{esc(r['cart_id'])}</td><td class=\"cfw-num\">{int(r['line']):,}</td>"
                    f"<td>{esc(r['type']) if r['type'] is not None else '–'}</td>"
                    f"<td>{badge(r['outcome'])}</td><td>{badge(lo)}</td></tr>")
    more = (f'<div class="cfw-note">… {len(ctx) - limit:,} more lines in the window not '
            "shown</div>" if len(ctx) > limit else "")
    return ('<div class="cfw"><table class="cfw-context"><thead><tr><th>ts</th><th>offset</th>'
            '<th>cart</th><th class="cfw-num">line</th><th>type</th><th>go</th><th>lenient</th>'
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}</div>")


_WORKBENCH_CSS = """
<style>
.cfw-strip{display:grid;grid-template-columns:64px 1fr;align-items:center;gap:2px 6px;
 margin:2px 0}
.cfw-strip svg{display:block;width:100%;border-radius:2px}
.cfw-strip svg.cfw-strip-go,.cfw-strip svg.cfw-strip-lenient{background:#eee}
.cfw-strip-label{font-size:11px;color:var(--jp-ui-font-color2,#666);text-align:right;
 white-space:nowrap;overflow:hidden}
.cfw-strip-note{margin-left:70px;font-size:11px}
.cfw-tag{display:inline-block;padding:0 6px;margin-right:4px;border-radius:8px;font-size:11px;
 background:#efe3f5;color:#4a1f5e;border:1px solid #d5b8e3}
.cfw-noted{border-left:3px solid #7B3294;padding:2px 8px;margin:4px 0}
.cfw-note-text{white-space:pre-wrap;word-break:break-word}
.cf-scrubber .cf-blame select{font-family:var(--jp-code-font-family,monospace);font-size:11px}
.cfw table.cfw-context td{max-width:260px}
</style>
"""


# -- the scrubber -----------------------------------------------------------------------------


def _button(text: str, tip: str, cls: str, width: str, icon: str = "") -> widgets.Button:
    """A button with its tooltip, width and CSS class (the browser test finds it by class)."""
    b = widgets.Button(description=text, tooltip=tip, icon=icon,
                       layout=widgets.Layout(width=width))
    b.add_class(cls)
    return b


class TimelineScrubber(widgets.VBox):
    """Step through one cart's lines in both modes, side by side.

    ``replay``: a :class:`~cartforensics.model.replay.Replay` (go mode; a lenient one works too and
    the go one is replayed from its events); ``lenient``: the lenient-mode replay of the same
    events (replayed when not given); ``cart_id``: the cart to open (default: the one with
    the most problem lines). Position ``p`` (the slider, 0 … lines) shows the cart after its
    first ``p`` lines; 0 is the empty cart before line 1.

    The investigation: ``notes`` (a :class:`~cartforensics.analysis.notes.Notes`, or the path of its
    JSON file; default: notes kept in memory) gets a note box and tag buttons for the line
    shown, the line's notes, and a list of every note to jump to; a timeline strip above the
    slider marks every line's outcome in both modes, the noted lines and the position; each
    mode's blame (:meth:`Replay.blame`) sits under its state, and choosing a field jumps to
    the line that set it; a collapsible table holds the other carts' lines around this
    line's time (:meth:`Replay.context`), each opening that cart at that line.

    Python side: :attr:`cart_id` (settable), :attr:`position`, :meth:`seek`, :meth:`step`,
    :meth:`next_problem`, :meth:`prev_problem`, :meth:`toggle_skip`, :meth:`reset_skips`,
    :meth:`state`, :meth:`diff`, :meth:`history`, :meth:`to_json`, :meth:`export`,
    :meth:`add_note`, :meth:`next_note`, :meth:`prev_note`, :meth:`blame`,
    :meth:`context`, :meth:`open_line`.
    """

    def __init__(self, replay: Replay, cart_id: str | None = None,
                 lenient: Replay | None = None, *, max_rows: int = 60,
                 notes: Notes | str | os.PathLike[str] | None = None):
        self.notes = notes if isinstance(notes, Notes) else Notes(notes)
        self.go, self.lenient = replay_pair(replay, lenient)
        self.replays = {"go": self.go, "lenient": self.lenient}
        self.max_rows = max_rows
        self._busy = False
        self._cart: str | None = None
        self._rows = np.zeros(0, dtype=np.int64)
        self._skipped = np.zeros(0, dtype=bool)
        self._sides: dict[str, _Side] = {}
        self._base_sides: dict[str, _Side] | None = None  # the cart's sides without skips
        self._kept_sides: OrderedDict[bytes, dict[str, _Side]] = OrderedDict()
        self._problems: dict[str, np.ndarray] = {}
        self._parting_at: int | None = None
        self._position_of_line: dict[int, int] = {}
        carts = cart_table(self.go, self.lenient)
        order = carts.assign(_id=carts.index).sort_values(
            ["problems_go", "lost", "_id"], ascending=[False, False, True], kind="stable")
        self._carts = order.drop(columns="_id")
        self.renders = 0  # how many times the view was drawn (for tests and benchmarks)
        self._blame_on = False
        self._blame_rows: dict[str, list[int]] = {"go": [], "lenient": []}
        self._kept = np.zeros(0, dtype=np.int64)

        lay = widgets.Layout
        self.style_html = widgets.HTML(CSS + _WORKBENCH_CSS)
        self.title_html = widgets.HTML()
        self.cart_filter = widgets.Text(placeholder="filter carts by id…",
                                        continuous_update=True, layout=lay(width="260px"))
        self.cart_select = widgets.Select(options=[], rows=5, layout=lay(width="420px"))
        self.cart_count = widgets.HTML()
        self.play = widgets.Play(interval=400, min=0, max=0, step=1, show_repeat=False,
                                 description="play", tooltip="play / pause",
                                 layout=lay(width="96px"))
        self.slider = widgets.IntSlider(min=0, max=0, value=0, continuous_update=True,
                                        readout=True, description="position",
                                        layout=lay(flex="1 1 auto", min_width="240px"))
        widgets.jslink((self.play, "value"), (self.slider, "value"))

        self.prev_problem_button = _button("problem", "previous line the service did not "
                                           "apply", "cf-prev-problem", "96px", "step-backward")
        self.back_button = _button("", "step back one line", "cf-step-back", "40px",
                                   "chevron-left")
        self.forward_button = _button("", "step forward one line", "cf-step-forward", "40px",
                                      "chevron-right")
        self.next_problem_button = _button("problem", "next line the service did not apply",
                                           "cf-next-problem", "96px", "step-forward")
        self.line_input = widgets.BoundedIntText(min=0, max=0, value=0, description="line",
                                                 layout=lay(width="150px"))
        self.time_input = widgets.Text(placeholder="2025-11-01T08:03:00Z", description="time",
                                       continuous_update=False, layout=lay(width="290px"))
        self.seek_button = _button("seek", "go to the state at this time (SPEC §6)", "cf-seek",
                                   "60px")
        self.skip_button = widgets.ToggleButton(
            value=False, description="skip this line", icon="ban",
            tooltip="replay the cart as if this line had never been written",
            layout=lay(width="140px"))
        self.skip_button.add_class("cf-skip")
        self.reset_button = _button("reset skips", "replay every line again", "cf-reset",
                                    "110px")
        self.skip_html = widgets.HTML()
        self.export_button = _button("export", "state JSON and history into the output below",
                                     "cf-export", "80px")
        self.status = widgets.HTML()
        self.line_html = widgets.HTML(layout=lay(width="100%"))
        self.compare_html = widgets.HTML(layout=lay(width="100%"))
        # each in its side's column (with its blame below): full width, its own height
        self.go_html = widgets.HTML(layout=lay(width="100%", min_width="0"))
        self.lenient_html = widgets.HTML(layout=lay(width="100%", min_width="0"))
        self.go_html.add_class("cf-go-state")
        self.lenient_html.add_class("cf-lenient-state")
        self.line_html.add_class("cf-line")
        self.export_output = widgets.Output(layout=lay(width="100%"))
        self._build_workbench()

        self.cart_filter.observe(self._on_filter, names="value")
        self.cart_select.observe(self._on_select, names="value")
        self.slider.observe(self._on_slider, names="value")
        self.line_input.observe(self._on_line_input, names="value")
        self.time_input.observe(self._on_time_input, names="value")
        self.prev_problem_button.on_click(lambda _b: self.prev_problem())
        self.back_button.on_click(lambda _b: self.step(-1))
        self.forward_button.on_click(lambda _b: self.step(1))
        self.next_problem_button.on_click(lambda _b: self.next_problem())
        self.seek_button.on_click(lambda _b: self._on_time_input(None))
        self.skip_button.observe(self._on_skip_toggle, names="value")
        self.reset_button.on_click(lambda _b: self.reset_skips())
        self.export_button.on_click(lambda _b: self.export())

        row = widgets.HBox
        controls = widgets.VBox([
            row([self.cart_filter, self.cart_count],
                layout=lay(align_items="center")),
            self.cart_select,
            self.strip_html,
            self.strip_cursor,
            row([self.play, self.prev_problem_button, self.back_button, self.slider,
                 self.forward_button, self.next_problem_button],
                layout=lay(align_items="center", width="100%")),
            row([self.line_input, self.time_input, self.seek_button, self.skip_button,
                 self.reset_button, self.export_button],
                layout=lay(align_items="center", flex_flow="row wrap")),
            self.skip_html,
        ])
        sides = row([widgets.VBox([self.go_html, self.blame_boxes["go"]],
                                  layout=lay(flex="1 1 0", min_width="0")),
                     widgets.VBox([self.lenient_html, self.blame_boxes["lenient"]],
                                  layout=lay(flex="1 1 0", min_width="0"))],
                    layout=lay(width="100%", grid_gap="10px"))
        legend = widgets.HTML(
            '<div class="cfw cfw-sub">Highlights against the previous position: '
            '<span class="cfw-legend cfw-add">added</span> '
            '<span class="cfw-legend cfw-del">removed</span> '
            '<span class="cfw-legend cfw-chg"><s>old</s> new</span>. Money in major units '
            "(the logs hold minor units: öre); the exported state JSON holds every field.</div>")
        super().__init__([self.style_html, self.title_html, controls, self.status,
                          self.line_html, self.notes_box, self.compare_html,
                          self.parting_box, sides, legend, self.context_box,
                          self.export_output], layout=lay(width="100%"))
        self.add_class("cf-scrubber")
        self._fill_cart_options("")
        first = cart_id if cart_id is not None else (
            str(self._carts.index[0]) if len(self._carts) else None)
        if first is None:
            self.title_html.value = '<div class="cfw"><h4>No carts in this replay</h4></div>'
        else:
            self.cart_id = first

    # -- public --------------------------------------------------------------------------------
    @property
    def cart_id(self) -> str | None:
        """The cart shown; set it to open another one (its skips start empty)."""
        return self._cart

    @cart_id.setter
    def cart_id(self, cart_id: str) -> None:
        if cart_id not in self.go.cart_ids:
            raise KeyError(f"no cart {cart_id!r} in this replay")
        self._open(cart_id)

    @property
    def lines(self) -> int:
        """How many lines the cart has (the slider's maximum)."""
        return len(self._rows)

    @property
    def position(self) -> int:
        """Lines replayed so far (0 … lines): the state shown is the cart after them."""
        return int(self.slider.value)

    @property
    def skipped(self) -> list[int]:
        """Positions (1-based lines of the cart) switched off."""
        return (np.flatnonzero(self._skipped) + 1).tolist()

    def seek(self, line: int | None = None, ts: Any = None) -> int:
        """Go to position ``line``, or to the state at time ``ts`` (SPEC §6: after the longest
        prefix of lines whose ts are all ≤ ts; a naive time is UTC). Returns the position."""
        if (line is None) == (ts is None):
            raise ValueError("give exactly one of line= or ts=")
        self._need_cart()
        if ts is not None:
            line = self.go.line_at(self._cart, ts)  # type: ignore[arg-type]
        p = max(0, min(int(line), self.lines))  # type: ignore[arg-type]
        self.slider.value = p
        return p

    def step(self, delta: int = 1) -> int:
        """Move ``delta`` lines (negative: back). Returns the new position."""
        return self.seek(line=self.position + delta)

    def problem_lines(self, mode: str = "go") -> list[int]:
        """Positions whose line was not applied in ``mode`` (skipped lines left out)."""
        self._need_cart()
        return self._problems[mode].tolist()

    def next_problem(self) -> int:
        """Jump to the next line, after the current position, that go mode did not apply
        (stays put when there is none). Returns the position."""
        self._need_cart()
        probs = self._problems["go"]
        k = int(np.searchsorted(probs, self.position, side="right"))
        if k < len(probs):
            self.slider.value = int(probs[k])
        else:
            self._say("no problem line after this one")
        return self.position

    def prev_problem(self) -> int:
        """Jump to the previous line that go mode did not apply. Returns the position."""
        self._need_cart()
        probs = self._problems["go"]
        k = int(np.searchsorted(probs, self.position, side="left"))
        if k > 0:
            self.slider.value = int(probs[k - 1])
        else:
            self._say("no problem line before this one")
        return self.position

    def toggle_skip(self, line: int | None = None) -> list[int]:
        """Switch line ``line`` (default: the current one) off, or back on; the cart is
        replayed in both modes without the lines switched off. Returns :attr:`skipped`."""
        self._need_cart()
        p = self.position if line is None else int(line)
        if not 1 <= p <= self.lines:
            raise IndexError(f"line {p} is not a line of cart {self._cart!r} "
                             f"(1 … {self.lines})")
        skipped = self._skipped.copy()
        skipped[p - 1] = not skipped[p - 1]
        self._set_skips(skipped)
        return self.skipped

    def reset_skips(self) -> None:
        """Every line replayed again."""
        if self._skipped.any():
            self._set_skips(np.zeros(self.lines, dtype=bool))

    def state(self, mode: str = "go", position: int | None = None) -> dict[str, Any]:
        """The state JSON (SPEC §5) shown at ``position`` (default: the current one), with
        the skipped lines left out: a copy of its own (the widget keeps the ones it shows)."""
        self._need_cart()
        return copy.deepcopy(self._state(mode, self.position if position is None
                                         else int(position)))

    def diff(self, mode: str = "go") -> dict[str, Any] | None:
        """What changed from the previous position to this one (``diff_states``); None at 0."""
        self._need_cart()
        return self._diff(mode, self.position)

    def history(self, mode: str = "go") -> pd.DataFrame:
        """:meth:`Replay.history` of the cart in ``mode``; with lines skipped, that of the
        replay without them (``attrs["skipped"]`` lists them)."""
        self._need_cart()
        h = self._sides[mode].history()
        h.attrs["skipped"] = self.skipped
        return h

    def to_json(self) -> str:
        """The current point as JSON text: cart, position, line, skips, both modes' state and
        outcome of the line, and both modes' history."""
        self._need_cart()
        p = self.position
        doc: dict[str, Any] = {"cart_id": self._cart, "position": p, "lines": self.lines,
                               "skipped": self.skipped}
        for m in MODES:
            side = self._sides[m]
            h = self.history(m).copy()
            h["ts"] = [None if pd.isna(t) else pd.Timestamp(t).isoformat() for t in h["ts"]]
            doc[m] = {
                "outcome": side.outcome_at(p - 1) if p else None,
                "error": side.error_at(p - 1) if p else None,
                "state": self._state(m, p),
                "history": json.loads(h.to_json(orient="records")),
            }
        return marshal(doc, indent=True, escape_html=False).decode()

    def export(self) -> None:
        """Put the current state JSON (both modes) and the go history into the output area."""
        self._need_cart()
        p = self.position
        states = {m: self._state(m, p) for m in MODES}
        text = marshal(states, indent=True, escape_html=False).decode()
        hist = self.history("go")
        table = hist.to_html(max_rows=40, escape=True, border=0)
        body = (f'<div class="cfw"><h4>State at position {p} of {esc(self._cart)}</h4>'
                f'<div class="cfw-code">{mark_escapes(text, keep_newlines=True)}</div>'
                f"<h4>History (go mode, {len(hist):,} lines)</h4>{table}"
                '<div class="cfw-note">In Python: scrubber.state(), scrubber.history(), '
                "scrubber.to_json()</div></div>")
        self.export_output.outputs = ({
            "output_type": "display_data",
            "data": {"text/html": body, "text/plain": text},
            "metadata": {},
        },)

    # -- the investigation: notes, blame, context --------------------------------------------
    @property
    def line(self) -> int | None:
        """The number (in the cart's file) of the line shown; None at the start."""
        p = self.position
        return int(self._file_lines[p - 1]) if p and self._cart is not None else None

    def position_of(self, line: int) -> int:
        """The position that shows the cart's line numbered ``line``."""
        self._need_cart()
        try:
            return self._file_lines.index(int(line)) + 1
        except ValueError:
            raise IndexError(f"cart {self._cart!r} has no line {line}") from None

    def open_line(self, cart_id: str, line: int) -> int:
        """Open ``cart_id`` (if it is not the one shown) at its line ``line``."""
        if cart_id != self._cart:
            self.cart_id = cart_id
        return self.seek(line=self.position_of(line))

    def add_note(self, note: str = "", tags: Sequence[str] | str = (),
                 line: int | None = None) -> dict[str, Any]:
        """Write a note on the line shown (or on the cart's line ``line``) into
        :attr:`notes`. Returns the note."""
        self._need_cart()
        if line is None:
            line = self.line
            if line is None:
                raise ValueError("the start is not a line: step to a line to note it")
        entry = self.notes.add(self._cart, int(line), note, tags=tags)  # type: ignore[arg-type]
        self._notes_changed()
        return entry

    def notes_here(self) -> list[dict[str, Any]]:
        """The notes on the line shown."""
        line = self.line
        return self.notes.on(self._cart, line) if line is not None else []  # type: ignore[arg-type]

    def noted_positions(self) -> list[int]:
        """Positions of the cart's noted lines that the cart holds, ascending."""
        self._need_cart()
        where = self._position_of_line
        return sorted(where[ln] for ln in self.notes.lines(self._cart) if ln in where)  # type: ignore[arg-type]

    def next_note(self) -> int:
        """Jump to the next noted line of the cart (stays put when there is none)."""
        later = [q for q in self.noted_positions() if q > self.position]
        if later:
            self.slider.value = later[0]
        else:
            self._say("no noted line after this one")
        return self.position

    def prev_note(self) -> int:
        """Jump to the previous noted line of the cart."""
        earlier = [q for q in self.noted_positions() if q < self.position]
        if earlier:
            self.slider.value = earlier[-1]
        else:
            self._say("no noted line before this one")
        return self.position

    def blame(self, mode: str = "go") -> pd.DataFrame:
        """:meth:`Replay.blame` at the position shown, in ``mode``; with lines skipped, that of
        the replay without them."""
        self._need_cart()
        paths, values, where = self._blame_entries(mode, self.position)
        out = pd.DataFrame({"path": paths, "value": pd.Series(values, dtype=object),
                            "position": where})
        lines = np.asarray(self._file_lines + [0])
        out["line"] = pd.array([int(lines[q - 1]) if q else None for q in where],
                               dtype="Int64")
        out["ts"] = [self._ts[q - 1] if q else pd.NaT for q in where]
        out["type"] = [self._types[q - 1] if q else None for q in where]
        return out.drop(columns="position")[["path", "value", "line", "ts", "type"]]

    def context(self, minutes: float | None = None) -> pd.DataFrame:
        """:meth:`Replay.context` of the line shown (go mode), with ``lenient_outcome``."""
        self._need_cart()
        line = self.line
        if line is None:
            raise ValueError("the start is not a line: step to a line")
        ctx = self.go.context(self._cart, line,  # type: ignore[arg-type]
                              minutes=self.context_minutes.value if minutes is None else minutes)
        lo = self.lenient.outcomes["outcome"].astype(str).to_numpy()
        ctx["lenient_outcome"] = lo[ctx.index.to_numpy()] if len(ctx) else []
        return ctx

    def _build_workbench(self) -> None:
        lay = widgets.Layout
        self.strip_html = widgets.HTML(layout=lay(width="100%"))
        self.strip_html.add_class("cf-strip")
        self.strip_cursor = widgets.HTML(layout=lay(width="100%"))
        self.strip_cursor.add_class("cf-strip-cursor")
        # notes
        self.note_text = widgets.Textarea(placeholder="a note on this line (what it shows, "
                                          "what to check)…", rows=2,
                                          layout=lay(width="420px"))
        self.note_text.add_class("cf-note-text")
        self.tag_buttons: dict[str, widgets.ToggleButton] = {}
        for tag in STANDARD_TAGS:
            b = widgets.ToggleButton(value=False, description=tag, layout=lay(width="auto"),
                                     tooltip=f"tag the note '{tag}'")
            b.add_class("cf-tag-" + tag.replace(" ", "-"))
            self.tag_buttons[tag] = b
        self.note_tags = widgets.Text(placeholder="more tags, comma separated",
                                      layout=lay(width="220px"))
        self.note_tags.add_class("cf-note-tags")
        self.note_save = _button("add note", "write the note into the notes file",
                                 "cf-note-save", "110px", "sticky-note")
        self.prev_note_button = _button("note", "previous noted line of this cart",
                                        "cf-prev-note", "80px", "step-backward")
        self.next_note_button = _button("note", "next noted line of this cart",
                                        "cf-next-note", "80px", "step-forward")
        self.line_notes_html = widgets.HTML(layout=lay(width="100%"))
        self.line_notes_html.add_class("cf-line-notes")
        self.notes_select = widgets.Select(options=[], rows=4, layout=lay(width="560px"))
        self.notes_select.add_class("cf-notes-list")
        self.delete_note_button = _button("delete", "delete the note chosen in the list",
                                          "cf-delete-note", "90px", "trash")
        self.notes_where = widgets.HTML()
        self.note_save.on_click(lambda _b: self._on_note_save())
        self.prev_note_button.on_click(lambda _b: self.prev_note())
        self.next_note_button.on_click(lambda _b: self.next_note())
        self.delete_note_button.on_click(lambda _b: self._on_note_delete())
        self.notes_select.observe(self._on_note_pick, names="value")
        row = widgets.HBox
        self.notes_box = widgets.VBox([
            row([self.note_text, widgets.VBox([
                row(list(self.tag_buttons.values()), layout=lay(flex_flow="row wrap")),
                row([self.note_tags, self.note_save])])],
                layout=lay(align_items="flex-start", flex_flow="row wrap", grid_gap="6px")),
            self.line_notes_html,
            row([self.notes_select, widgets.VBox([self.prev_note_button,
                                                  self.next_note_button,
                                                  self.delete_note_button])],
                layout=lay(align_items="flex-start", grid_gap="6px")),
            self.notes_where,
        ], layout=lay(width="100%", border="1px solid #e0d0ea", padding="4px 8px",
                      margin="4px 0"))
        self.notes_box.add_class("cf-notes")
        # where the modes part
        self.parting_html = widgets.HTML()
        self.parting_button = _button("where they part", "the first line one mode applies "
                                      "and the other does not", "cf-parting", "150px",
                                      "code-fork")
        self.parting_button.on_click(lambda _b: self._on_parting())
        self.parting_box = widgets.HBox([self.parting_button, self.parting_html],
                                        layout=lay(align_items="center"))
        # blame under each state
        self.blame_selects: dict[str, widgets.Select] = {}
        self.blame_boxes: dict[str, widgets.VBox] = {}
        self.blame_button = _button("show blame", "read every applied line of this cart to "
                                    "tell which line set each field", "cf-blame-on", "130px",
                                    "search")
        self.blame_button.on_click(lambda _b: self._on_blame_on())
        for m in MODES:
            sel = widgets.Select(options=[], rows=8, layout=lay(width="100%"))
            sel.observe(lambda ch, m=m: self._on_blame_pick(m, ch), names="value")
            self.blame_selects[m] = sel
            head = widgets.HTML(f'<div class="cfw cfw-sub">blame ({esc(m)}): which line set '
                                "each field; choose one to go to that line (≠: the other "
                                "mode's differs)</div>")
            box = widgets.VBox([head, sel], layout=lay(width="100%"))
            box.add_class("cf-blame")
            box.add_class(f"cf-blame-{m}")
            self.blame_boxes[m] = box
        self.blame_boxes["go"].children = (*self.blame_boxes["go"].children, self.blame_button)
        # context
        self.context_minutes = widgets.BoundedFloatText(value=5, min=0.1, max=1440, step=1,
                                                        description="± minutes",
                                                        layout=lay(width="180px"))
        self.context_html = widgets.HTML(layout=lay(width="100%"))
        self.context_select = widgets.Select(options=[], rows=6, layout=lay(width="100%"))
        self.context_select.add_class("cf-context-list")
        self.context_minutes.observe(lambda _c: self._render_context(), names="value")
        self.context_select.observe(self._on_context_pick, names="value")
        inner = widgets.VBox([self.context_minutes, self.context_html,
                              widgets.HTML('<div class="cfw cfw-sub">open a line of another '
                                           "cart:</div>"), self.context_select])
        self.context_box = widgets.Accordion(children=[inner], selected_index=None,
                                             layout=lay(width="100%"))
        self.context_box.set_title(0, "Context: the other carts' lines around this line's time")
        self.context_box.add_class("cf-context")
        self.context_box.observe(lambda _c: self._render_context(), names="selected_index")
        self._fill_notes_list()

    def _draw_strip(self) -> None:
        """The strip's marks (on opening a cart, a skip, a note); the cursor moves alone."""
        if self._cart is None:
            return
        where = self._position_of_line
        noted: dict[int, str] = {}
        for n in self.notes.of_cart(self._cart):
            q = where.get(n["line"])
            if q is not None:
                noted.setdefault(q, n["note"] or ", ".join(n["tags"]))
        self.strip_html.value = strip_frame_html(
            self.lines, [self._sides[m].strip_row(m) for m in MODES], noted)

    def _render_workbench(self, p: int, states: Mapping[str, Mapping[str, Any]]) -> None:
        self.strip_cursor.value = strip_cursor_html(p, self.lines)
        line = self.line
        where = f"line {line:,}" if line is not None else "the start"
        self.line_notes_html.value = _notes_html(self.notes_here(), where)
        for w in (self.note_save, self.note_text, *self.tag_buttons.values(), self.note_tags):
            w.disabled = line is None
        self._render_blame(p, states)
        self._render_parting()
        self._render_context()

    def _blame_entries(self, mode: str, p: int, state: Mapping[str, Any] | None = None
                       ) -> tuple[list[str], list[Any], list[int]]:
        """Blame at position ``p`` of the view (skips applied): paths, values, and the view
        position of the line that last changed each (0: never)."""
        side = self._sides[mode]
        if side.sub is None:
            idx = blame_index(self.replays[mode], self._cart)  # type: ignore[arg-type]
            paths, values, where = idx.entries(p, dict(state) if state else None)
            return paths, values, where.tolist()
        if not side.has_cart:
            leaves = list(_investigate_leaves(state_to_json(empty_cart(self._cart))))
            return [x[1] for x in leaves], [x[2] for x in leaves], [0] * len(leaves)
        idx = blame_index(side.sub, self._cart)  # type: ignore[arg-type]
        paths, values, where = idx.entries(int(side.counts[p]),
                                           dict(state) if state else None)
        kept = self._kept
        return paths, values, [int(kept[c - 1]) if c else 0 for c in where.tolist()]

    def _render_blame(self, p: int, states: Mapping[str, Mapping[str, Any]]) -> None:
        self.blame_button.layout.display = "none" if self._blame_on else None
        if not self._blame_on:
            for m in MODES:
                self._busy = True
                try:
                    self.blame_selects[m].options = [
                        (f"blame not read yet: {self.lines:,} lines (press show blame)", -1)]
                finally:
                    self._busy = False
            return
        got = {m: self._blame_entries(m, p, states[m]) for m in MODES}
        # the cart's own fields first, then items and deliveries, BLAME_ROWS at most
        shown = {m: sorted(range(len(got[m][0])), key=lambda k, m=m: (
            "[" in got[m][0][k] or "." in got[m][0][k], k))[:BLAME_ROWS] for m in MODES}
        seen = {m: {got[m][0][k]: (got[m][1][k], got[m][2][k]) for k in shown[m]}
                for m in MODES}
        for m in MODES:
            other = seen["lenient" if m == "go" else "go"]
            paths, values, where = got[m]
            opts = []
            for k in shown[m]:
                path, v, q = paths[k], values[k], where[k]
                theirs = other.get(path)
                same = theirs is not None and theirs[1] == q and same_value(theirs[0], v)
                mark = "  " if same else "≠ "
                if q:
                    k_ = q - 1
                    src = f"line {self._file_lines[k_]:,} {self._types[k_] or ''}".rstrip()
                else:
                    src = "empty-cart value"
                opts.append((label_text(f"{mark}{path} = {_value_text(v)}", 70)
                             + f"  ← {label_text(src, 40)}", k))
            if len(paths) > len(shown[m]):
                opts.append((f"… {len(paths) - len(shown[m]):,} more fields: "
                             "scrubber.blame() lists them all", -1))
            self._blame_rows[m] = where
            self._busy = True
            try:
                self.blame_selects[m].options = opts
                self.blame_selects[m].value = None
            finally:
                self._busy = False

    def _parting(self) -> int | None:
        return self._parting_at

    def _render_parting(self) -> None:
        q = self._parting()
        self.parting_button.disabled = q is None
        if q is None:
            self.parting_html.value = ('<div class="cfw cfw-sub">go and lenient apply the same '
                                       "lines of this cart: they never part</div>")
            return
        here = " (here)" if q == self.position else ""
        self.parting_html.value = (
            f'<div class="cfw cfw-sub">go and lenient part at <b>line '
            f"{self._file_lines[q - 1]:,}</b>{esc(here)}: the first line one mode applies and "
            "the other does not; every field blamed on a later line may differ</div>")

    def _render_context(self) -> None:
        if self._cart is None or self.context_box.selected_index is None:
            return
        line = self.line
        if line is None:
            self.context_html.value = ('<div class="cfw cfw-note">the start is not a line: '
                                       "step to a line to see what happened around it</div>")
            opts: list[tuple[str, Any]] = []
        else:
            ctx = self.context()
            center = ctx.attrs.get("center")
            head = (f'<div class="cfw cfw-sub">{len(ctx):,} lines of other carts within ± '
                    f"{self.context_minutes.value:g} min of {esc(when_text(center))} "
                    f"({esc(ctx.attrs.get('reason', ''))})</div>" if center is not None else "")
            self.context_html.value = head + _context_html(
                ctx, ctx["lenient_outcome"].tolist(), CONTEXT_ROWS)
            opts = [(label_text(f"{when_text(r['ts'])} ({_offset_text(r['offset'])}) · "
                                 f"{r['cart_id']} line {r['line']} · {r['type'] or '–'} · go "
                                 f"{r['outcome']} · lenient {r['lenient_outcome']}", 110),
                     (str(r["cart_id"]), int(r["line"])))
                    for _, r in ctx.head(CONTEXT_ROWS).iterrows()]
        self._busy = True
        try:
            self.context_select.options = opts
            self.context_select.value = None
        finally:
            self._busy = False

    def _fill_notes_list(self) -> None:
        notes = list(self.notes)
        self._busy = True
        try:
            self.notes_select.options = [(_note_label(n), n["id"]) for n in notes]
            self.notes_select.value = None
        finally:
            self._busy = False
        where = (f"notes file {self.notes.path}" if self.notes.path is not None
                 else "notes kept in memory only: TimelineScrubber(..., notes='notes.json') "
                      "keeps them in a file")
        self.notes_where.value = (f'<div class="cfw cfw-sub">{len(notes):,} notes · '
                                  f"{esc(where)}</div>")

    def _notes_changed(self) -> None:
        self._fill_notes_list()
        self._draw_strip()
        if self._cart is not None:
            line = self.line
            self.line_notes_html.value = _notes_html(
                self.notes_here(), f"line {line:,}" if line is not None else "the start")

    def _on_note_save(self) -> None:
        tags = [t for t, b in self.tag_buttons.items() if b.value]
        tags += [t for t in self.note_tags.value.split(",") if t.strip()]
        try:
            self.add_note(self.note_text.value, tags)
        except (NotesError, ValueError, OSError) as e:
            self._say(f"note not saved: {e}")
            return
        self.note_text.value = ""
        self.note_tags.value = ""
        for b in self.tag_buttons.values():
            b.value = False
        self._say(f"note saved on line {self.line:,}")

    def _on_note_delete(self) -> None:
        note_id = self.notes_select.value
        if note_id is None:
            self._say("choose a note in the list to delete it")
            return
        try:
            self.notes.remove(note_id)
        except (KeyError, OSError) as e:
            self._say(f"note not deleted: {e}")
            return
        self._notes_changed()

    def _on_note_pick(self, change: Mapping[str, Any]) -> None:
        if self._busy or change["new"] is None:
            return
        try:
            n = self.notes.get(change["new"])
            self.open_line(n["cart_id"], n["line"])
        except (KeyError, IndexError):
            self._say("that note's line is not in these logs (the note is kept)")

    def _on_blame_pick(self, mode: str, change: Mapping[str, Any]) -> None:
        if self._busy or change["new"] is None or change["new"] < 0:
            return
        q = self._blame_rows[mode][change["new"]]
        if q:
            self.seek(line=q)
        else:
            self._say("that field still has its empty-cart value: no line set it")

    def _on_blame_on(self) -> None:
        self._blame_on = True
        self._render()

    def _on_parting(self) -> None:
        q = self._parting()
        if q is not None:
            self.seek(line=q)

    def _on_context_pick(self, change: Mapping[str, Any]) -> None:
        if self._busy or change["new"] is None:
            return
        cart, line = change["new"]
        self.open_line(cart, line)

    # -- internals -----------------------------------------------------------------------------
    def _need_cart(self) -> None:
        if self._cart is None:
            raise ValueError("no cart open")

    def _say(self, text: str) -> None:
        self.status.value = f'<div class="cfw cfw-note">{esc(text)}</div>' if text else ""

    def _fill_cart_options(self, text: str) -> None:
        needle = text.strip().lower()
        t = self._carts
        ids = [str(c) for c in t.index]
        hits = [k for k, c in enumerate(ids) if needle in c.lower()] if needle else \
            list(range(len(ids)))
        shown = hits[:MAX_CART_OPTIONS]
        opts = []
        for k in shown:
            r = t.iloc[k]
            label = (f"{label_text(ids[k], 40)}  ·  {int(r['lines']):,} lines  ·  "
                     f"{int(r['problems_go']):,} problems  ·  {int(r['lost']):,} lost")
            opts.append((label, ids[k]))
        self._busy = True
        try:
            self.cart_select.rows = max(2, min(6, len(opts)))
            self.cart_select.options = opts
            values = [v for _, v in opts]
            self.cart_select.value = self._cart if self._cart in values else None
        finally:
            self._busy = False
        more = f" (first {len(shown):,})" if len(hits) > len(shown) else ""
        self.cart_count.value = (
            f'<span class="cfw cfw-sub">{len(hits):,} of {len(ids):,} carts{more}, '
            "most problem lines first</span>")

    def _on_filter(self, change: Mapping[str, Any]) -> None:
        self._fill_cart_options(change["new"])

    def _on_select(self, change: Mapping[str, Any]) -> None:
        if self._busy or change["new"] is None or change["new"] == self._cart:
            return
        self._open(change["new"])

    def _open(self, cart_id: str) -> None:
        self._cart = cart_id
        self._rows = np.asarray(self.go.rows_of(cart_id), dtype=np.int64)
        ev = self.go.events
        rows = self._rows
        self._file_lines = ev["line"].to_numpy()[rows].tolist()
        self._ts = ev["ts"].iloc[rows].tolist()
        self._ts_kind = ev["ts_kind"].astype(str).to_numpy()[rows].tolist()
        self._types = [str_or_none(v) for v in ev["type"].to_numpy()[rows]]
        self._newline = ev["newline"].to_numpy()[rows].tolist()
        self._position_of_line = {ln: k + 1 for k, ln in enumerate(self._file_lines)}
        self._base_sides = None
        self._kept_sides.clear()
        self._blame_on = len(rows) <= BLAME_AUTO_LINES
        self._set_skips(np.zeros(len(rows), dtype=bool), render=False)
        n = len(rows)
        self._busy = True
        try:
            listed = [v for _, v in self.cart_select.options]
            self.cart_select.value = cart_id if cart_id in listed else None
            for w in (self.slider, self.play, self.line_input):
                w.min = 0
                w.max = n
            self.slider.value = n
            self.line_input.value = n
        finally:
            self._busy = False
        first_ts = next((t for t in self._ts if not pd.isna(t)), None)
        self.time_input.placeholder = (
            "e.g. " + pd.Timestamp(first_ts).strftime("%Y-%m-%dT%H:%M:%SZ") if first_ts is not None
            else "e.g. 2025-11-01T08:03:00Z")
        c = self._carts.loc[cart_id]
        self.title_html.value = (
            f'<div class="cfw"><h4>Cart {esc(cart_id)}</h4><div class="cfw-meta">'
            f"<span>{n:,} lines</span><span>go mode applied "
            f"<b>{n - int(c['problems_go']):,}</b></span><span>lenient mode applied "
            f"<b>{n - int(c['problems_lenient']):,}</b></span><span><b>{int(c['lost']):,}"
            "</b> lost (applied only as the writer meant them)</span></div></div>")
        self._say("")
        self._render()

    def _set_skips(self, skipped: np.ndarray, render: bool = True) -> None:
        self._skipped = skipped
        if skipped.any():
            key = np.packbits(skipped).tobytes()
            sides = self._kept_sides.pop(key, None)
            if sides is None:
                sides = self._new_sides(skipped)
            self._kept_sides[key] = sides
            if len(self._kept_sides) > SKIP_SETS_KEPT:
                self._kept_sides.popitem(last=False)
            self._sides = sides
        else:
            if self._base_sides is None:
                self._base_sides = self._new_sides(skipped)
            self._sides = self._base_sides
        self._problems = {m: side.problems for m, side in self._sides.items()}
        # the position (1 for the first line) where the modes part, skipped lines left out
        k = parting_index(self._sides["go"].applied, self._sides["lenient"].applied)
        self._parting_at = None if k is None else k + 1
        sk = self.skipped
        self.skip_html.value = (
            f'<div class="cfw cfw-skipline">Skipped: line{"s" if len(sk) != 1 else ""} '
            f"{esc(', '.join(map(str, sk)))}. Both modes replayed without "
            f"{'them' if len(sk) != 1 else 'it'}.</div>" if sk else "")
        self.reset_button.disabled = not sk
        self._kept = np.flatnonzero(~skipped) + 1
        self._draw_strip()
        if render:
            self._render()

    def _new_sides(self, skipped: np.ndarray) -> dict[str, _Side]:
        return {m: _Side(self.replays[m], self._cart, self._rows, skipped)  # type: ignore[arg-type]
                for m in MODES}

    def _state(self, mode: str, p: int) -> dict[str, Any]:
        side = self._sides[mode]
        if side.sub is not None and side.has_cart and self._base_sides is not None:
            # before the first line switched off, and right after it, the cart is the one
            # without skips at that point (as Replay.without answers): take it from there
            first = side.sub.skipped[0]
            if p <= first:
                return self._state_of(self._base_sides[mode], min(p, first - 1))
        return self._state_of(side, p)

    @staticmethod
    def _state_of(side: _Side, p: int) -> dict[str, Any]:
        kept = side.states
        hit = kept.get(p)
        if hit is not None:
            kept.move_to_end(p)
            return hit
        s = side.state(p)
        kept[p] = s
        if len(kept) > STATES_KEPT:
            kept.popitem(last=False)
        return s

    def _diff(self, mode: str, p: int) -> dict[str, Any] | None:
        if p <= 0:
            return None
        if not self._sides[mode].changed[p]:
            return empty_diff()
        return diff_states(self._state(mode, p - 1), self._state(mode, p))

    def _on_slider(self, change: Mapping[str, Any]) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            self.line_input.value = int(change["new"])
        finally:
            self._busy = False
        self._render()

    def _on_line_input(self, change: Mapping[str, Any]) -> None:
        if not self._busy and self._cart is not None:
            self.slider.value = int(change["new"])

    def _on_time_input(self, _change: Any) -> None:
        text = self.time_input.value
        if not text.strip() or self._cart is None:
            return
        try:
            t = parse_time(text)
        except (ValueError, TypeError):
            self._say(f"not a time: {text!r} (try 2025-11-01T08:03:00Z)")
            return
        p = self.seek(ts=t)
        self._say(f"at {when_text(t)}: the cart after its first {p:,} lines (SPEC §6)")

    def _on_skip_toggle(self, change: Mapping[str, Any]) -> None:
        if self._busy or self._cart is None or self.position == 0:
            return
        if bool(change["new"]) != bool(self._skipped[self.position - 1]):
            self.toggle_skip()

    def _render(self) -> None:
        if self._cart is None:
            return
        p = self.position
        self.renders += 1
        self._busy = True
        try:
            self.skip_button.disabled = p == 0
            self.skip_button.value = bool(p and self._skipped[p - 1])
            self.back_button.disabled = p == 0
            self.forward_button.disabled = p >= self.lines
        finally:
            self._busy = False
        self.line_html.value = self._line_html(p)
        states = {m: self._state(m, p) for m in MODES}
        for m, w in (("go", self.go_html), ("lenient", self.lenient_html)):
            side = self._sides[m]
            w.value = state_html(m, states[m], self._diff(m, p),
                                  side.outcome_at(p - 1) if p else None,
                                  side.error_at(p - 1) if p else None, self.max_rows)
        self.compare_html.value = _compare_html(states["go"], states["lenient"], p)
        self._render_workbench(p, states)

    def _line_html(self, p: int) -> str:
        n = self.lines
        if p == 0:
            return (f'<div class="cfw"><div class="cfw-meta"><b>Start</b><span>before line 1 '
                    f"of {n:,}: the empty cart</span></div></div>")
        k = p - 1
        row = int(self._rows[k])
        raw = bytes(self.go.events["raw"].iloc[row])
        kind, body = pretty_line(raw)
        file_line = self._file_lines[k]
        where = f"Line {p:,} of {n:,}" + (f" (file line {file_line:,})" if file_line != p else "")
        ts_kind = self._ts_kind[k]
        ts_note = {"number": "ts written as a JSON number", "string": "ts an RFC 3339 string",
                   "null": "ts null", "missing": "no ts", "invalid": "ts unreadable"}
        type_text = self._types[k]
        go_o, le_o = self._sides["go"].outcome_at(k), self._sides["lenient"].outcome_at(k)
        go_e, le_e = self._sides["go"].error_at(k), self._sides["lenient"].error_at(k)
        size = f"{len(raw):,} bytes" + ("" if self._newline[k] else ", no trailing \\n")
        parts = [
            f'<div class="cfw"><div class="cfw-meta"><b>{where}</b>',
            f"<span>{esc(when_text(self._ts[k]))} <span class=\"cfw-sub\">"
            f"({esc(ts_note.get(ts_kind, ts_kind))})</span></span>",
            f"<span>type <b>{esc(type_text) if type_text is not None else '–'}</b></span>",
            f"<span>{esc(size)}</span></div>",
            '<div class="cfw-meta">',
            f"<span>go {badge(go_o)}</span>",
            f'<span class="cfw-err">{esc(go_e)}</span>' if go_e else "",
            f"<span>lenient {badge(le_o)}</span>",
            f'<span class="cfw-err">{esc(le_e)}</span>' if le_e else "",
            "</div>",
        ]
        if self._skipped[k]:
            parts.append('<div class="cfw-note">this line is switched off: both carts are '
                         "replayed as if it had never been written</div>")
        label = "the line, pretty-printed" if kind == "json" else (
            "the line's raw bytes (not one JSON value), escaped")
        parts.append(f'<div class="cfw-sub">{label}</div><div class="cfw-code">{body}</div>'
                     "</div>")
        return "".join(parts)


def _compare_html(go: Mapping[str, Any], lenient: Mapping[str, Any], p: int) -> str:
    if go == lenient:
        return ('<div class="cfw cfw-banner cfw-same">At this position the service\'s cart '
                "(go) is the cart the writer meant (lenient).</div>")
    diffs = []
    ni, nl = len(go["items"]), len(lenient["items"])
    if ni != nl:
        diffs.append(f"{ni} vs {nl} items")
    if go["totalPrice"] != lenient["totalPrice"]:
        diffs.append(f"total {money_text(go['totalPrice'])} vs {money_text(lenient['totalPrice'])}")
    if len(go["deliveries"]) != len(lenient["deliveries"]):
        diffs.append(f"{len(go['deliveries'])} vs {len(lenient['deliveries'])} deliveries")
    for f in ("orderReference", "paymentStatus", "paymentInProgress"):
        if go[f] != lenient[f]:
            diffs.append(f"{FIELD_LABELS[f]} {format_field(f, go[f])} vs "
                         f"{format_field(f, lenient[f])}")
    if not diffs:
        diffs.append("the items' details or the last change differ")
    where = "the start" if p == 0 else f"line {p:,}"
    return (f'<div class="cfw cfw-banner cfw-differ">After {esc(where)} the service\'s cart '
            f"(go) differs from what the writer meant (lenient): {esc('; '.join(diffs))}."
            "</div>")


# -- the fleet dashboard ----------------------------------------------------------------------
