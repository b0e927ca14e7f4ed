"""Jupyter widgets: a time-travel scrubber over one cart's lines, and a fleet dashboard.

:class:`TimelineScrubber` steps through a cart's lines the way a time-travel debugger steps
through actions: at every position the line itself (pretty-printed, or its raw bytes escaped
when it is not JSON), its outcome and error in ``go`` mode (what the service rebuilt) and in
``lenient`` mode (what the writer meant), the cart after it on both sides, and what changed.
A line can be skipped (the cart is replayed without it, like Redux DevTools skipping an
action) and the skips reset.

:class:`FleetDashboard` filters every line of a replay by date, type and outcome, redraws the
rate charts of :mod:`cartforensics.plots`, ranks the worst carts and opens the chosen one in a
scrubber below.

Everything taken from the logs (skus, names, types, errors, cart ids, raw bytes) is
HTML-escaped before it reaches an HTML widget: a sku ``<img src=x onerror=alert(1)>`` shows as
that text.

>>> ev = cf.read_events("sample_data")                             # doctest: +SKIP
>>> TimelineScrubber(cf.replay(ev), cart_id="cart-1003")           # doctest: +SKIP
>>> FleetDashboard(cf.replay(ev))                                  # doctest: +SKIP
"""

from __future__ import annotations

import html
import io
import json
import os
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from .cart import empty_cart, state_to_json
from .escaping import char_escape, visible
from .gojson import marshal
from .investigate import blame_index
from .investigate import leaves as _investigate_leaves
from .notes import STANDARD_TAGS, Notes, NotesError
from .plots import OUTCOME_COLORS, OUTCOME_LABELS, pick_freq, plot_outcome_mix, plot_rates
from .replay import OUTCOMES, Replay, diff_states
from .replay import replay as run_replay

__all__ = ["FleetDashboard", "TimelineScrubber", "escape_bytes", "pretty_line", "strip_bins",
           "strip_cursor_html", "strip_edges", "strip_html"]

MODES = ("go", "lenient")
MODE_TITLES = {
    "go": "go: what the service rebuilt",
    "lenient": "lenient: what the writer meant",
}
SKIPPED = "skipped"  # the outcome shown for a line the analyst switched off
LINE_LIMIT = 8192  # bytes of a line shown (a line may be over 256 KiB)
MAX_CART_OPTIONS = 500  # carts listed in the picker at once (type to filter the rest)
_MONEY_FIELDS = {"price", "orgPrice", "totalPrice", "tax", "totalTax", "totalDiscount"}

# -- text made safe ---------------------------------------------------------------------------


def _e(v: Any) -> str:
    """Any value as escaped HTML text (quotes too, so it is safe in attributes)."""
    return html.escape(_visible(v if isinstance(v, str) else str(v)), quote=True)


_visible = visible  # the shared helpers of cartforensics.escaping
_char_escape = char_escape


def _mark_escapes(text: str, keep_newlines: bool = False) -> str:
    """HTML element content for ``text`` (never an attribute: quotes stay as they are),
    escaped, with every non-printing character shown as a highlighted escape (so that
    ``\\xff`` in the bytes and a literal ``\\xff`` in the text differ)."""
    if text.isprintable():
        return html.escape(text, quote=False)
    out = []
    run: list[str] = []
    for ch in text:
        if ch.isprintable() or (keep_newlines and ch == "\n"):
            run.append(ch)
            continue
        if run:
            out.append(html.escape("".join(run), quote=False))
            run = []
        out.append(f'<span class="cfw-esc">{html.escape(_char_escape(ch))}</span>')
    if run:
        out.append(html.escape("".join(run), quote=False))
    return "".join(out)


def escape_bytes(raw: bytes) -> str:
    """A line's exact bytes as HTML: valid UTF-8 text as text, every other byte and every
    non-printing character as a highlighted ``\\xNN`` / ``\\uNNNN`` escape."""
    return _mark_escapes(raw.decode("utf-8", "surrogateescape"))


class _NotPlainJSON(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):  # a duplicated key: Go decodes both, json.loads keeps one
        raise _NotPlainJSON("duplicate key")
    return d


def _no_constant(name: str) -> Any:
    raise _NotPlainJSON(name)  # NaN, Infinity: not JSON


class _Number(str):
    """A JSON number kept as written (``1e3`` stays ``1e3``, ``1e400`` never becomes inf)."""


def _dump(v: Any, depth: int, out: list[str]) -> None:
    pad = "  " * (depth + 1)
    if isinstance(v, _Number):
        out.append(str(v))
    elif isinstance(v, str):
        out.append(json.dumps(v, ensure_ascii=False))
    elif v is None or isinstance(v, bool):
        out.append({None: "null", True: "true", False: "false"}[v])
    elif isinstance(v, dict):
        if not v:
            out.append("{}")
            return
        out.append("{\n")
        for k, (key, val) in enumerate(v.items()):
            out.append(f"{pad}{json.dumps(key, ensure_ascii=False)}: ")
            _dump(val, depth + 1, out)
            out.append(",\n" if k < len(v) - 1 else "\n")
        out.append("  " * depth + "}")
    else:  # a list
        if not v:
            out.append("[]")
            return
        out.append("[\n")
        for k, val in enumerate(v):
            out.append(pad)
            _dump(val, depth + 1, out)
            out.append(",\n" if k < len(v) - 1 else "\n")
        out.append("  " * depth + "]")


