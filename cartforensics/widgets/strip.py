"""The timeline strip: one mark per line of a cart in both modes, coloured by outcome with the
report's palette, binned for long carts.

>>> strip_bins(["applied", "malformed", "applied"], marks=2)[0][2]
'malformed'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from ..plots import OUTCOME_COLORS, OUTCOME_LABELS
from ..replay import OUTCOMES
from .common import SKIPPED, _e

STRIP_MARKS = 500  # most marks drawn per row: a longer cart is binned
NOTE_COLOR = "#7B3294"
# what a bin of several lines shows: its most telling outcome (trouble before success)
_STRIP_PRIORITY = ("too_long", "malformed", "unknown_type", "payload_error", "apply_error",
                   "not_reached", SKIPPED, "applied")
_STRIP_KINDS = (*OUTCOMES, SKIPPED)
_STRIP_COLORS = {**OUTCOME_COLORS, SKIPPED: "#dddddd"}


def strip_edges(n: int, marks: int = STRIP_MARKS) -> np.ndarray:
    """Bin edges over ``n`` lines (positions 0 … n): one bin per line up to ``marks`` lines,
    else ``marks`` bins of (nearly) equal size."""
    if n <= marks:
        return np.arange(n + 1, dtype=np.int64)
    return np.unique(np.linspace(0, n, marks + 1).round().astype(np.int64))


def strip_bins(outcomes: Sequence[str], marks: int = STRIP_MARKS
               ) -> list[tuple[int, int, str, dict[str, int]]]:
    """The marks of one strip row: ``(first line, last line, outcome shown, counts)`` per
    bin (lines 1-based). A bin of several lines shows the most telling outcome it holds:
    any failure before a skipped line before an applied one."""
    n = len(outcomes)
    if not n:
        return []
    code = {k: i for i, k in enumerate(_STRIP_KINDS)}
    get = code.get
    codes = np.fromiter((get(o, 0) for o in outcomes), dtype=np.int64, count=n)
    edges = strip_edges(n, marks)
    nb = len(edges) - 1
    kinds = len(_STRIP_KINDS)
    bin_of = np.repeat(np.arange(nb, dtype=np.int64), np.diff(edges))
    counts = np.bincount(bin_of * kinds + codes, minlength=nb * kinds).reshape(nb, kinds)
    order = np.array([code[k] for k in _STRIP_PRIORITY], dtype=np.int64)
    shown = order[np.argmax(counts[:, order] > 0, axis=1)].tolist()
    firsts = (edges[:-1] + 1).tolist()
    lasts = edges[1:].tolist()
    return [(first, last, _STRIP_KINDS[sh],
             {_STRIP_KINDS[i]: c for i, c in enumerate(row) if c})
            for first, last, sh, row in zip(firsts, lasts, shown, counts.tolist(), strict=True)]


def _bin_title(first: int, last: int, counts: Mapping[str, int]) -> str:
    where = f"line {first:,}" if first == last else f"lines {first:,}–{last:,}"
    mix = ", ".join(f"{OUTCOME_LABELS.get(k, k)} {v:,}" for k, v in counts.items())
    return f"{where}: {mix}"


def _strip_svg(bins: Sequence[tuple[int, int, str, Mapping[str, int]]], cls: str) -> str:
    """One row of marks; neighbouring bins of one colour are drawn as one rectangle."""
    nb = max(len(bins), 1)
    rects = []
    k = 0
    while k < len(bins):
        j = k
        while j + 1 < len(bins) and bins[j + 1][2] == bins[k][2]:
            j += 1
        total: Counter[str] = Counter()
        for b in bins[k:j + 1]:
            total.update(b[3])
        title = _bin_title(bins[k][0], bins[j][1], total)
        rects.append(f'<rect x="{k}" width="{j - k + 1}" height="1" '
                     f'fill="{_STRIP_COLORS.get(bins[k][2], "#999999")}" '
                     f'data-outcome="{_e(bins[k][2])}"><title>{_e(title)}</title></rect>')
        k = j + 1
    return (f'<svg class="{cls}" viewBox="0 0 {nb} 1" preserveAspectRatio="none" '
            f'height="12">{"".join(rects)}</svg>')


def strip_html(outcomes: Mapping[str, Sequence[str]], noted: Mapping[int, str] | None = None,
               marks: int = STRIP_MARKS) -> str:
    """The timeline strip of one cart: a row of marks per mode (``outcomes``: mode -> the
    outcome of every line, in line order) coloured with the report's palette, and a row
    marking the noted lines (``noted``: position -> the note's text, shown as a tooltip)."""
    n = max((len(v) for v in outcomes.values()), default=0)
    edges = strip_edges(n, marks)
    nb = max(len(edges) - 1, 1)
    marks_ = []
    for pos, text in sorted((noted or {}).items()):
        if not 1 <= pos <= n:
            continue
        b = int(np.searchsorted(edges, pos - 1, side="right")) - 1
        marks_.append(f'<rect x="{b}" width="1" height="1" fill="{NOTE_COLOR}" '
                      f'data-line="{pos}"><title>{_e(f"line {pos:,}: {text}")}</title></rect>')
    rows = [('<span class="cfw-strip-label">notes</span>'
             f'<svg class="cfw-strip-notes" viewBox="0 0 {nb} 1" preserveAspectRatio="none" '
             f'height="7">{"".join(marks_)}</svg>')]
    for mode, outs in outcomes.items():
        rows.append(f'<span class="cfw-strip-label">{_e(mode)}</span>'
                    + _strip_svg(strip_bins(outs, marks), f"cfw-strip-{_e(mode)}"))
    binned = (f"{n:,} lines in {nb:,} marks of ~{n / nb:,.0f} lines; a mark shows the "
              "most telling outcome it holds" if n > marks else f"{n:,} lines, one mark each")
    return (f'<div class="cfw"><div class="cfw-strip">{"".join(rows)}</div>'
            f'<div class="cfw-sub cfw-strip-note">{_e(binned)}</div></div>')


def strip_cursor_html(position: int, n: int, marks: int = STRIP_MARKS) -> str:
    """The current position under the strip: the mark of the line just replayed."""
    edges = strip_edges(n, marks)
    nb = max(len(edges) - 1, 1)
    if position <= 0 or n == 0:
        x, w = 0.0, nb / 150
    else:
        x, w = float(np.searchsorted(edges, position - 1, side="right") - 1), 1.0
    w = max(w, nb / 150)
    where = "start" if position <= 0 else f"line {position:,}"
    return (f'<div class="cfw cfw-strip"><span class="cfw-strip-label">{_e(where)}</span>'
            f'<svg class="cfw-strip-cursor" viewBox="0 0 {nb} 1" preserveAspectRatio="none" '
            f'height="6"><rect x="{x:g}" width="{w:g}" height="1" fill="#111111"/></svg></div>')
