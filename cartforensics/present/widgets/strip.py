"""The timeline strip: one mark per line of a cart in both modes, coloured by outcome with the
report's palette, binned for long carts.

>>> strip_bins(["applied", "malformed", "applied"], marks=2)[0][2]
'malformed'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cartforensics.present.widgets.common import SKIPPED, esc
from cartforensics.vocab import OUTCOME_COLORS, OUTCOME_LABELS, OUTCOMES

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


_STRIP_CODE = {k: i for i, k in enumerate(_STRIP_KINDS)}
_STRIP_ORDER = np.array([_STRIP_CODE[k] for k in _STRIP_PRIORITY], dtype=np.int64)
_KIND_LABELS = [OUTCOME_LABELS.get(k, k) for k in _STRIP_KINDS]
_KIND_FILLS = [_STRIP_COLORS.get(k, "#999999") for k in _STRIP_KINDS]
_KIND_ATTRS = [esc(k) for k in _STRIP_KINDS]


def strip_codes(outcomes: Sequence[str]) -> np.ndarray:
    """The outcomes as indices into OUTCOMES plus SKIPPED (what the scrubber keeps per line);
    an outcome not among them counts as the first."""
    get = _STRIP_CODE.get
    return np.fromiter((get(o, 0) for o in outcomes), dtype=np.int64, count=len(outcomes))


def _bin_counts(codes: np.ndarray, marks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edges, counts per bin and kind, kind shown per bin) of one row's ``codes``."""
    n = len(codes)
    edges = strip_edges(n, marks)
    nb = len(edges) - 1
    kinds = len(_STRIP_KINDS)
    bin_of = np.repeat(np.arange(nb, dtype=np.int64), np.diff(edges))
    counts = np.bincount(bin_of * kinds + np.asarray(codes, dtype=np.int64),
                         minlength=nb * kinds).reshape(nb, kinds)
    shown = _STRIP_ORDER[np.argmax(counts[:, _STRIP_ORDER] > 0, axis=1)]
    return edges, counts, shown


def strip_bins(outcomes: Sequence[str], marks: int = STRIP_MARKS
               ) -> list[tuple[int, int, str, dict[str, int]]]:
    """The marks of one strip row: ``(first line, last line, outcome shown, counts)`` per
    bin (lines 1-based). A bin of several lines shows the most telling outcome it holds:
    any failure before a skipped line before an applied one."""
    if not len(outcomes):
        return []
    edges, counts, shown = _bin_counts(strip_codes(outcomes), marks)
    firsts = (edges[:-1] + 1).tolist()
    lasts = edges[1:].tolist()
    return [(first, last, _STRIP_KINDS[sh],
             {_STRIP_KINDS[i]: c for i, c in enumerate(row) if c})
            for first, last, sh, row in zip(firsts, lasts, shown.tolist(), counts.tolist(),
                                            strict=True)]


def strip_runs(codes: np.ndarray, marks: int = STRIP_MARKS
               ) -> tuple[int, list[tuple[int, int, int, str]]]:
    """One row of marks from the outcome codes of a mode's lines (:func:`strip_codes`):
    ``(bins, runs)``, a run ``(first bin, bins, kind code shown, tooltip)`` for neighbouring
    bins of one colour, whose tooltip counts the outcomes it holds (in the order they first
    occur, left to right)."""
    if not len(codes):
        return 0, []
    edges, counts, shown = _bin_counts(codes, marks)
    nb = len(edges) - 1
    starts = np.flatnonzero(np.r_[True, shown[1:] != shown[:-1]])
    ends = np.r_[starts[1:], nb]  # exclusive
    totals = np.add.reduceat(counts, starts, axis=0)
    first_bin = np.where(counts > 0, np.arange(nb, dtype=np.int64)[:, None], nb)
    firsts = np.minimum.reduceat(first_bin, starts, axis=0)
    run, kind = np.nonzero(totals)
    order = np.lexsort((kind, firsts[run, kind], run))
    run, kind = run[order], kind[order]
    vals = totals[run, kind].tolist()
    labels = _KIND_LABELS
    mix = [f"{labels[k]} {v:,}" for k, v in zip(kind.tolist(), vals, strict=True)]
    cut = np.searchsorted(run, np.arange(len(starts) + 1)).tolist()
    lo = (edges[starts] + 1).tolist()
    hi = edges[ends].tolist()
    runs = []
    for r, (k, j, sh) in enumerate(zip(starts.tolist(), ends.tolist(), shown[starts].tolist(),
                                       strict=True)):
        first, last = lo[r], hi[r]
        where = f"line {first:,}" if first == last else f"lines {first:,}–{last:,}"
        runs.append((k, j - k, sh, f"{where}: {', '.join(mix[cut[r]:cut[r + 1]])}"))
    return nb, runs