def pretty_line(raw: bytes, limit: int = LINE_LIMIT) -> tuple[str, str]:
    """``(kind, html)`` of one line: ``"json"`` and the value pretty-printed (two-space
    indent, numbers as written), or ``"raw"`` and the exact bytes escaped
    (:func:`escape_bytes`) when the line is not one plain JSON value (not UTF-8, glued, torn,
    a duplicated key, NaN) or is cut at ``limit`` bytes."""
    if len(raw) > limit:
        rest = len(raw) - limit
        return "raw", escape_bytes(raw[:limit]) + (
            f'<span class="cfw-note"> … {rest:,} more bytes not shown</span>'
        )
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_pairs,
                           parse_constant=_no_constant, parse_int=_Number, parse_float=_Number)
        out: list[str] = []
        _dump(value, 0, out)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "raw", escape_bytes(raw)
    return "json", _mark_escapes("".join(out), keep_newlines=True)


def _label_text(v: Any, limit: int = 60) -> str:
    """Log content as a plain-text widget label: non-printing characters escaped, cut."""
    text = _visible(v if isinstance(v, str) else str(v))
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- values ------------------------------------------------------------------------------------


def _money(v: Any) -> str:
    """Minor units (öre) as major units with two decimals, exactly (no float rounding)."""
    if isinstance(v, bool) or not isinstance(v, int):
        return str(v)
    sign = "-" if v < 0 else ""
    return f"{sign}{abs(v) // 100:,}.{abs(v) % 100:02d}"


def _fmt(field: str, v: Any) -> str:
    """A state value as text for a table cell (not yet escaped)."""
    if v is None or v == "":
        return "–"
    if field in _MONEY_FIELDS:
        return _money(v)
    if field == "taxRate" and isinstance(v, int) and not isinstance(v, bool):
        return f"{v / 100:g} %"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        return ", ".join(str(x) for x in v) if v else "–"
    if isinstance(v, dict):
        return ", ".join(str(x) for x in v.values() if x not in (None, "")) or "–"
    return str(v)


def _when(ts: Any) -> str:
    if ts is None or pd.isna(ts):
        return "no readable ts"
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    t = t.tz_convert("UTC")
    if t.nanosecond or t.microsecond:
        return t.isoformat().replace("+00:00", "Z")
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def _str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _parse_time(text: str) -> pd.Timestamp:
    t = pd.Timestamp(text.strip())
    if pd.isna(t):
        raise ValueError("not a time")
    return t.tz_localize("UTC") if t.tzinfo is None else t


# -- look --------------------------------------------------------------------------------------

_CSS = """
<style>
.cfw{font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px;
 color:var(--jp-ui-font-color1,#222);line-height:1.4}
.cfw h4{margin:2px 0 6px 0;font-size:14px;font-weight:600}
.cfw .cfw-sub{color:var(--jp-ui-font-color2,#666);font-size:12px}
.cfw-meta{display:flex;flex-wrap:wrap;gap:4px 16px;margin:2px 0 6px 0}
.cfw-meta b{font-weight:600}
.cfw-badge{display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;font-size:12px;
 font-weight:600;white-space:nowrap}
.cfw-badge.cfw-dark{color:#111}
.cfw-err{font-family:var(--jp-code-font-family,monospace);font-size:12px;
 color:var(--jp-error-color1,#b00020);word-break:break-word}
.cfw-code{font-family:var(--jp-code-font-family,monospace);font-size:12px;white-space:pre-wrap;
 word-break:break-all;background:var(--jp-layout-color2,#f5f5f5);
 border:1px solid var(--jp-border-color2,#e0e0e0);border-radius:4px;padding:6px 8px;margin:4px 0;
 max-height:260px;overflow:auto}
.cfw-esc{background:#ffe08a;color:#000;border-radius:2px;padding:0 1px}
.cfw-note{color:var(--jp-ui-font-color2,#666);font-style:italic}
.cfw table{border-collapse:collapse;width:100%;margin:2px 0 8px 0;font-size:12px}
.cfw th{text-align:left;font-weight:600;color:var(--jp-ui-font-color2,#555);
 border-bottom:1px solid var(--jp-border-color1,#bbb);padding:2px 6px;white-space:nowrap}
.cfw td{border-bottom:1px solid var(--jp-border-color2,#e5e5e5);padding:2px 6px;
 vertical-align:top;max-width:220px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.cfw td.cfw-num,.cfw th.cfw-num{text-align:right;font-variant-numeric:tabular-nums}
.cfw tr.cfw-add td{background:rgba(0,158,115,.16)}
.cfw tr.cfw-del td{background:rgba(213,94,0,.12);text-decoration:line-through;
 color:var(--jp-ui-font-color2,#666)}
.cfw td.cfw-chg{background:rgba(230,159,0,.28)}
.cfw td.cfw-chg s{color:var(--jp-ui-font-color2,#777);margin-right:4px}
.cfw .cfw-kv td:first-child{color:var(--jp-ui-font-color2,#555);width:40%}
.cfw ul.cfw-diff{margin:2px 0 4px 0;padding-left:18px}
.cfw ul.cfw-diff li{margin:1px 0}
.cfw .cfw-plus{color:#00795a;font-weight:600}
.cfw .cfw-minus{color:#b34700;font-weight:600}
.cfw .cfw-tilde{color:#9a6a00;font-weight:600}
.cfw-banner{padding:6px 10px;border-radius:4px;margin:2px 0}
.cfw-banner.cfw-same{background:rgba(0,158,115,.10);border-left:4px solid #009E73}
.cfw-banner.cfw-differ{background:rgba(213,94,0,.10);border-left:4px solid #D55E00}
.cfw-side{border:1px solid var(--jp-border-color2,#e0e0e0);border-radius:6px;padding:6px 10px;
 overflow-x:auto}
.cfw-side.cfw-go{border-top:4px solid #0072B2}
.cfw-side.cfw-lenient{border-top:4px solid #009E73}
.cfw-skipline{color:var(--jp-ui-font-color2,#666)}
.cfw table.cfw-compact{width:auto}
.cfw table.cfw-compact td,.cfw table.cfw-compact th{padding:2px 10px}
.cfw .cfw-legend{padding:0 6px;border-radius:3px}
.cfw .cfw-legend.cfw-add{background:rgba(0,158,115,.16)}
.cfw .cfw-legend.cfw-del{background:rgba(213,94,0,.12);text-decoration:line-through}
.cfw .cfw-legend.cfw-chg{background:rgba(230,159,0,.28)}
.cfw .cfw-legend s{color:var(--jp-ui-font-color2,#777)}
.cf-scrubber .widget-html-content{min-width:0;max-width:100%}
.cf-scrubber .cf-go-state,.cf-scrubber .cf-lenient-state{min-width:0;overflow:hidden}
</style>
"""


