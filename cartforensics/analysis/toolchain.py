"""The toolchain finding: the lines whose outcome would differ under the other side of Go's
json v1/v2 line (Go ≤ 1.26 against Go ≥ 1.27), found by decoding again only the lines that
can differ and replaying again only the carts that hold one (see
:mod:`cartforensics.go.version`).

>>> lines, carts = toolchain_lines(replay("sample_data"))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cartforensics.go.bufio import go_token
from cartforensics.go.envelope import decode_envelope
from cartforensics.go.version import other_json
from cartforensics.go.writer_shape import scan_lines
from cartforensics.io.logs import read_events_bytes, to_frame
from cartforensics.model.protocol import ReplayOfEvents
from cartforensics.model.replay import replay

__all__ = ["escaped_rows", "text_or_none", "toolchain_lines"]


def text_or_none(values: Any) -> np.ndarray:
    """A column as an object array: its text values, None for anything else (missing).

    >>> text_or_none(["a", None, float("nan")]).tolist()
    ['a', None, None]
    """
    s = pd.Series(values)
    out = s.to_numpy(dtype=object, na_value=None) if len(s) else np.empty(0, dtype=object)
    bad = np.fromiter((v is not None and not isinstance(v, str) for v in out), bool, len(out))
    out[bad] = None
    return out


def toolchain_lines(go: ReplayOfEvents) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The lines whose go-mode outcome would differ under the other side of the json v1/v2
    line (Go ≤ 1.26 against Go ≥ 1.27; see :mod:`cartforensics.go.version`), and their carts.

    Only lines holding a backslash can differ (json v2 unescapes a ts string, v1 does not), so
    only those envelopes are decoded again, and only the carts holding one that flips are
    replayed again, under the other toolchain. Returns (lines: cart_id, line, row,
    escaped_ts (the envelope itself decodes under one toolchain only; False: the line changes
    outcome because of an earlier one), outcome here and there, the error there; carts:
    cart_id, lines that differ, totalPrice here and there).

    >>> lines, carts = toolchain_lines(replay("sample_data"))  # doctest: +SKIP
    """
    other = other_json(go.semantics)
    tag = other.spec
    empty_lines = pd.DataFrame(columns=["cart_id", "line", "row", "escaped_ts", "outcome",
                                        "outcome_" + tag, "error_" + tag])
    empty_carts = pd.DataFrame(columns=["cart_id", "lines", "total", "total_" + tag])
    ev = go.events.copy(deep=False)
    ev.attrs = {}  # pandas deep-copies attrs on every column access
    if not len(ev):
        return empty_lines, empty_carts
    raw = pa.array(ev["raw"].array)  # Arrow-backed bytes: no copy into Python objects
    # the writer's own escapes (json.Marshal's \u003c, \u003e, \u0026) never flip a line:
    # in a ts they fail to parse under both toolchains, elsewhere both unescape them alike
    has_bs = escaped_rows(raw)
    lenient = go.mode == "lenient"
    flipped_rows: set[int] = set()
    for r in _maybe_escaped_ts(raw, np.flatnonzero(has_bs)).tolist():
        data = raw[r].as_py()
        tok = go_token(data, 0, len(data))
        here = decode_envelope(tok, lenient, go.semantics).error is None
        there = decode_envelope(tok, lenient, other).error is None
        if here != there:
            flipped_rows.add(r)
    if not flipped_rows:
        return empty_lines, empty_carts
    cart_of = ev["cart_id"].astype(str).to_numpy(dtype=object)
    flips = {cart_of[r] for r in flipped_rows}
    carts = [c for c in go.cart_ids if c in flips]
    load_raw = getattr(go, "load_raw", None)
    if load_raw is not None:  # a dataset's stored replay holds few lines' bytes: these carts'
        raw = load_raw(carts, raw)
    items: list[tuple[str, bytes]] = []
    rows: list[int] = []
    newline = ev["newline"].to_numpy(dtype=bool)
    line_no = ev["line"].to_numpy()
    for cid in carts:
        cart_rows = go.rows_of(cid)
        rows += cart_rows
        parts: list[bytes] = []
        for r in cart_rows:  # a cart's files one after another: each starts at line 1
            if line_no[r] == 1 and parts:
                items.append((cid, b"".join(parts)))
                parts = []
            parts.append(raw[r].as_py() + (b"\n" if newline[r] else b""))
        items.append((cid, b"".join(parts)))
    again = replay(to_frame(read_events_bytes(items, go_version=other)), mode=go.mode,
                   catalog=go.catalog, registry=go.registry, go_version=other)
    here_oc = go.outcomes["outcome"].astype(str).to_numpy(dtype=object)[rows]
    there = again.outcomes
    there_oc = there["outcome"].astype(str).to_numpy(dtype=object)
    there_err = text_or_none(there["error"])
    differs = here_oc != there_oc
    lines = pd.DataFrame({
        "cart_id": cart_of[rows], "line": line_no[rows],
        "row": rows, "escaped_ts": [r in flipped_rows for r in rows], "outcome": here_oc,
        "outcome_" + tag: there_oc, "error_" + tag: there_err,
    })[differs].reset_index(drop=True)
    per_cart = lines.groupby("cart_id", sort=False).size()
    cart_rows_out = []
    for cid in carts:
        cart_rows_out.append({
            "cart_id": cid, "lines": int(per_cart.get(cid, 0)),
            "total": go.final_state(cid)["totalPrice"],
            "total_" + tag: again.final_state(cid)["totalPrice"],
        })
    return lines, pd.DataFrame(cart_rows_out)


