"""What the timeline view draws, as plain data: the kernel builds these dicts, the browser
module (``static/timeline.js``) lays them out with ``textContent`` only. Every text here is
plain text (never HTML): log content is shown as text by the drawing, whatever it holds.

A *frame* is everything shown at one position of a cart (the line, both modes' states with
their changes, the comparison, notes, blame, where the modes part); the *cart* data is what
stays while the position moves (outcome runs of the strip, problem and noted positions).

>>> money_text(229900) == "2\u202f299,00 kr"  # a narrow no-break space between thousands
True
>>> text_segments("a\\x01b")
[['a', 0], ['\\\\x01', 1], ['b', 0]]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from cartforensics.present.escaping import visible
from cartforensics.present.widgets.common import (
    DELIVERY_COLUMNS,
    FIELD_LABELS,
    LINE_LIMIT,
    MODE_TITLES,
    SKIPPED,
    item_columns,
    pretty_json,
    text_segments,
)
from cartforensics.vocab import OUTCOME_COLORS, OUTCOME_LABELS, OUTCOMES

CART_FIELDS = ("totalPrice", "totalTax", "totalDiscount", "orderReference", "paymentStatus",
               "paymentInProgress", "processing", "lastChange")
MONEY_FIELDS = {"price", "orgPrice", "totalPrice", "tax", "totalTax", "totalDiscount"}
CELL_LIMIT = 60  # characters of a table cell shown (the full text is the cell's tooltip)
TS_NOTES = {"number": "ts written as a JSON number", "string": "ts an RFC 3339 string",
            "null": "ts null", "missing": "no ts", "invalid": "ts unreadable"}


def outcome_vocab() -> list[list[Any]]:
    """Per outcome code (OUTCOMES' order, then ``skipped``): name, label, colour, dark text."""
    out = []
    for name in (*OUTCOMES, SKIPPED):
        color = "#dddddd" if name == SKIPPED else OUTCOME_COLORS.get(name, "#999999")
        dark = name in ("unknown_type", "not_reached", SKIPPED)
        out.append([name, OUTCOME_LABELS.get(name, name), color, dark])
    return out


# -- text ---------------------------------------------------------------------------------------


def money_text(v: Any) -> str:
    """Minor units (öre) as kronor with öre, exactly (no float rounding): ``2 299,00 kr``."""
    if isinstance(v, bool) or not isinstance(v, int):
        return str(v)
    sign = "−" if v < 0 else ""
    return f"{sign}{abs(v) // 100:,}".replace(",", "\u202f") + f",{abs(v) % 100:02d} kr"


def field_text(field: str, v: Any) -> str:
    """A state value as text for a table cell."""
    if v is None or v == "":
        return "–"
    if field in MONEY_FIELDS:
        return money_text(v)
    if field == "taxRate" and isinstance(v, int) and not isinstance(v, bool):
        return f"{v / 100:g} %"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        return ", ".join(visible(str(x)) for x in v) if v else "–"
    if isinstance(v, dict):
        return ", ".join(visible(str(x)) for x in v.values() if x not in (None, "")) or "–"
    return visible(str(v))


def line_segments(raw: bytes, limit: int = LINE_LIMIT) -> tuple[str, list[list[Any]], int]:
    """``(kind, segments, bytes not shown)`` of one line: ``"json"`` and the value
    pretty-printed (numbers as written), or ``"raw"`` and its exact bytes when it is not one
    plain JSON value or is over ``limit`` bytes (see :func:`text_segments`)."""
    if len(raw) > limit:
        return "raw", text_segments(raw[:limit].decode("utf-8", "surrogateescape"), False), \
            len(raw) - limit
    text = pretty_json(raw)
    if text is None:
        return "raw", text_segments(raw.decode("utf-8", "surrogateescape"), False), 0
    return "json", text_segments(text), 0


def _cut(text: str, limit: int = CELL_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- one side ----------------------------------------------------------------------------------


def _cell(field: str, value: Any, change: tuple[Any, Any] | None) -> list[Any]:
    text = field_text(field, value)
    old = field_text(field, change[0]) if change is not None else None
    return [_cut(text), None if old is None else _cut(old), text]


def table_frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str, bool]],
                diff: Mapping[str, Any] | None, max_rows: int,
                extra: tuple[str, Mapping[int, str]] | None = None) -> dict[str, Any]:
    """A table as data: ``cols`` ``[header, numeric]``, ``rows`` ``[kind, cells]`` (kind
    ``""``, ``"add"``, ``"del"``; a cell ``[text, old text or None, full text]``), ``more``:
    unchanged rows left out past ``max_rows`` (rows that changed are always in)."""
    added = {x["id"] for x in diff["added"]} if diff else set()
    changed = diff["changed"] if diff else {}
    removed = list(diff["removed"]) if diff else []
    cols = [[h, num] for _, h, num in columns] + ([[extra[0], False]] if extra else [])
    out = []
    shown = 0
    for k, r in enumerate(rows):
        ident = r["id"]
        if k >= max_rows and ident not in added and ident not in changed:
            continue
        shown += 1
        fields = changed.get(ident, {})
        cells = [_cell(f, r.get(f), fields.get(f)) for f, _, _ in columns]
        if extra:
            t = extra[1].get(ident, "–")
            cells.append([t, None, t])
        out.append(["add" if ident in added else "", cells])
    for r in removed:
        cells = [_cell(f, r.get(f), None) for f, _, _ in columns]
        if extra:
            cells.append(["", None, ""])
        out.append(["del", cells])
    return {"cols": cols, "rows": out, "more": len(rows) - shown}