def _badge(outcome: str) -> str:
    color = OUTCOME_COLORS.get(outcome, "#999999")
    label = OUTCOME_LABELS.get(outcome, outcome)
    dark = " cfw-dark" if outcome in ("unknown_type", "not_reached", SKIPPED) else ""
    if outcome == SKIPPED:
        color = "#dddddd"
    return f'<span class="cfw-badge{dark}" style="background:{color}">{_e(label)}</span>'


# -- one side (mode) of a cart ----------------------------------------------------------------


class _Side:
    """One mode's view of the current cart: outcomes per position and states, with the
    analyst's skipped lines left out (the cart replayed without them)."""

    def __init__(self, rp: Replay, cart_id: str, rows: np.ndarray, skipped: np.ndarray):
        self.replay = rp
        self.cart_id = cart_id
        n = len(rows)
        oc = rp.outcomes
        if not skipped.any():
            self.sub: Replay | None = None
            self.counts = np.arange(n + 1)
            hist = rp.history(cart_id)
            self.outcome = oc["outcome"].astype(str).to_numpy()[rows].tolist()
            self.error = [_str_or_none(v) for v in oc["error"].to_numpy()[rows]]
            # an applied line moves lastChange even where the state object stays the same
            self.changed = [False, *(c or o == "applied" for c, o in
                                     zip(hist["changed"].tolist(), self.outcome, strict=True))]
            self.has_cart = True
            return
        kept = rows[~skipped]
        sub = run_replay(rp.events.iloc[kept], mode=rp.mode, catalog=rp.catalog,
                         registry=rp.registry)
        self.sub = sub
        self.counts = np.r_[0, np.cumsum(~skipped)]
        self.has_cart = cart_id in sub.cart_ids
        self.outcome = [SKIPPED] * n
        self.error = [None] * n
        self.changed = [False] * (n + 1)
        if self.has_cart:
            sub_rows = sub.rows_of(cart_id)
            so = sub.outcomes
            s_out = so["outcome"].astype(str).to_numpy()[sub_rows].tolist()
            s_err = [_str_or_none(v) for v in so["error"].to_numpy()[sub_rows]]
            s_chg = sub.history(cart_id)["changed"].tolist()
            for j, pos in enumerate(np.flatnonzero(~skipped).tolist()):
                self.outcome[pos] = s_out[j]
                self.error[pos] = s_err[j]
                self.changed[pos + 1] = s_chg[j] or s_out[j] == "applied"

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


# -- HTML of a state ----------------------------------------------------------------------------

_ITEM_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    # (state key, header, numeric)
    ("id", "id", True), ("sku", "sku", False), ("name", "name", False), ("qty", "qty", True),
    ("price", "price", True), ("orgPrice", "was", True), ("totalPrice", "total", True),
    ("taxRate", "tax rate", True), ("storeId", "store", False),
    ("unresolved", "unresolved", False),
)
# columns shown only when some row needs them (the rest is in the exported state JSON)
_OPTIONAL_ITEM_COLUMNS: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "orgPrice": lambda r: r["orgPrice"] > r["price"],
    "taxRate": lambda r: r["taxRate"] != 2500,
    "storeId": lambda r: r["storeId"] is not None,
    "unresolved": lambda r: bool(r["unresolved"]),
}


def _item_columns(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, bool]]:
    return [c for c in _ITEM_COLUMNS
            if c[0] not in _OPTIONAL_ITEM_COLUMNS
            or any(_OPTIONAL_ITEM_COLUMNS[c[0]](r) for r in rows)]
_DELIVERY_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("id", "id", True), ("provider", "provider", False), ("price", "price", True),
    ("items", "items", False), ("pickupPoint", "pickup point", False),
)
_CART_FIELDS = (
    "totalPrice", "totalTax", "totalDiscount", "orderReference", "paymentStatus",
    "paymentInProgress", "processing", "lastChange",
)
_FIELD_LABELS = {
    "totalPrice": "total price", "totalTax": "total tax", "totalDiscount": "total discount",
    "orderReference": "order reference", "paymentStatus": "payment status",
    "paymentInProgress": "payment in progress", "processing": "processing",
    "lastChange": "last change",
}


_CELL_LIMITS = {"name": 30, "sku": 28, "provider": 18, "pickupPoint": 30}