def strip_row_svg(codes: np.ndarray, cls: str, marks: int = STRIP_MARKS) -> str:
    """One row of marks (:func:`strip_runs`) as SVG."""
    nb, runs = strip_runs(codes, marks)
    if not nb:
        return (f'<svg class="{cls}" viewBox="0 0 1 1" preserveAspectRatio="none" '
                'height="12"></svg>')
    rects = [f'<rect x="{k}" width="{w}" height="1" fill="{_KIND_FILLS[sh]}" '
             f'data-outcome="{_KIND_ATTRS[sh]}"><title>{esc(title)}</title></rect>'
             for k, w, sh, title in runs]
    return (f'<svg class="{cls}" viewBox="0 0 {nb} 1" preserveAspectRatio="none" '
            f'height="12">{"".join(rects)}</svg>')


def strip_row_html(mode: str, codes: np.ndarray, marks: int = STRIP_MARKS) -> str:
    """One mode's labelled row of the strip (see :func:`strip_html`)."""
    return (f'<span class="cfw-strip-label">{esc(mode)}</span>'
            + strip_row_svg(codes, f"cfw-strip-{esc(mode)}", marks))


def strip_frame_html(n: int, rows: Sequence[str], noted: Mapping[int, str] | None = None,
                     marks: int = STRIP_MARKS) -> str:
    """The strip around its rows (:func:`strip_row_html`) for a cart of ``n`` lines, with
    the row of noted lines first (see :func:`strip_html`)."""
    edges = strip_edges(n, marks)
    nb = max(len(edges) - 1, 1)
    marks_ = []
    for pos, text in sorted((noted or {}).items()):
        if not 1 <= pos <= n:
            continue
        b = int(np.searchsorted(edges, pos - 1, side="right")) - 1
        marks_.append(f'<rect x="{b}" width="1" height="1" fill="{NOTE_COLOR}" '
                      f'data-line="{pos}"><title>{esc(f"line {pos:,}: {text}")}</title></rect>')
    head = ('<span class="cfw-strip-label">notes</span>'
            f'<svg class="cfw-strip-notes" viewBox="0 0 {nb} 1" preserveAspectRatio="none" '
            f'height="7">{"".join(marks_)}</svg>')
    binned = (f"{n:,} lines in {nb:,} marks of ~{n / nb:,.0f} lines; a mark shows the "
              "most telling outcome it holds" if n > marks else f"{n:,} lines, one mark each")
    return (f'<div class="cfw"><div class="cfw-strip">{head}{"".join(rows)}</div>'
            f'<div class="cfw-sub cfw-strip-note">{esc(binned)}</div></div>')


def strip_html(outcomes: Mapping[str, Sequence[str]], noted: Mapping[int, str] | None = None,
               marks: int = STRIP_MARKS) -> str:
    """The timeline strip of one cart: a row of marks per mode (``outcomes``: mode -> the
    outcome of every line, in line order) coloured with the report's palette, and a row
    marking the noted lines (``noted``: position -> the note's text, shown as a tooltip)."""
    n = max((len(v) for v in outcomes.values()), default=0)
    rows = [strip_row_html(mode, strip_codes(outs), marks) for mode, outs in outcomes.items()]
    return strip_frame_html(n, rows, noted, marks)


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
    return (f'<div class="cfw cfw-strip"><span class="cfw-strip-label">{esc(where)}</span>'
            f'<svg class="cfw-strip-cursor" viewBox="0 0 {nb} 1" preserveAspectRatio="none" '
            f'height="6"><rect x="{x:g}" width="{w:g}" height="1" fill="#111111"/></svg></div>')
