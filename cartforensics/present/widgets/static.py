"""The timeline view without a kernel: a self-contained HTML fragment that draws a scrubber's
cart with the same ES module (``static/timeline.js``) from data embedded in the page. This
is the ``text/html`` beside the live widget's view, what an HTML export of a notebook shows,
and what a report can embed. No network: the module, its CSS and the data are in the page.

The export holds a bounded set of positions: every position of a cart of up to
:data:`STATIC_POSITIONS` lines (300); of a longer cart :data:`STATIC_LONG_POSITIONS` (40):
the opening position and the one before, both ends, problem lines with the line before each,
and evenly spread positions (a step lands on the nearest position held, and the view says
so). A frame of a long cart is ~25 KB, so a static copy stays under ~1 MB.

>>> embed_json({"a": "</script><!--"})
'{"a":"\\\\u003c/script\\\\u003e\\\\u003c!--"}'
"""

from __future__ import annotations

import html
import json
import secrets
from pathlib import Path
from typing import Any

import numpy as np

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_POSITIONS = 300  # carts up to this many lines: a static export holds every position
STATIC_LONG_POSITIONS = 40  # positions held of a longer cart
_TRAITS = ("cart", "carts", "cart_id", "carts_note", "vocab", "position", "status",
           "notes_list", "notes_where", "context_rows")


def embed_json(value: Any) -> str:
    """JSON text safe inside ``<script type="application/json">``: ``<``, ``>``, ``&`` and
    the JavaScript line separators as ``\\u`` escapes (so ``</script>`` and ``<!--`` in the
    data can end or comment nothing)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def module_text() -> str:
    """The view's ES module as inline script text (its default export left out)."""
    js = (STATIC_DIR / "timeline.js").read_text(encoding="utf-8")
    js = js.replace("export default { render };", "")
    if "</script" in js.lower() or "<!--" in js:
        raise ValueError("timeline.js must not contain '</script' or '<!--'")
    return js


def css_text() -> str:
    """The view's CSS, without the rule that hides a notebook's static copy."""
    css = (STATIC_DIR / "timeline.css").read_text(encoding="utf-8")
    css = css.replace(".cft-notebook-copy{display:none !important}", "")
    return css.replace("</", "<\\/")


def held_positions(lines: int, start: int, problems: list[int],
                   limit: int = STATIC_POSITIONS) -> list[int]:
    """The positions a static export holds (see the module's docstring), ascending."""
    if lines <= limit:
        return list(range(lines + 1))
    limit = min(limit, STATIC_LONG_POSITIONS)
    want = {0, lines, start, max(0, start - 1)}
    for q in problems:
        if len(want) >= limit // 2:
            break
        want.update((q, q - 1))
    for q in np.linspace(0, lines, limit + 1).round().astype(int).tolist():
        if len(want) > limit:
            break
        want.add(q)
    return sorted(want)


def static_payload(scrubber: Any, limit: int = STATIC_POSITIONS) -> dict[str, Any]:
    """The data the static view draws: the scrubber's traits and the frames of the held
    positions, each frame's parts stored once (``parts``; a frame maps its keys to indices),
    and the blame rows once (``rows``; a frame's blame lists their indices)."""
    if scrubber.cart_id is None:
        raise ValueError("no cart open")
    traits = {k: getattr(scrubber, k) for k in _TRAITS}
    traits["carts"] = [[scrubber.cart_id, str(scrubber.cart.get("id", ""))]]
    traits["notes_list"] = []
    positions = held_positions(scrubber.lines, int(scrubber.position),
                               scrubber.problem_lines("go"), limit)
    parts: list[Any] = []
    index: dict[str, int] = {}
    rows: list[Any] = []  # blame rows, each stored once
    # a row is [group, path, value, position, source, differs]: str, str, str, int, str,
    # bool, always, so two rows are the same JSON exactly when their tuples are equal
    row_index: dict[tuple[Any, ...], int] = {}
    frames = []
    for p in positions:
        f = dict(scrubber.frame if p == scrubber.position and scrubber.frame
                 else scrubber.frame_at(p))
        if f.get("blame", {}).get("on"):
            b = dict(f["blame"])
            for m in ("go", "lenient"):
                refs_ = []
                for r in b[m]["rows"]:
                    t = tuple(r)
                    k = row_index.get(t)
                    if k is None:
                        k = row_index[t] = len(rows)
                        rows.append(r)
                    refs_.append(k)
                b[m] = {"rows": refs_, "more": b[m]["more"]}
            b["refs"] = True
            f["blame"] = b
        refs = {}
        for key, value in f.items():
            text = json.dumps(value, sort_keys=True, ensure_ascii=False)
            k = index.get(text)
            if k is None:
                k = index[text] = len(parts)
                parts.append(value)
            refs[key] = k
        frames.append(refs)
    n = scrubber.lines
    held = "every position" if len(positions) == n + 1 else (
        f"{len(positions):,} of its {n + 1:,} positions (a step goes to the nearest one held)")
    note = (f"A static copy of the timeline: it holds {held}. Skips, notes and the cart "
            "picker need the notebook's kernel.")
    return {"traits": traits, "positions": positions, "frames": frames, "parts": parts,
            "rows": rows, "note": note}


def static_html(scrubber: Any, limit: int = STATIC_POSITIONS, *,
                notebook_copy: bool = False) -> str:
    """The scrubber's cart as one HTML fragment: the view drawn by ``timeline.js`` from the
    embedded payload (:func:`static_payload`), and a one-line text for pages without
    JavaScript. ``notebook_copy``: the copy a notebook shows beside the live widget (class
    ``cft-notebook-copy``, hidden by the live view's CSS where the live view draws)."""
    uid = "cft-" + secrets.token_hex(6)
    payload = static_payload(scrubber, limit)
    fallback = html.escape(repr(scrubber))
    cls = "cft-host cft-notebook-copy" if notebook_copy else "cft-host"
    return (f'<div class="{cls}" id="{uid}"><div class="cft-fallback">{fallback} '
            "(the interactive view needs JavaScript)</div></div>\n"
            f"<style>{css_text()}</style>\n"
            f'<script type="application/json" id="{uid}-data">{embed_json(payload)}</script>\n'
            f'<script type="module">\n{module_text()}\n'
            f'mountStatic(document.getElementById("{uid}"), '
            f'JSON.parse(document.getElementById("{uid}-data").textContent));\n</script>\n')


__all__ = ["STATIC_DIR", "STATIC_LONG_POSITIONS", "STATIC_POSITIONS", "css_text", "embed_json",
           "held_positions", "module_text", "static_html", "static_payload"]