def changes_frame(diff: Mapping[str, Any]) -> list[list[str]]:
    """What changed, one ``[sign, text]`` per change (``+`` added, ``−`` removed, ``~``)."""
    out: list[list[str]] = []
    for key, word in (("items", "item"), ("deliveries", "delivery")):
        d = diff[key]
        for x in d["added"]:
            what = (f"{field_text('sku', x.get('sku'))} {field_text('name', x.get('name'))} "
                    f"× {x.get('qty')}" if key == "items"
                    else f"{field_text('provider', x.get('provider'))} items "
                    f"{field_text('items', x.get('items'))}")
            out.append(["+", f"{word} {x['id']}: {what.strip()}"])
        for x in d["removed"]:
            what = (f"{field_text('sku', x.get('sku'))} {field_text('name', x.get('name'))}"
                    if key == "items" else field_text("provider", x.get("provider")))
            out.append(["−", f"{word} {x['id']}: {what.strip()}"])
        for ident, fields in d["changed"].items():
            parts = ", ".join(f"{f} {field_text(f, a)} → {field_text(f, b)}"
                              for f, (a, b) in fields.items())
            out.append(["~", f"{word} {ident}: {parts}"])
    for f, (a, b) in diff["fields"].items():
        if f == "lastChange":
            continue
        out.append(["~", f"{FIELD_LABELS.get(f, f)}: {field_text(f, a)} → {field_text(f, b)}"])
    return out


def side_frame(mode: str, state: Mapping[str, Any], diff: Mapping[str, Any] | None,
               outcome: str | None, error: str | None, max_rows: int) -> dict[str, Any]:
    """One mode's state at a position, with what changed from the previous one."""
    items = state["items"]
    dels = state["deliveries"]
    n_qty = sum(int(i["qty"]) for i in items if isinstance(i.get("qty"), int))
    delivery_of: dict[int, list[int]] = {}
    for d in dels:
        for i in d["items"]:
            delivery_of.setdefault(i, []).append(d["id"])
    fields = diff["fields"] if diff else {}
    removed_items = diff["items"]["removed"] if diff else []
    removed_dels = diff["deliveries"]["removed"] if diff else []
    extra = ("delivery", {k: ", ".join(map(str, v)) for k, v in delivery_of.items()}) \
        if delivery_of else None
    return {
        "mode": mode,
        "title": MODE_TITLES[mode],
        "meta": [f"{len(items)} item{'s' if len(items) != 1 else ''} ({n_qty:,} pcs)",
                 f"{len(dels)} deliver{'ies' if len(dels) != 1 else 'y'}",
                 f"total {money_text(state['totalPrice'])}"],
        "outcome": outcome,
        "error": visible(error) if error else None,
        "changes": None if diff is None else changes_frame(diff),
        "items": table_frame(items, item_columns([*items, *removed_items]),
                             diff["items"] if diff else None, max_rows, extra)
        if items or removed_items else None,
        "deliveries": table_frame(dels, DELIVERY_COLUMNS,
                                  diff["deliveries"] if diff else None, max_rows)
        if dels or removed_dels else None,
        "fields": [[FIELD_LABELS[f], *_cell(f, state[f], fields.get(f))] for f in CART_FIELDS],
    }


def compare_frame(go: Mapping[str, Any], lenient: Mapping[str, Any], p: int) -> list[Any]:
    """``[same, text]``: whether the service's cart is the writer's at ``p``, and how not."""
    if go == lenient:
        return [True, "Here the service's cart (go) is the cart the writer meant (lenient)."]
    diffs = []
    ni, nl = len(go["items"]), len(lenient["items"])
    if ni != nl:
        diffs.append(f"{ni} vs {nl} items")
    if go["totalPrice"] != lenient["totalPrice"]:
        diffs.append(f"total {money_text(go['totalPrice'])} vs "
                     f"{money_text(lenient['totalPrice'])}")
    if len(go["deliveries"]) != len(lenient["deliveries"]):
        diffs.append(f"{len(go['deliveries'])} vs {len(lenient['deliveries'])} deliveries")
    for f in ("orderReference", "paymentStatus", "paymentInProgress"):
        if go[f] != lenient[f]:
            diffs.append(f"{FIELD_LABELS[f]} {field_text(f, go[f])} vs "
                         f"{field_text(f, lenient[f])}")
    if not diffs:
        diffs.append("the items' details or the last change differ")
    where = "the start" if p == 0 else f"line {p:,}"
    return [False, f"After {where} the service's cart (go) differs from what the writer meant "
                   f"(lenient): {'; '.join(diffs)}."]


def value_text(v: Any) -> str:
    """A blamed value as JSON-like text."""
    if isinstance(v, str):
        return visible(json.dumps(v, ensure_ascii=False))
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return visible(json.dumps(v, ensure_ascii=False))
    return str(v)


def blame_group(path: str) -> str:
    """The group a blamed field is listed under: ``cart``, ``items[3]``, ``deliveries[1]``."""
    if "[" not in path:
        return "cart"
    return path[: path.index("]") + 1]


__all__ = ["CART_FIELDS", "MONEY_FIELDS", "TS_NOTES", "blame_group", "changes_frame",
           "compare_frame", "field_text", "line_segments", "money_text", "outcome_vocab",
           "side_frame", "table_frame", "text_segments", "value_text"]
