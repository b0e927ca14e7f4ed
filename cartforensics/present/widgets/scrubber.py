"""The time-travel scrubber over one cart's lines (see :mod:`cartforensics.present.widgets`).

An ``anywidget.AnyWidget``: the kernel keeps the replays and sends what to draw as plain data
(:mod:`cartforensics.present.widgets.frames`), the page draws it with one ES module
(``static/timeline.js``), in JupyterLab, Notebook 7, VS Code, Voila and marimo alike, and from
data embedded in the page without a kernel (:mod:`cartforensics.present.widgets.static`).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import os
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import pandas as pd
import traitlets

from cartforensics._runtime.publish import write_atomic
from cartforensics.analysis.notes import STANDARD_TAGS, Notes, NotesError
from cartforensics.go.json import marshal
from cartforensics.model.blame import blame_index, parting_index
from cartforensics.model.blame import leaves as _investigate_leaves
from cartforensics.model.cart import empty_cart, same_value, state_to_json
from cartforensics.model.replay import Replay, ReplayWithout, diff_states
from cartforensics.present.escaping import visible
from cartforensics.present.widgets.common import (
    MAX_CART_OPTIONS,
    SKIPPED,
    cart_table,
    empty_diff,
    label_text,
    parse_time,
    replay_pair,
    str_or_none,
    when_text,
    with_text_form,
)
from cartforensics.present.widgets.frames import (
    TS_NOTES,
    blame_group,
    compare_frame,
    line_segments,
    outcome_vocab,
    side_frame,
    text_segments,
    value_text,
)
from cartforensics.present.widgets.static import STATIC_DIR, static_html
from cartforensics.present.widgets.strip import strip_edges, strip_runs
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
FRAMES_AHEAD = 24  # frames a live page is sent ahead of its steps (and one behind)
FRAMES_SENT_AT_ONCE = 12  # at most this many built per step: the next move is not kept waiting
FRAMES_KEPT = 48  # frames built and frames sent ahead that are remembered (the page keeps 64)


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
        self._runs: tuple[int, list[tuple[int, int, int, str]]] | None = None

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

    def strip_runs(self) -> tuple[int, list[tuple[int, int, int, str]]]:
        """This side's row of the timeline strip (:func:`strip_runs`, kept per side)."""
        if self._runs is None:
            self._runs = strip_runs(self.codes)
        return self._runs

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


def _cart_fields_first(paths: Sequence[str]) -> list[int]:
    """The indices of ``paths``, the cart's own fields (no ``[`` or ``.``) first, each group
    in its order.

    >>> _cart_fields_first(["items[0].id", "totalPrice", "deliveries[0].id", "id"])
    [1, 3, 0, 2]
    """
    nested = [("[" in x or "." in x) for x in paths]
    return ([k for k, n in enumerate(nested) if not n]
            + [k for k, n in enumerate(nested) if n])


_LABELLED_KINDS = frozenset({str, int, bool, type(None)})  # exact as keys (no float: -0.0)


def _value_label(v: Any, known: dict[tuple[type, Any], str]) -> str:
    """``label_text(value_text(v), 80)``, remembered in ``known`` for scalars (a cart's
    blame lists the same values at every position)."""
    kind = type(v)
    if kind not in _LABELLED_KINDS:
        return label_text(value_text(v), 80)
    hit = known.get((kind, v))
    if hit is None:
        hit = known[(kind, v)] = label_text(value_text(v), 80)
    return hit


def _note_label(n: Mapping[str, Any]) -> str:
    tags = ", ".join(n.get("tags", []))
    text = " ".join(str(n.get("note", "")).split())
    return label_text(f"{n['cart_id']} · line {n['line']} · {tags or 'no tag'} · {text}", 90)


def _offset_text(td: pd.Timedelta) -> str:
    s = int(td.total_seconds())
    sign = "−" if s < 0 else "+"
    s = abs(s)
    return f"{sign}{s // 60} min {s % 60:02d} s"


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "cart"