def _cell(field: str, value: Any, numeric: bool, change: tuple[Any, Any] | None,
          limit: int | None = None) -> str:
    limit = limit or _CELL_LIMITS.get(field, 24)
    text = _fmt(field, value)
    full = _e(text)
    shown = _e(text if len(text) <= limit else text[: limit - 1] + "…")
    cls = ["cfw-num"] if numeric else []
    inner = shown
    if change is not None:
        cls.append("cfw-chg")
        inner = f"<s>{_e(_fmt(field, change[0]))}</s>{shown}"
    c = f' class="{" ".join(cls)}"' if cls else ""
    return f'<td{c} title="{full}">{inner}</td>'


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str, bool]],
           diff: Mapping[str, Any] | None, max_rows: int, extra: Callable[[Mapping], str]
           | None = None, extra_header: str = "") -> str:
    added = {x["id"] for x in diff["added"]} if diff else set()
    changed = diff["changed"] if diff else {}
    removed = list(diff["removed"]) if diff else []
    head = "".join(
        f'<th class="cfw-num">{_e(h)}</th>' if num else f"<th>{_e(h)}</th>"
        for _, h, num in columns
    ) + (f"<th>{_e(extra_header)}</th>" if extra else "")
    # render what fits: the first max_rows rows, plus every row that changed further down
    shown = [r for k, r in enumerate(rows)
             if k < max_rows or r["id"] in added or r["id"] in changed]
    body = []
    for r in shown:
        fields = changed.get(r["id"], {})
        cls = ' class="cfw-add"' if r["id"] in added else ""
        cells = "".join(_cell(k, r.get(k), num, fields.get(k)) for k, _, num in columns)
        if extra:
            cells += f"<td>{extra(r)}</td>"
        body.append(f"<tr{cls}>{cells}</tr>")
    for r in removed:
        cells = "".join(_cell(k, r.get(k), num, None) for k, _, num in columns)
        if extra:
            cells += "<td></td>"
        body.append(f'<tr class="cfw-del" title="removed">{cells}</tr>')
    more = len(rows) - len(shown)
    note = (f'<div class="cfw-note">… {more:,} more unchanged rows not shown '
            "(export the state for all of them)</div>" if more > 0 else "")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{note}"


def _diff_list(diff: Mapping[str, Any] | None) -> str:
    if diff is None:
        return ""
    out = []
    for key, word in (("items", "item"), ("deliveries", "delivery")):
        d = diff[key]
        for x in d["added"]:
            what = (f"{x.get('sku', '')} {x.get('name', '')} × {x.get('qty')}"
                    if key == "items" else f"{x.get('provider', '')} items "
                    f"{_fmt('items', x.get('items'))}")
            out.append(f'<li><span class="cfw-plus">+</span> {word} {_e(x["id"])}: '
                       f"{_e(what.strip())}</li>")
        for x in d["removed"]:
            what = (f"{x.get('sku', '')} {x.get('name', '')}" if key == "items"
                    else x.get("provider", ""))
            out.append(f'<li><span class="cfw-minus">−</span> {word} {_e(x["id"])}: '
                       f"{_e(what.strip())}</li>")
        for ident, fields in d["changed"].items():
            parts = ", ".join(
                f"{_e(f)} {_e(_fmt(f, a))} → {_e(_fmt(f, b))}"
                for f, (a, b) in fields.items()
            )
            out.append(f'<li><span class="cfw-tilde">~</span> {word} {_e(ident)}: '
                       f"{parts}</li>")
    for f, (a, b) in diff["fields"].items():
        if f == "lastChange":
            continue
        out.append(f'<li><span class="cfw-tilde">~</span> {_e(_FIELD_LABELS.get(f, f))}: '
                   f"{_e(_fmt(f, a))} → {_e(_fmt(f, b))}</li>")
    if not out:
        return '<div class="cfw-note">no change from the previous position</div>'
    return f'<ul class="cfw-diff">{"".join(out)}</ul>'


def _state_html(mode: str, state: Mapping[str, Any], diff: Mapping[str, Any] | None,
                outcome: str | None, error: str | None, max_rows: int) -> str:
    delivery_of: dict[int, list[int]] = {}
    for d in state["deliveries"]:
        for i in d["items"]:
            delivery_of.setdefault(i, []).append(d["id"])
    fields = diff["fields"] if diff else {}
    kv = "".join(
        f"<tr><td>{_e(_FIELD_LABELS[f])}</td>"
        + _cell(f, state[f], False, fields.get(f), limit=40) + "</tr>"
        for f in _CART_FIELDS
    )
    items = state["items"]
    n_qty = sum(int(i["qty"]) for i in items)
    head = (f"<h4>{_e(MODE_TITLES[mode])}</h4>"
            f'<div class="cfw-meta"><span>{len(items)} item{"s" if len(items) != 1 else ""}'
            f" ({n_qty:,} pcs)</span><span>{len(state['deliveries'])} deliver"
            f'{"ies" if len(state["deliveries"]) != 1 else "y"}</span>'
            f"<span>total <b>{_e(_money(state['totalPrice']))}</b></span>")
    if outcome is not None:
        head += f"<span>this line: {_badge(outcome)}</span>"
    head += "</div>"
    if error:
        head += f'<div class="cfw-err">{_e(error)}</div>'

    def delivery_cell(r: Mapping[str, Any]) -> str:
        return _e(", ".join(str(x) for x in delivery_of.get(r["id"], [])) or "–")

    removed = diff["items"]["removed"] if diff else []
    items_html = (_table(items, _item_columns([*items, *removed]),
                         diff["items"] if diff else None, max_rows,
                         delivery_cell if delivery_of else None, "delivery")
                  if items or removed else '<div class="cfw-note">no items</div>')
    dels = state["deliveries"]
    dels_html = (_table(dels, _DELIVERY_COLUMNS, diff["deliveries"] if diff else None, max_rows)
                 if dels or (diff and diff["deliveries"]["removed"])
                 else '<div class="cfw-note">no deliveries</div>')
    changes = _diff_list(diff) if diff is not None else (
        '<div class="cfw-note">start: the empty cart before line 1</div>')
    return (f'<div class="cfw cfw-side cfw-{mode}">{head}'
            f'<div class="cfw-sub">changes from the previous position</div>{changes}'
            f'<div class="cfw-sub">items</div>{items_html}'
            f'<div class="cfw-sub">deliveries</div>{dels_html}'
            f'<div class="cfw-sub">totals and checkout</div><table class="cfw-kv">{kv}</table>'
            "</div>")


