"""What the scrubber and the dashboard share: escaping for HTML widgets, the line's
pretty-printer, the state tables and the page's CSS. Everything from the logs is HTML-escaped.

>>> pretty_line(b'{"a":1}')[0]
'json'
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from cartforensics.model.protocol import ReplayLike
from cartforensics.model.replay import Replay
from cartforensics.model.replay import replay as run_replay
from cartforensics.present.escaping import char_escape, visible

MODE_TITLES = {
    "go": "go: what the service rebuilt",
    "lenient": "lenient: what the writer meant",
}
SKIPPED = "skipped"  # the outcome shown for a line the analyst switched off
LINE_LIMIT = 8192  # bytes of a line shown (a line may be over 256 KiB)
MAX_CART_OPTIONS = 500  # carts listed in the picker at once (type to filter the rest)

# -- text made safe ---------------------------------------------------------------------------


def esc(v: Any) -> str:
    """Any value as escaped HTML text (quotes too, so it is safe in attributes)."""
    return html.escape(_visible(v if isinstance(v, str) else str(v)), quote=True)


_visible = visible  # the shared helpers of cartforensics.present.escaping
_char_escape = char_escape


def text_segments(text: str, keep_newlines: bool = True) -> list[list[Any]]:
    """``text`` cut into ``[piece, 0]`` (printable text) and ``[escape, 1]`` (one
    non-printing character shown as its escape, drawn highlighted), so that ``\\xff`` in the
    bytes and a literal ``\\xff`` in the text differ."""
    out: list[list[Any]] = []
    run: list[str] = []
    for ch in text:
        if ch.isprintable() or (keep_newlines and ch == "\n"):
            run.append(ch)
            continue
        if run:
            out.append(["".join(run), 0])
            run = []
        out.append([_char_escape(ch), 1])
    if run:
        out.append(["".join(run), 0])
    return out


def mark_escapes(text: str, keep_newlines: bool = False) -> str:
    """HTML element content for ``text`` (never an attribute: quotes stay as they are),
    escaped, with every non-printing character shown as a highlighted escape
    (:func:`text_segments`)."""
    if text.isprintable():
        return html.escape(text, quote=False)
    return "".join(f'<span class="cfw-esc">{html.escape(t)}</span>' if is_escape
                   else html.escape(t, quote=False)
                   for t, is_escape in text_segments(text, keep_newlines))


def escape_bytes(raw: bytes) -> str:
    """A line's exact bytes as HTML: valid UTF-8 text as text, every other byte and every
    non-printing character as a highlighted ``\\xNN`` / ``\\uNNNN`` escape."""
    return mark_escapes(raw.decode("utf-8", "surrogateescape"))


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


def pretty_json(raw: bytes) -> str | None:
    """The line pretty-printed (two-space indent, numbers as written), or None when it is not
    one plain JSON value (not UTF-8, glued, torn, a duplicated key, NaN)."""
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_pairs,
                           parse_constant=_no_constant, parse_int=_Number, parse_float=_Number)
        out: list[str] = []
        _dump(value, 0, out)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return "".join(out)


def pretty_line(raw: bytes, limit: int = LINE_LIMIT) -> tuple[str, str]:
    """``(kind, html)`` of one line: ``"json"`` and the value pretty-printed
    (:func:`pretty_json`), or ``"raw"`` and the exact bytes escaped (:func:`escape_bytes`)
    when the line is not one plain JSON value or is cut at ``limit`` bytes."""
    if len(raw) > limit:
        rest = len(raw) - limit
        return "raw", escape_bytes(raw[:limit]) + (
            f'<span class="cfw-note"> … {rest:,} more bytes not shown</span>'
        )
    text = pretty_json(raw)
    if text is None:
        return "raw", escape_bytes(raw)
    return "json", mark_escapes(text, keep_newlines=True)


def with_text_form(bundle: Any, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A widget's MIME bundle (``_repr_mimebundle_``'s answer) with ``text/plain`` set to
    ``text``: the one readable line a terminal, a log or a static page shows.

    >>> with_text_form({"text/plain": "VBox(...)"}, "TimelineScrubber(c, line 1 of 2)")
    ({'text/plain': 'TimelineScrubber(c, line 1 of 2)'}, {})
    """
    data, meta = bundle if isinstance(bundle, tuple) else (bundle, {})
    data = dict(data or {})
    data["text/plain"] = text
    return data, meta


def label_text(v: Any, limit: int = 60) -> str:
    """Log content as a plain-text widget label: non-printing characters escaped, cut."""
    text = _visible(v if isinstance(v, str) else str(v))
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- values ------------------------------------------------------------------------------------


def when_text(ts: Any) -> str:
    if ts is None or pd.isna(ts):
        return "no readable ts"
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    t = t.tz_convert("UTC")
    if t.nanosecond or t.microsecond:
        return t.isoformat().replace("+00:00", "Z")
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def parse_time(text: str) -> pd.Timestamp:
    t = pd.Timestamp(text.strip())
    if pd.isna(t):
        raise ValueError("not a time")
    return t.tz_localize("UTC") if t.tzinfo is None else t


# -- look --------------------------------------------------------------------------------------

CSS = """
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


# -- the state tables' columns -------------------------------------------------------------------

ITEM_COLUMNS: tuple[tuple[str, str, bool], ...] = (
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


def item_columns(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, bool]]:
    """The item table's columns: the optional ones only when some row needs them."""
    return [c for c in ITEM_COLUMNS
            if c[0] not in _OPTIONAL_ITEM_COLUMNS
            or any(_OPTIONAL_ITEM_COLUMNS[c[0]](r) for r in rows)]


DELIVERY_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("id", "id", True), ("provider", "provider", False), ("price", "price", True),
    ("items", "items", False), ("pickupPoint", "pickup point", False),
)
FIELD_LABELS = {
    "totalPrice": "total price", "totalTax": "total tax", "totalDiscount": "total discount",
    "orderReference": "order reference", "paymentStatus": "payment status",
    "paymentInProgress": "payment in progress", "processing": "processing",
    "lastChange": "last change",
}


def empty_diff() -> dict[str, Any]:
    blank = {"added": [], "removed": [], "changed": {}}
    return {"items": dict(blank), "deliveries": dict(blank), "fields": {}}


def replay_pair(rp: Replay, lenient: Replay | None) -> tuple[Replay, Replay]:
    """(go, lenient) replays of the same events; the missing one is replayed from
    ``rp.events`` with the same catalog and registry."""
    if not isinstance(rp, Replay):
        raise TypeError(f"expected a Replay (cartforensics.replay(...)), not {type(rp).__name__}")
    if rp.mode == "lenient":
        if lenient is not None and lenient is not rp:
            raise ValueError("the first replay is in lenient mode: pass the go-mode one first")
        go = run_replay(rp.events, mode="go", catalog=rp.catalog, registry=rp.registry,
                        go_version=rp.semantics)
        return go, rp
    if lenient is None:
        lenient = run_replay(rp.events, mode="lenient", catalog=rp.catalog,
                             registry=rp.registry, go_version=rp.semantics)
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


def cart_table(go: ReplayLike, lenient: ReplayLike) -> pd.DataFrame:
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