class TimelineScrubber(anywidget.AnyWidget):
    """Step through one cart's lines in both modes, side by side.

    ``replay``: a :class:`~cartforensics.model.replay.Replay` (go mode; a lenient one works
    too and the go one is replayed from its events); ``lenient``: the lenient-mode replay of
    the same events (replayed when not given); ``cart_id``: the cart to open (default: the
    one with the most problem lines). Position ``p`` (0 … lines) shows the cart after its
    first ``p`` lines; 0 is the empty cart before line 1. A cart opens at the first line
    where go and lenient part (else its first problem line, else its last line).

    ``notes`` (a :class:`~cartforensics.analysis.notes.Notes`, or the path of its JSON file;
    default: notes kept in memory) holds the notes written on lines. Each mode's blame
    (:meth:`Replay.blame`) lists which line set each field; the context lists the other
    carts' lines around this line's time (:meth:`Replay.context`).

    Python side: :attr:`cart_id` (settable), :attr:`position` (settable), :meth:`seek`,
    :meth:`step`, :meth:`next_problem`, :meth:`prev_problem`, :meth:`toggle_skip`,
    :meth:`reset_skips`, :meth:`state`, :meth:`diff`, :meth:`history`, :meth:`to_json`,
    :meth:`export`, :meth:`add_note`, :meth:`next_note`, :meth:`prev_note`, :meth:`blame`,
    :meth:`context`, :meth:`open_line`. Shown in a notebook it is the live view; an HTML
    export of the notebook holds a static copy (:meth:`static_html`), and its text form is
    one line.

    >>> ev = cf.read_events("sample_data")                             # doctest: +SKIP
    >>> TimelineScrubber(cf.replay(ev), cart_id="cart-1164")           # doctest: +SKIP
    TimelineScrubber(cart-1164, line 3 of 7, go vs lenient)
    """

    _esm = STATIC_DIR / "timeline.js"
    _css = STATIC_DIR / "timeline.css"

    #: the cart shown; set it to open another one (its skips start empty)
    cart_id = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    #: lines replayed so far (0 … lines): the state shown is the cart after them
    position = traitlets.Int(0).tag(sync=True)
    cart = traitlets.Dict().tag(sync=True)  # what stays while the position moves
    frame = traitlets.Dict().tag(sync=True)  # what is drawn at the position
    carts = traitlets.List().tag(sync=True)  # the picker: [cart id, label]
    cart_filter = traitlets.Unicode("").tag(sync=True)
    carts_note = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    notes_list = traitlets.List().tag(sync=True)  # [note id, label, cart id, line]
    notes_where = traitlets.Unicode("").tag(sync=True)
    context_rows = traitlets.Dict().tag(sync=True)
    vocab = traitlets.Dict().tag(sync=True)
    request = traitlets.Dict().tag(sync=True)  # what the page asks: {"n": k, "do": ...}

    def __init__(self, replay: Replay, cart_id: str | None = None,
                 lenient: Replay | None = None, *, max_rows: int = 60,
                 notes: Notes | str | os.PathLike[str] | None = None):
        super().__init__()
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
        self._file_lines: list[int] = []
        carts = cart_table(self.go, self.lenient)
        order = carts.assign(_id=carts.index).sort_values(
            ["problems_go", "lost", "_id"], ascending=[False, False, True], kind="stable")
        self._carts = order.drop(columns="_id")
        self.renders = 0  # how many frames were built (for tests and benchmarks)
        self._blame_on = False
        # the blame's texts of the open cart, by path, by value and by position (its rows
        # repeat from one position to the next)
        self._blame_texts: tuple[dict[str, tuple[str, str]], dict[tuple[type, Any], str],
                                 dict[int, str]] = ({}, {}, {})
        self._kept = np.zeros(0, dtype=np.int64)
        self._context_minutes = 5.0
        self._context_open = False
        # what a step draws, built once per position until the cart, skips, notes or blame
        # change ("rev" names them), and the positions a live page holds (it says
        # so with a custom message, then the frames around its position are sent ahead)
        self._rev = ""
        self._built: OrderedDict[tuple[int, int], dict[str, Any]] = OrderedDict()
        self._sent: OrderedDict[int, None] = OrderedDict()
        self._page_keeps_frames = False
        self._heading = 1  # the direction of the last move
        self._stepping = False  # the last move was a step (a few lines), not a jump
        self._page_asked = False  # what is drawn now was asked for by the page
        self._ahead_due = False  # frames ahead are to be sent from the event loop
        self._ahead_left = 0  # ... this many more
        self.on_msg(self._on_page_msg)
        self.vocab = {"outcomes": outcome_vocab(), "tags": list(STANDARD_TAGS),
                      "skipped": SKIPPED_CODE, "applied": APPLIED_CODE}
        self._fill_cart_options("")
        self._fill_notes_list()
        first = cart_id if cart_id is not None else (
            str(self._carts.index[0]) if len(self._carts) else None)
        if first is not None:
            self.cart_id = first

    # -- traits ------------------------------------------------------------------------------
    @traitlets.validate("cart_id")
    def _check_cart(self, proposal: Mapping[str, Any]) -> str | None:
        v = proposal["value"]
        if v is not None and v not in self.go.cart_ids:
            raise KeyError(f"no cart {v!r} in this replay")
        return v

    @traitlets.observe("cart_id")
    def _on_cart(self, change: Mapping[str, Any]) -> None:
        if change["new"] is not None:
            self._open(change["new"])

    @traitlets.validate("position")
    def _check_position(self, proposal: Mapping[str, Any]) -> int:
        return max(0, min(int(proposal["value"]), len(self._rows)))

    @traitlets.observe("position")
    def _on_position(self, change: Mapping[str, Any]) -> None:
        if change["new"] != change["old"]:
            self._heading = 1 if change["new"] > change["old"] else -1
            self._stepping = abs(change["new"] - change["old"]) <= FRAMES_AHEAD
        if not self._busy:
            self.status = ""
            # a move the page made (its new position is being applied) or asked for
            asked, self._page_asked = self._page_asked, (
                self._page_asked or "position" in getattr(self, "_property_lock", {}))
            try:
                self._render(cart=False)
            finally:
                self._page_asked = asked

    def _on_page_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, Mapping) and content.get("keeps_frames"):
            self._page_keeps_frames = True
            self._sent.clear()
            self._sent[self.position] = None  # the view drew the frame set last
            self._page_asked = self._stepping = True  # a view opened: the reader may step
            try:
                self._schedule_ahead()
            finally:
                self._page_asked = False

    @traitlets.observe("cart_filter")
    def _on_filter(self, change: Mapping[str, Any]) -> None:
        self._fill_cart_options(change["new"])

    @traitlets.observe("request")
    def _on_request(self, change: Mapping[str, Any]) -> None:
        req = change["new"] or {}
        what = req.get("do")
        self._page_asked = True
        try:
            if what == "skip":
                if self.position:
                    self.toggle_skip()
            elif what == "reset":
                self.reset_skips()
            elif what == "note":
                self._on_note_save(str(req.get("text", "")), req.get("tags") or [])
            elif what == "delete_note":
                self._on_note_delete(req.get("id"))
            elif what == "open":
                self.open_line(str(req["cart"]), int(req["line"]))
            elif what == "seek_time":
                self._on_time_input(str(req.get("text", "")))
            elif what == "blame":
                self._blame_on = True
                self._render()
            elif what == "context":
                self._context_open = bool(req.get("open", True))
                if req.get("minutes") is not None:
                    self._context_minutes = min(1440.0, max(0.1, float(req["minutes"])))
                self._render_context()
            elif what == "export":
                self._say(f"saved {self.export()}")
        except (KeyError, IndexError, ValueError, TypeError, OSError) as e:
            self._say(f"could not do that: {e}")
        finally:
            self._page_asked = False

    # -- public --------------------------------------------------------------------------------
    @property
    def lines(self) -> int:
        """How many lines the cart has (the largest position)."""
        return len(self._rows)

    @property
    def skipped(self) -> list[int]:
        """Positions (1-based lines of the cart) switched off."""
        return (np.flatnonzero(self._skipped) + 1).tolist()

    @property
    def start_position(self) -> int:
        """Where the cart opens: the first line where go and lenient part, else the first
        line go did not apply, else the last line."""
        if self._parting_at is not None:
            return self._parting_at
        probs = self._problems.get("go")
        if probs is not None and len(probs):
            return int(probs[0])
        return self.lines

    def seek(self, line: int | None = None, ts: Any = None) -> int:
        """Go to position ``line``, or to the state at time ``ts`` (after the longest prefix
        of lines whose ts are all ≤ ts; a naive time is UTC). Returns the position."""
        if (line is None) == (ts is None):
            raise ValueError("give exactly one of line= or ts=")
        self._need_cart()
        if ts is not None:
            line = self.go.line_at(self._cart, ts)  # type: ignore[arg-type]
        self.position = int(line)  # type: ignore[arg-type]
        return self.position

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
            self.position = int(probs[k])
        else:
            self._say("no problem line after this one")
        return self.position

    def prev_problem(self) -> int:
        """Jump to the previous line that go mode did not apply. Returns the position."""
        self._need_cart()
        probs = self._problems["go"]
        k = int(np.searchsorted(probs, self.position, side="left"))
        if k > 0:
            self.position = int(probs[k - 1])
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

    def export(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write :meth:`to_json` (both modes' state at the position and history) to ``path``
        (default: ``<cart>.position-<p>.json`` in the working directory), in one step.
        Returns the path."""
        self._need_cart()
        target = Path(path) if path is not None else Path(
            f"{_safe_name(self._cart)}.position-{self.position}.json")  # type: ignore[arg-type]
        write_atomic(target, self.to_json().encode("utf-8") + b"\n")
        return target

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
            self.position = later[0]
        else:
            self._say("no noted line after this one")
        return self.position

    def prev_note(self) -> int:
        """Jump to the previous noted line of the cart."""
        earlier = [q for q in self.noted_positions() if q < self.position]
        if earlier:
            self.position = earlier[-1]
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
                              minutes=self._context_minutes if minutes is None else minutes)
        lo = self.lenient.outcomes["outcome"].astype(str).to_numpy()
        ctx["lenient_outcome"] = lo[ctx.index.to_numpy()] if len(ctx) else []
        return ctx

    # -- display -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        if self._cart is None:
            return "TimelineScrubber(no cart)"
        p = self.position
        where = "start" if p == 0 else f"line {p:,}"
        return (f"TimelineScrubber({visible(self._cart)}, {where} of {self.lines:,}, "
                "go vs lenient)")

    def static_html(self) -> str:
        """The view as a self-contained HTML fragment: the same drawing, from data embedded
        in the page (no kernel, no network); see :mod:`~.static`."""
        return static_html(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return with_text_form(super()._repr_mimebundle_(**kwargs), repr(self))

    def _ipython_display_(self) -> None:
        """In a notebook: the live widget, and beside it the static copy as ``text/html``
        (a second output: what an HTML export shows, whether or not the widget state was
        saved). Where the live view draws, its CSS hides the copy."""
        from IPython.display import display

        data, meta = self._repr_mimebundle_()
        display(data, metadata=meta, raw=True)
        if self._cart is not None:
            display({"text/html": static_html(self, notebook_copy=True)}, raw=True)

    # -- what the page asks ------------------------------------------------------------------
    def _on_note_save(self, text: str, tags: Sequence[str]) -> None:
        tags = [str(t) for t in tags if str(t).strip()]
        try:
            self.add_note(text, tags)
        except (NotesError, ValueError, OSError) as e:
            self._say(f"note not saved: {e}")
            return
        self._say(f"note saved on line {self.line:,}")

    def _on_note_delete(self, note_id: Any) -> None:
        if note_id is None:
            self._say("choose a note in the list to delete it")
            return
        try:
            self.notes.remove(str(note_id))
        except (KeyError, OSError) as e:
            self._say(f"note not deleted: {e}")
            return
        self._notes_changed()

    def _on_time_input(self, text: str) -> None:
        if not text.strip() or self._cart is None:
            return
        try:
            t = parse_time(text)
        except (ValueError, TypeError):
            self._say(f"not a time: {visible(text)!r} (try 2025-11-01T08:03:00Z)")
            return
        p = self.seek(ts=t)
        self._say(f"at {when_text(t)}: the cart after its first {p:,} lines (lines without "
                  "a readable ts go with the line before)")

    # -- internals -----------------------------------------------------------------------------
    def _need_cart(self) -> None:
        if self._cart is None:
            raise ValueError("no cart open")

    def _say(self, text: str) -> None:
        self.status = text

    def _fill_cart_options(self, text: str) -> None:
        needle = text.strip().lower()
        t = self._carts
        ids = [str(c) for c in t.index]
        hits = [k for k, c in enumerate(ids) if needle in c.lower()] if needle else \
            list(range(len(ids)))
        shown = hits[:MAX_CART_OPTIONS]
        lines = t["lines"].to_numpy()
        probs = t["problems_go"].to_numpy()
        lost = t["lost"].to_numpy()
        opts = []
        for k in shown:
            p = int(probs[k])
            label = (f"{label_text(ids[k], 40)} · {int(lines[k]):,} lines · "
                     f"{p:,} problem{'s' if p != 1 else ''} · {int(lost[k]):,} lost")
            opts.append([ids[k], label])
        if self._cart is not None and self._cart not in {o[0] for o in opts}:
            opts.insert(0, [self._cart, label_text(self._cart, 40)])
        self.carts = opts
        more = f" (first {len(shown):,})" if len(hits) > len(shown) else ""
        self.carts_note = (f"{len(hits):,} of {len(ids):,} carts{more}, most problem lines "
                           "first")

    def _open(self, cart_id: str) -> None:
        self._cart = cart_id
        self._rows = np.asarray(self.go.rows_of(cart_id), dtype=np.int64)
        ev = self.go.events
        rows = self._rows
        self._file_lines = ev["line"].to_numpy()[rows].tolist()
        self._ts = ev["ts"].iloc[rows].tolist()
        # the cart's rows taken first: converting a whole column costs what the replay holds
        self._ts_kind = ev["ts_kind"].iloc[rows].astype(str).tolist()
        self._types = [str_or_none(v) for v in ev["type"].iloc[rows].tolist()]
        self._newline = ev["newline"].to_numpy()[rows].tolist()
        self._position_of_line = {ln: k + 1 for k, ln in enumerate(self._file_lines)}
        self._base_sides = None
        self._kept_sides.clear()
        self._blame_on = len(rows) <= BLAME_AUTO_LINES
        self._blame_texts = ({}, {}, {})
        self._busy = True
        try:
            self._set_skips(np.zeros(len(rows), dtype=bool), render=False)
            self.position = self.start_position
        finally:
            self._busy = False
        self.status = ""
        if self._cart not in {o[0] for o in self.carts}:
            self._fill_cart_options(self.cart_filter)
        self._render()

    def _cart_data(self) -> dict[str, Any]:
        n = self.lines
        c = self._carts.loc[self._cart]
        first_ts = next((t for t in self._ts if not pd.isna(t)), None)
        where = self._position_of_line
        noted: dict[int, str] = {}
        for note in self.notes.of_cart(self._cart):  # type: ignore[arg-type]
            q = where.get(note["line"])
            if q is not None:
                noted.setdefault(q, visible(note["note"] or ", ".join(note["tags"])))
        edges = strip_edges(n)
        strip = {}
        for m in MODES:
            nb, runs = self._sides[m].strip_runs()
            strip[m] = [list(r) for r in runs]
        sk = self.skipped
        return {
            "id": visible(self._cart),  # type: ignore[arg-type]
            "lines": n,
            "summary": [f"{n:,} lines",
                        f"go applied {n - int(c['problems_go']):,}",
                        f"lenient applied {n - int(c['problems_lenient']):,}",
                        f"{int(c['lost']):,} lost (applied only as the writer meant them)"],
            "problems": {m: self._problems[m].tolist() for m in MODES},
            "noted": sorted([q, t] for q, t in noted.items()),
            "parting": self._parting_at,
            "parting_line": (self._file_lines[self._parting_at - 1]
                             if self._parting_at else None),
            "start": self.start_position,
            "skipped": sk,
            "skip_text": (f"Skipped: line{'s' if len(sk) != 1 else ''} "
                          f"{', '.join(map(str, sk))}. Both modes replayed without "
                          f"{'them' if len(sk) != 1 else 'it'}." if sk else ""),
            "bins": max(len(edges) - 1, 1),
            "edges": edges.tolist() if n > len(edges) - 1 else None,
            "strip": strip,
            "strip_note": (f"{n:,} lines in {len(edges) - 1:,} marks; a mark shows the most "
                           "telling outcome it holds" if n > len(edges) - 1
                           else f"{n:,} lines, one mark each"),
            "time_hint": ("e.g. " + pd.Timestamp(first_ts).strftime("%Y-%m-%dT%H:%M:%SZ")
                          if first_ts is not None else "e.g. 2025-11-01T08:03:00Z"),
        }

    def _set_skips(self, skipped: np.ndarray, render: bool = True) -> None:
        self._skipped = skipped
        self._new_rev()
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
        self._kept = np.flatnonzero(~skipped) + 1
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

    def _states_from_blame(self, p: int) -> None:
        """Read each mode's blame up to ``p`` first (its frame shows it), and keep the
        states at ``p`` and ``p - 1`` it read on the way: a frame does not ask the replay
        for them again (the cart without skips)."""
        for m in MODES:
            side = self._sides[m]
            if side.sub is not None or p in side.states:
                continue
            idx = blame_index(side.replay, self._cart)  # type: ignore[arg-type]
            idx.read(p)
            for q in (p - 1, p):
                s = idx.state_read(q)
                if s is not None and q not in side.states:
                    side.states[q] = s
                    if len(side.states) > STATES_KEPT:
                        side.states.popitem(last=False)

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

    def _render(self, cart: bool = True) -> None:
        """Send the frame at the position to the page, and the cart's data when it may have
        changed (``cart``: a cart opened, a skip, a note; a step leaves it as it is)."""
        if self._cart is None:
            return
        if cart:
            self._new_rev()
        with self.hold_sync():
            if cart:
                self.cart = self._cart_data()
            self.frame = self.frame_at(self.position)
        self._sent[self.position] = None
        if self._context_open:
            self._render_context()
        if not cart:
            self._schedule_ahead()

    def _schedule_ahead(self) -> None:
        """Send frames ahead (:meth:`_send_one_ahead`) once the kernel has answered what the
        page asked, one per turn of its event loop: the page's next move is handled between
        them, not kept waiting for them all."""
        if not (self._page_keeps_frames and self._page_asked):
            return
        self._ahead_left = FRAMES_SENT_AT_ONCE if self._stepping else 2
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop runs (a kernel always has one)
            while self._send_one_ahead():
                pass
            return
        if not self._ahead_due:
            self._ahead_due = True
            loop.call_soon(self._ahead_turn, loop)

    def _ahead_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        self._ahead_due = self._send_one_ahead()
        if self._ahead_due:
            loop.call_soon(self._ahead_turn, loop)

    def _new_rev(self) -> None:
        """What a position shows may have changed: frames built or sent before are stale.
        ``rev`` names what the frames depend on besides the position (the cart, its skips,
        blame shown, rows shown, its notes), so that equal views send equal frames."""
        notes = self.notes.of_cart(self._cart) if self._cart is not None else []
        what = json.dumps([self._cart, self.skipped, self._blame_on, self.max_rows, notes],
                          sort_keys=True, default=str)
        self._rev = hashlib.sha1(what.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        self._built.clear()
        self._sent.clear()

    def _send_one_ahead(self) -> bool:
        """Send a live page the frame of the next position in the direction of the last move
        (then the one behind, then further on) that it does not hold yet: a step there draws
        at once, and the frame set for it afterwards confirms it. After a jump only the two
        neighbours are sent (the reader may not step on from there), none after a skip, a
        note or a move made in Python (the next step waits for its frame). Returns whether
        more are to be sent."""
        if self._ahead_left <= 0 or not self._page_keeps_frames or self._cart is None:
            return False
        p, d = self.position, self._heading
        q = next((q for q in [p + d, p - d, *(p + d * k for k in range(2, FRAMES_AHEAD + 1))]
                  if 0 <= q <= self.lines and q not in self._sent), None)
        if q is None:
            self._ahead_left = 0
            return False
        self.send({"frames_ahead": [self.frame_at(q)]})
        self._sent[q] = None
        while len(self._sent) > FRAMES_KEPT:
            self._sent.popitem(last=False)
        self._ahead_left -= 1
        return self._ahead_left > 0

    def frame_at(self, p: int) -> dict[str, Any]:
        """What the page draws at position ``p`` (plain data, see
        :mod:`~cartforensics.present.widgets.frames`)."""
        self._need_cart()
        line = self._file_lines[p - 1] if p else None
        notes = self.notes.on(self._cart, line) if line is not None else []  # type: ignore[arg-type]
        shown = {"notes": [{"tags": [visible(t) for t in n.get("tags", [])],
                            "text": text_segments(str(n.get("note", ""))),
                            "who": " · ".join(visible(str(v)) for v in
                                              (n.get("author"), n.get("created")) if v)}
                           for n in notes]}
        key = (p, self.max_rows)
        built = self._built.get(key)
        if built is None:
            built = self._built[key] = self._build_frame(p)
            while len(self._built) > FRAMES_KEPT:
                self._built.popitem(last=False)
        else:
            self._built.move_to_end(key)
        return {**built, **shown}

    def _build_frame(self, p: int) -> dict[str, Any]:
        self.renders += 1
        if self._blame_on:
            self._states_from_blame(p)
        states = {m: self._state(m, p) for m in MODES}
        sides = {}
        for m in MODES:
            side = self._sides[m]
            sides[m] = side_frame(m, states[m], self._diff(m, p),
                                  side.outcome_at(p - 1) if p else None,
                                  side.error_at(p - 1) if p else None, self.max_rows)
            sides[m]["outcome_code"] = int(side.codes[p - 1]) if p else None
        line = self._file_lines[p - 1] if p else None
        where = f"line {line:,}" if line is not None else "the start"
        return {
            "rev": self._rev,
            "position": p,
            "lines": self.lines,
            "line": self._line_frame(p),
            "compare": compare_frame(states["go"], states["lenient"], p),
            "sides": sides,
            "where": where,
            "notes": [],
            "blame": self._blame_frame(p, states),
        }

    def _line_frame(self, p: int) -> dict[str, Any] | None:
        if p == 0:
            return None
        k = p - 1
        raw = bytes(self.go.events["raw"].iloc[int(self._rows[k])])
        kind, segments, more = line_segments(raw)
        file_line = self._file_lines[k]
        outcome = {}
        for m in MODES:
            side = self._sides[m]
            err = side.error_at(k)
            outcome[m] = [int(side.codes[k]), visible(err) if err else None]
        return {
            "where": f"Line {p:,} of {self.lines:,}"
                     + (f" (file line {file_line:,})" if file_line != p else ""),
            "when": when_text(self._ts[k]),
            "ts_note": TS_NOTES.get(self._ts_kind[k], self._ts_kind[k]),
            "type": visible(self._types[k]) if self._types[k] is not None else None,
            "size": f"{len(raw):,} bytes" + ("" if self._newline[k] else ", no trailing \\n"),
            "outcomes": outcome,
            "skipped": bool(self._skipped[k]),
            "kind": kind,
            "label": "the line, pretty-printed" if kind == "json"
                     else "the line's raw bytes (not one JSON value), escapes highlighted",
            "text": segments,
            "more": f"… {more:,} more bytes not shown" if more else "",
        }

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

    def _blame_frame(self, p: int, states: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """Per mode: ``rows`` ``[group, path, value, position, source, differs]`` (the cart's
        own fields first, BLAME_ROWS at most), ``more``; ``on`` False until read."""
        if not self._blame_on:
            return {"on": False, "lines": self.lines}
        got = {m: self._blame_entries(m, p, states[m]) for m in MODES}
        shown = {m: _cart_fields_first(got[m][0])[:BLAME_ROWS] for m in MODES}
        seen = {m: {got[m][0][k]: (got[m][1][k], got[m][2][k]) for k in shown[m]}
                for m in MODES}
        out: dict[str, Any] = {"on": True, "lines": self.lines}
        heads, texts, sources = self._blame_texts
        for m in MODES:
            other = seen["lenient" if m == "go" else "go"]
            paths, values, where = got[m]
            rows = []
            for k in shown[m]:
                path, v, q = paths[k], values[k], where[k]
                theirs = other.get(path)
                same = theirs is not None and theirs[1] == q and same_value(theirs[0], v)
                head = heads.get(path)
                if head is None:
                    head = heads[path] = (blame_group(path), visible(path))
                kind = type(v)  # (_value_label's remembered scalars, without a call per row)
                text = texts.get((kind, v)) if kind in _LABELLED_KINDS else None
                if text is None:
                    text = _value_label(v, texts)
                src = sources.get(q)
                if src is None:
                    src = sources[q] = label_text(
                        f"line {self._file_lines[q - 1]:,} {self._types[q - 1] or ''}".rstrip()
                        if q else "empty-cart value", 60)
                rows.append([head[0], head[1], text, int(q), src, not same])
            out[m] = {"rows": rows, "more": len(paths) - len(shown[m])}
        return out

    def _render_context(self) -> None:
        if self._cart is None:
            return
        line = self.line
        if line is None:
            self.context_rows = {"minutes": self._context_minutes, "rows": [],
                                 "head": "the start is not a line: step to a line to see "
                                         "what happened around it"}
            return
        ctx = self.context()
        center = ctx.attrs.get("center")
        head = (f"{len(ctx):,} lines of other carts within ± {self._context_minutes:g} min of "
                f"{when_text(center)}" if center is not None
                else f"no line of another cart in this window ({ctx.attrs.get('reason', '')})")
        rows = [[when_text(r["ts"]), _offset_text(r["offset"]), visible(str(r["cart_id"])),
                 str(r["cart_id"]), int(r["line"]),
                 visible(r["type"]) if isinstance(r["type"], str) else "–",
                 str(r["outcome"]), str(r["lenient_outcome"])]
                for _, r in ctx.head(CONTEXT_ROWS).iterrows()]
        self.context_rows = {"minutes": self._context_minutes, "rows": rows, "head": head,
                             "more": max(0, len(ctx) - CONTEXT_ROWS)}

    def _notes_changed(self) -> None:
        self._fill_notes_list()
        self._render()

    def _fill_notes_list(self) -> None:
        notes = list(self.notes)
        self.notes_list = [[n["id"], _note_label(n), n["cart_id"], int(n["line"])]
                           for n in notes]
        where = (f"notes file {self.notes.path}" if self.notes.path is not None
                 else "notes kept in memory only: TimelineScrubber(..., notes='notes.json') "
                      "keeps them in a file")
        self.notes_where = f"{len(notes):,} note{'s' if len(notes) != 1 else ''} · {where}"