def _empty_diff() -> dict[str, Any]:
    blank = {"added": [], "removed": [], "changed": {}}
    return {"items": dict(blank), "deliveries": dict(blank), "fields": {}}


def _pair(rp: Replay, lenient: Replay | None) -> tuple[Replay, Replay]:
    """(go, lenient) replays of the same events; the missing one is replayed from
    ``rp.events`` with the same catalog and registry."""
    if not isinstance(rp, Replay):
        raise TypeError(f"expected a Replay (cartforensics.replay(...)), not {type(rp).__name__}")
    if rp.mode == "lenient":
        if lenient is not None and lenient is not rp:
            raise ValueError("the first replay is in lenient mode: pass the go-mode one first")
        go = run_replay(rp.events, mode="go", catalog=rp.catalog, registry=rp.registry)
        return go, rp
    if lenient is None:
        lenient = run_replay(rp.events, mode="lenient", catalog=rp.catalog,
                             registry=rp.registry)
    if lenient.mode != "lenient":
        raise ValueError(f"lenient= must be a lenient-mode replay, not {lenient.mode!r}")
    a, b = rp.outcomes, lenient.outcomes
    same = len(a) == len(b) and bool(
        (a["line"].to_numpy() == b["line"].to_numpy()).all()
        and (a["cart_id"].astype(str).to_numpy() == b["cart_id"].astype(str).to_numpy()).all()
    )
    if not same:
        raise ValueError("the two replays are not of the same lines: replay one read_events "
                         "DataFrame in both modes")
    return rp, lenient


def _cart_table(go: Replay, lenient: Replay) -> pd.DataFrame:
    """Per cart: lines, problem lines in both modes, lines lost (applied only in lenient)."""
    a = go.outcomes["outcome"].astype(str).to_numpy()
    b = lenient.outcomes["outcome"].astype(str).to_numpy()
    frame = pd.DataFrame({
        "cart_id": go.outcomes["cart_id"].astype(str).to_numpy(),
        "lines": 1,
        "problems_go": (a != "applied").astype(int),
        "problems_lenient": (b != "applied").astype(int),
        "lost": ((b == "applied") & (a != "applied")).astype(int),
    })
    t = frame.groupby("cart_id", sort=False).sum()
    t = t.reindex(go.cart_ids, fill_value=0)
    t.index.name = "cart_id"
    return t


# -- the workbench: the timeline strip, notes, blame, context ---------------------------------

STRIP_MARKS = 500  # most marks drawn per row: a longer cart is binned
BLAME_AUTO_LINES = 2000  # blame is read at once for carts up to this many lines
CONTEXT_ROWS = 200  # rows of the context table shown
BLAME_ROWS = 400  # fields listed in each blame (the cart's own first; scrubber.blame() has all)
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
    codes = np.fromiter((code.get(o, 0) for o in outcomes), dtype=np.int64, count=n)
    edges = strip_edges(n, marks)
    hot = np.zeros((n, len(_STRIP_KINDS)), dtype=np.int64)
    hot[np.arange(n), codes] = 1
    counts = np.add.reduceat(hot, edges[:-1], axis=0)
    order = [code[k] for k in _STRIP_PRIORITY]
    out = []
    for b in range(len(edges) - 1):
        row = counts[b]
        shown = next(_STRIP_KINDS[i] for i in order if row[i])
        out.append((int(edges[b]) + 1, int(edges[b + 1]), shown,
                    {_STRIP_KINDS[i]: int(row[i]) for i in range(len(_STRIP_KINDS)) if row[i]}))
    return out


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


def _notes_html(notes: Sequence[Mapping[str, Any]], where: str) -> str:
    """The notes on the line shown, escaped."""
    if not notes:
        return f'<div class="cfw cfw-note">no note on {_e(where)}</div>'
    out = []
    for n in notes:
        tags = "".join(f'<span class="cfw-tag">{_e(t)}</span>' for t in n.get("tags", []))
        who = " · ".join(_e(v) for v in (n.get("author"), n.get("created")) if v)
        out.append(f'<div class="cfw-noted">{tags}<div class="cfw-note-text">'
                   f'{_mark_escapes(str(n.get("note", "")), keep_newlines=True)}</div>'
                   f'<div class="cfw-sub">{who}</div></div>')
    return f'<div class="cfw"><div class="cfw-sub">notes on {_e(where)}</div>{"".join(out)}</div>'


def _note_label(n: Mapping[str, Any]) -> str:
    tags = ", ".join(n.get("tags", []))
    text = " ".join(str(n.get("note", "")).split())
    return _label_text(f"{n['cart_id']} · line {n['line']} · {tags or 'no tag'} · {text}", 90)


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