def escaped_rows(raw: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Per line (bool): holds a backslash that is not part of the writer's own escapes
    (``\\u003c``, ``\\u003e``, ``\\u0026``); a null line: False.

    The backslashes are found with numpy over the bytes of the column (no string kernel over
    every line): a line without one, or whose every backslash opens one of those escapes, is
    False; only the rest go through :func:`_escaped_rows_slow` (the escapes taken out, then a
    backslash looked for), which answers for any line.
    """
    if isinstance(raw, pa.ChunkedArray):
        raw = raw.combine_chunks()
    n = len(raw)
    kind = raw.type
    if pa.types.is_string(kind) or pa.types.is_binary(kind):
        width = np.int32
    elif pa.types.is_large_string(kind) or pa.types.is_large_binary(kind):
        width = np.int64
    else:
        return _escaped_rows_slow(raw)
    out = np.zeros(n, dtype=bool)
    bufs = raw.buffers()
    if not n or bufs[2] is None:
        return out
    offsets = np.frombuffer(bufs[1], dtype=width)[raw.offset: raw.offset + n + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8)
    lo, hi = int(offsets[0]), int(offsets[-1])
    at = np.flatnonzero(data[lo:hi] == ord("\\")) + lo
    if not len(at):
        return out
    row = np.searchsorted(offsets, at, side="right") - 1
    # a backslash opening one of the writer's escapes (all six bytes in its line) goes
    # whatever the line holds around it; a line whose every backslash does is False
    end = offsets[np.clip(row + 1, 0, n)]
    last = len(data) - 1

    def byte(k: int) -> np.ndarray:
        return data[np.minimum(at + k, last)]

    writers = ((at + 6 <= end) & (byte(1) == ord("u")) & (byte(2) == ord("0"))
               & (byte(3) == ord("0"))
               & (((byte(4) == ord("3")) & ((byte(5) == ord("c")) | (byte(5) == ord("e"))))
                  | ((byte(4) == ord("2")) & (byte(5) == ord("6")))))
    rows = np.unique(row[~writers])
    rows = rows[(rows >= 0) & (rows < n)]
    if len(rows):  # the rest (rare) as the kernels say: removals can join new escapes
        out[rows] = _escaped_rows_slow(raw.take(pa.array(rows, pa.int64())))
    return out


def _escaped_rows_slow(raw: pa.Array) -> np.ndarray:
    """:func:`escaped_rows` with Arrow string kernels over every line."""
    bare = raw
    for esc in ("\\u003c", "\\u003e", "\\u0026"):
        bare = pc.replace_substring(bare, esc, "")
    return pc.fill_null(pc.match_substring(bare, "\\"), False).to_numpy(zero_copy_only=False)


def _maybe_escaped_ts(raw: pa.Array, rows: np.ndarray) -> np.ndarray:
    """The ``rows`` (lines with a backslash) whose envelope may decode under one toolchain
    only: all but the lines in the writer's own shape, which the fast path proves to hold a ts
    without escapes (a number, a plain string or null: read alike by json v1 and v2; the
    writer's ``\\u003c`` escapes elsewhere in the line change nothing)."""
    if not len(rows):
        return rows
    tokens = [go_token(b, 0, len(b)) for b in raw.take(pa.array(rows)).to_pylist()]
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    starts = np.r_[0, np.cumsum(lengths + 1)[:-1]].astype(np.int64)
    canonical = scan_lines(b"\n".join(tokens) + b"\n", starts, lengths).ok
    return rows[~canonical]