def _same_value(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _offset_text(td: pd.Timedelta) -> str:
    s = int(td.total_seconds())
    sign = "-" if s < 0 else "+"
    s = abs(s)
    return f"{sign}{s // 60}m{s % 60:02d}s"


def _context_html(ctx: pd.DataFrame, lenient_outcome: Sequence[str], limit: int) -> str:
    if ctx.empty:
        why = ctx.attrs.get("reason", "")
        return ('<div class="cfw cfw-note">no line of another cart in this window'
                + (f" ({_e(why)})" if "no line" in why else "") + "</div>")
    rows = []
    for (_, r), lo in zip(ctx.head(limit).iterrows(), lenient_outcome, strict=False):
        rows.append(f"<tr><td>{_e(_when(r['ts']))}</td><td>{_e(_offset_text(r['offset']))}</td>"
                    f"<td>{_e(r['cart_id'])}</td><td class=\"cfw-num\">{int(r['line']):,}</td>"
                    f"<td>{_e(r['type']) if r['type'] is not None else '–'}</td>"
                    f"<td>{_badge(r['outcome'])}</td><td>{_badge(lo)}</td></tr>")
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


class TimelineScrubber(widgets.VBox):
    """Step through one cart's lines in both modes, side by side.

    ``replay``: a :class:`~cartforensics.replay.Replay` (go mode; a lenient one works too and
    the go one is replayed from its events); ``lenient``: the lenient-mode replay of the same
    events (replayed when not given); ``cart_id``: the cart to open (default: the one with
    the most problem lines). Position ``p`` (the slider, 0 … lines) shows the cart after its
    first ``p`` lines; 0 is the empty cart before line 1.

    The investigation: ``notes`` (a :class:`~cartforensics.notes.Notes`, or the path of its
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
        self.go, self.lenient = _pair(replay, lenient)
        self.replays = {"go": self.go, "lenient": self.lenient}
        self.max_rows = max_rows
        self._busy = False
        self._cart: str | None = None
        self._rows = np.zeros(0, dtype=np.int64)
        self._skipped = np.zeros(0, dtype=bool)
        self._sides: dict[str, _Side] = {}
        self._problems: dict[str, np.ndarray] = {}
        self._cache: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
        carts = _cart_table(self.go, self.lenient)
        order = carts.assign(_id=carts.index).sort_values(
            ["problems_go", "lost", "_id"], ascending=[False, False, True], kind="stable")
        self._carts = order.drop(columns="_id")
        self.renders = 0  # how many times the view was drawn (for tests and benchmarks)
        self._blame_on = False
        self._blame_rows: dict[str, list[int]] = {"go": [], "lenient": []}
        self._kept = np.zeros(0, dtype=np.int64)

        lay = widgets.Layout
        self.style_html = widgets.HTML(_CSS + _WORKBENCH_CSS)
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

        def button(text: str, tip: str, cls: str, width: str, icon: str = "") -> widgets.Button:
            b = widgets.Button(description=text, tooltip=tip, icon=icon,
                               layout=lay(width=width))
            b.add_class(cls)
            return b

        self.prev_problem_button = button("problem", "previous line the service did not "
                                          "apply", "cf-prev-problem", "96px", "step-backward")
        self.back_button = button("", "step back one line", "cf-step-back", "40px",
                                  "chevron-left")
        self.forward_button = button("", "step forward one line", "cf-step-forward", "40px",
                                     "chevron-right")
        self.next_problem_button = button("problem", "next line the service did not apply",
                                          "cf-next-problem", "96px", "step-forward")
        self.line_input = widgets.BoundedIntText(min=0, max=0, value=0, description="line",
                                                 layout=lay(width="150px"))
        self.time_input = widgets.Text(placeholder="2025-11-01T08:03:00Z", description="time",
                                       continuous_update=False, layout=lay(width="290px"))
        self.seek_button = button("seek", "go to the state at this time (SPEC §6)", "cf-seek",
                                  "60px")
        self.skip_button = widgets.ToggleButton(
            value=False, description="skip this line", icon="ban",
            tooltip="replay the cart as if this line had never been written",
            layout=lay(width="140px"))
        self.skip_button.add_class("cf-skip")
        self.reset_button = button("reset skips", "replay every line again", "cf-reset",
                                   "110px")
        self.skip_html = widgets.HTML()
        self.export_button = button("export", "state JSON and history into the output below",
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
        the skipped lines left out."""
        self._need_cart()
        return self._state(mode, self.position if position is None else int(position))

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
                "outcome": side.outcome[p - 1] if p else None,
                "error": side.error[p - 1] if p else None,
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
        body = (f'<div class="cfw"><h4>State at position {p} of {_e(self._cart)}</h4>'
                f'<div class="cfw-code">{_mark_escapes(text, keep_newlines=True)}</div>'
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
        where = {ln: k + 1 for k, ln in enumerate(self._file_lines)}
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
        self.note_save = widgets.Button(description="add note", icon="sticky-note",
                                        tooltip="write the note into the notes file",
                                        layout=lay(width="110px"))
        self.note_save.add_class("cf-note-save")
        self.prev_note_button = widgets.Button(description="note", icon="step-backward",
                                               tooltip="previous noted line of this cart",
                                               layout=lay(width="80px"))
        self.prev_note_button.add_class("cf-prev-note")
        self.next_note_button = widgets.Button(description="note", icon="step-forward",
                                               tooltip="next noted line of this cart",
                                               layout=lay(width="80px"))
        self.next_note_button.add_class("cf-next-note")
        self.line_notes_html = widgets.HTML(layout=lay(width="100%"))
        self.line_notes_html.add_class("cf-line-notes")
        self.notes_select = widgets.Select(options=[], rows=4, layout=lay(width="560px"))
        self.notes_select.add_class("cf-notes-list")
        self.delete_note_button = widgets.Button(description="delete", icon="trash",
                                                 tooltip="delete the note chosen in the list",
                                                 layout=lay(width="90px"))
        self.delete_note_button.add_class("cf-delete-note")
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
        self.parting_button = widgets.Button(description="where they part", icon="code-fork",
                                             tooltip="the first line one mode applies and the "
                                             "other does not", layout=lay(width="150px"))
        self.parting_button.add_class("cf-parting")
        self.parting_button.on_click(lambda _b: self._on_parting())
        self.parting_box = widgets.HBox([self.parting_button, self.parting_html],
                                        layout=lay(align_items="center"))
        # blame under each state
        self.blame_selects: dict[str, widgets.Select] = {}
        self.blame_boxes: dict[str, widgets.VBox] = {}
        self.blame_button = widgets.Button(description="show blame", icon="search",
                                           tooltip="read every applied line of this cart to "
                                           "tell which line set each field",
                                           layout=lay(width="130px"))
        self.blame_button.add_class("cf-blame-on")
        self.blame_button.on_click(lambda _b: self._on_blame_on())
        for m in MODES:
            sel = widgets.Select(options=[], rows=8, layout=lay(width="100%"))
            sel.observe(lambda ch, m=m: self._on_blame_pick(m, ch), names="value")
            self.blame_selects[m] = sel
            head = widgets.HTML(f'<div class="cfw cfw-sub">blame ({_e(m)}): which line set '
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
        where = {ln: k + 1 for k, ln in enumerate(self._file_lines)}
        noted: dict[int, str] = {}
        for n in self.notes.of_cart(self._cart):
            q = where.get(n["line"])
            if q is not None:
                noted.setdefault(q, n["note"] or ", ".join(n["tags"]))
        self.strip_html.value = strip_html(
            {m: self._sides[m].outcome for m in MODES}, noted)

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
                same = theirs is not None and theirs[1] == q and _same_value(theirs[0], v)
                mark = "  " if same else "≠ "
                if q:
                    k_ = q - 1
                    src = f"line {self._file_lines[k_]:,} {self._types[k_] or ''}".rstrip()
                else:
                    src = "empty-cart value"
                opts.append((_label_text(f"{mark}{path} = {_value_text(v)}", 70)
                             + f"  ← {_label_text(src, 40)}", k))
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
        a = [o == "applied" for o in self._sides["go"].outcome]
        b = [o == "applied" for o in self._sides["lenient"].outcome]
        return next((k + 1 for k, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), None)

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
            f"{self._file_lines[q - 1]:,}</b>{_e(here)}: the first line one mode applies and "
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
                    f"{self.context_minutes.value:g} min of {_e(_when(center))} "
                    f"({_e(ctx.attrs.get('reason', ''))})</div>" if center is not None else "")
            self.context_html.value = head + _context_html(
                ctx, ctx["lenient_outcome"].tolist(), CONTEXT_ROWS)
            opts = [(_label_text(f"{_when(r['ts'])} ({_offset_text(r['offset'])}) · "
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
                                  f"{_e(where)}</div>")

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
        self.status.value = f'<div class="cfw cfw-note">{_e(text)}</div>' if text else ""

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
            label = (f"{_label_text(ids[k], 40)}  ·  {int(r['lines']):,} lines  ·  "
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
        self._types = [_str_or_none(v) for v in ev["type"].to_numpy()[rows]]
        self._newline = ev["newline"].to_numpy()[rows].tolist()
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
            f'<div class="cfw"><h4>Cart {_e(cart_id)}</h4><div class="cfw-meta">'
            f"<span>{n:,} lines</span><span>go mode applied "
            f"<b>{n - int(c['problems_go']):,}</b></span><span>lenient mode applied "
            f"<b>{n - int(c['problems_lenient']):,}</b></span><span><b>{int(c['lost']):,}"
            "</b> lost (applied only as the writer meant them)</span></div></div>")
        self._say("")
        self._render()

    def _set_skips(self, skipped: np.ndarray, render: bool = True) -> None:
        self._skipped = skipped
        self._sides = {m: _Side(self.replays[m], self._cart, self._rows, skipped)  # type: ignore[arg-type]
                       for m in MODES}
        self._problems = {
            m: np.array([k + 1 for k, o in enumerate(side.outcome)
                         if o not in ("applied", SKIPPED)], dtype=np.int64)
            for m, side in self._sides.items()}
        self._cache.clear()
        sk = self.skipped
        self.skip_html.value = (
            f'<div class="cfw cfw-skipline">Skipped: line{"s" if len(sk) != 1 else ""} '
            f"{_e(', '.join(map(str, sk)))}. Both modes replayed without "
            f"{'them' if len(sk) != 1 else 'it'}.</div>" if sk else "")
        self.reset_button.disabled = not sk
        self._kept = np.flatnonzero(~skipped) + 1
        self._draw_strip()
        if render:
            self._render()

    def _state(self, mode: str, p: int) -> dict[str, Any]:
        key = (mode, p)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        s = self._sides[mode].state(p)
        self._cache[key] = s
        if len(self._cache) > 16:
            self._cache.popitem(last=False)
        return s

    def _diff(self, mode: str, p: int) -> dict[str, Any] | None:
        if p <= 0:
            return None
        if not self._sides[mode].changed[p]:
            return _empty_diff()
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
            t = _parse_time(text)
        except (ValueError, TypeError):
            self._say(f"not a time: {text!r} (try 2025-11-01T08:03:00Z)")
            return
        p = self.seek(ts=t)
        self._say(f"at {_when(t)}: the cart after its first {p:,} lines (SPEC §6)")

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
            w.value = _state_html(m, states[m], self._diff(m, p),
                                  side.outcome[p - 1] if p else None,
                                  side.error[p - 1] if p else None, self.max_rows)
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
        go_o, le_o = self._sides["go"].outcome[k], self._sides["lenient"].outcome[k]
        go_e, le_e = self._sides["go"].error[k], self._sides["lenient"].error[k]
        size = f"{len(raw):,} bytes" + ("" if self._newline[k] else ", no trailing \\n")
        parts = [
            f'<div class="cfw"><div class="cfw-meta"><b>{where}</b>',
            f"<span>{_e(_when(self._ts[k]))} <span class=\"cfw-sub\">"
            f"({_e(ts_note.get(ts_kind, ts_kind))})</span></span>",
            f"<span>type <b>{_e(type_text) if type_text is not None else '–'}</b></span>",
            f"<span>{_e(size)}</span></div>",
            '<div class="cfw-meta">',
            f"<span>go {_badge(go_o)}</span>",
            f'<span class="cfw-err">{_e(go_e)}</span>' if go_e else "",
            f"<span>lenient {_badge(le_o)}</span>",
            f'<span class="cfw-err">{_e(le_e)}</span>' if le_e else "",
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
        diffs.append(f"total {_money(go['totalPrice'])} vs {_money(lenient['totalPrice'])}")
    if len(go["deliveries"]) != len(lenient["deliveries"]):
        diffs.append(f"{len(go['deliveries'])} vs {len(lenient['deliveries'])} deliveries")
    for f in ("orderReference", "paymentStatus", "paymentInProgress"):
        if go[f] != lenient[f]:
            diffs.append(f"{_FIELD_LABELS[f]} {_fmt(f, go[f])} vs {_fmt(f, lenient[f])}")
    if not diffs:
        diffs.append("the items' details or the last change differ")
    where = "the start" if p == 0 else f"line {p:,}"
    return (f'<div class="cfw cfw-banner cfw-differ">After {_e(where)} the service\'s cart '
            f"(go) differs from what the writer meant (lenient): {_e('; '.join(diffs))}."
            "</div>")


# -- the fleet dashboard ----------------------------------------------------------------------


def _png(fig: Any, dpi: int = 80) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


class FleetDashboard(widgets.VBox):
    """Every line of a replay, filtered by date range, type and outcome: failure-rate and
    outcome charts (from :mod:`cartforensics.plots`) redrawn on every change, a table of the
    worst carts, and the chosen cart opened in a :class:`TimelineScrubber` below.

    ``replay``: a go-mode :class:`~cartforensics.replay.Replay`; ``lenient``: the lenient one
    of the same events (replayed when not given); ``top``: rows of the worst-carts table;
    ``notes``: the notes (or notes file) the scrubber below writes to.
    """

    def __init__(self, replay: Replay, lenient: Replay | None = None, *, top: int = 15,
                 notes: Notes | str | os.PathLike[str] | None = None):
        self.notes = notes if isinstance(notes, Notes) else Notes(notes)
        self.go, self.lenient = _pair(replay, lenient)
        self.replays = {"go": self.go, "lenient": self.lenient}
        self.top = top
        self.redraws = 0
        self.scrubber: TimelineScrubber | None = None
        self._busy = False
        oc = self.go.outcomes
        self._ts = oc["ts"]
        self._ts_ns = np.asarray(self._ts.dt.as_unit("ns").array.asi8, dtype=np.int64)
        self._has_ts = self._ts.notna().to_numpy()
        self._types = np.array([_str_or_none(v) for v in oc["type"].to_numpy()], dtype=object)
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
        type_opts = [(f"{_label_text(t) if t is not None else '(no type)'}  ({n:,})", t)
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
            _CSS + '<div class="cfw"><h4>Fleet: every line of every cart</h4><div '
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
            f"{len(self.go.cart_ids):,} carts</span><span>{_e(mix) or 'no lines'}</span>"
            "</div></div>")
        self.date_html.value = self._date_text()
        worst = self.worst_carts().head(self.top)
        self.worst_html.value = _worst_html(worst, mode)
        opts = [(f"{_label_text(c, 40)}  ·  {int(r['problems_' + mode]):,} problems  ·  "
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
        return (f'<span class="cfw"><b>{_e(lo)}</b> to <b>{_e(hi)}</b> UTC'
                f'<span class="cfw-sub">{_e(note)}</span></span>')

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
        f"<tr><td>{_e(c)}</td><td class=\"cfw-num\">{int(r['lines']):,}</td>"
        f"<td class=\"cfw-num\">{int(r['problems_go']):,}</td>"
        f"<td class=\"cfw-num\">{int(r['problems_lenient']):,}</td>"
        f"<td class=\"cfw-num\">{int(r['lost']):,}</td></tr>"
        for c, r in worst.iterrows()
    )
    return (f'<div class="cfw"><h4>Worst carts (most problem lines in {_e(mode)} mode)</h4>'
            '<table class="cfw-compact"><thead><tr><th>cart</th><th class="cfw-num">lines</th>'
            '<th class="cfw-num">problems (go)</th><th class="cfw-num">problems (lenient)</th>'
            '<th class="cfw-num">lost</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")
