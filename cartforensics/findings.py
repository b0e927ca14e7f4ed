"""Findings: what went wrong in a set of logs, ranked by the lines it touches, each backed by
the lines that prove it.

>>> ev = read_events("sample_data")                                  # doctest: +SKIP
>>> fs = findings(replay(ev, mode="go"), replay(ev, mode="lenient"))  # doctest: +SKIP
>>> fs[0].message                                                    # doctest: +SKIP
>>> fs[0].evidence                                                   # doctest: +SKIP
>>> findings_table(fs)                                               # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .envelope import decode_envelope
from .fastpath import canonical_lines
from .gojson import go_quote
from .goversion import other_json
from .lines import go_token
from .replay import Replay, replay

# in the order a tie in lines affected is broken
KINDS = (
    "numeric_ts", "too_long", "unknown_type", "glued", "torn", "no_final_newline",
    "apply_error", "payload_error", "other_malformed", "ts_backwards", "duplicate",
    "file_problem", "toolchain",
)
KIND_TITLES = {
    "numeric_ts": "numeric ts rejected by the reader",
    "too_long": "line over 256 KiB stops the reader",
    "unknown_type": "unknown event type",
    "glued": "glued records (two writers)",
    "torn": "torn line (two writers or a crash)",
    "no_final_newline": "final line without newline (crash mid-write)",
    "apply_error": "handler error",
    "payload_error": "payload type error",
    "other_malformed": "malformed line",
    "ts_backwards": "timestamp going backwards",
    "duplicate": "duplicated line",
    "file_problem": "file not readable whole",
    "toolchain": "outcome depends on the Go toolchain",
}
EVIDENCE_COLUMNS = [
    "cart_id", "line", "ts", "type", "go_outcome", "go_error", "lenient_outcome",
    "lenient_error",
]
MAX_GROUPS = 10  # per kind: the largest groups get a finding each, the rest one together
N_EXAMPLES = 5
SNIPPET = 200
_FIELD_ERR = re.compile(r"^json: cannot unmarshal (.+?) into Go struct field (\S*) of type (.+)$")
_VALUE_ERR = re.compile(r"^json: cannot unmarshal (.+?) into Go value of type (.+)$")


@dataclass
class Finding:
    """One problem: ``count`` lines in ``carts`` carts, seen from ``first_seen`` to
    ``last_seen`` (UTC, from the lines' own ts), ``examples`` as (cart_id, line) pairs, a plain
    ``message``, and ``evidence``: the lines that prove it (cart_id, line, ts, type, both
    modes' outcome and error, and what is particular to the kind)."""

    kind: str
    message: str
    count: int
    carts: int
    first_seen: pd.Timestamp | None
    last_seen: pd.Timestamp | None
    examples: list[tuple[str, int]]
    evidence: pd.DataFrame = field(repr=False)
    key: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """A short name for the kind (and its key)."""
        base = KIND_TITLES.get(self.kind, self.kind)
        return f"{base}: {self.key}" if self.key else base

    @property
    def is_headline(self) -> bool:
        return self.kind == "numeric_ts"

    def to_dict(self) -> dict[str, Any]:
        """Everything but the evidence, as plain Python values."""
        return {
            "kind": self.kind, "key": self.key, "title": self.title, "message": self.message,
            "count": self.count, "carts": self.carts,
            "first_seen": None if self.first_seen is None else self.first_seen.isoformat(),
            "last_seen": None if self.last_seen is None else self.last_seen.isoformat(),
            "examples": [list(e) for e in self.examples],
            "details": self.details,
        }


def headline(events: pd.DataFrame) -> str | None:
    """The seed's writer/reader mismatch in one sentence, when the logs show it: the lines
    whose ts is a JSON number, which the service's reader rejects. (``cli.headline`` prints the
    same sentence.)"""
    numeric = (events["ts_kind"].astype(str) == "number") & events["envelope_error"].notna()
    if not numeric.any():
        return None
    n = int(numeric.sum())
    carts = events.loc[numeric, "cart_id"].nunique()
    return (
        f"{n} of {len(events)} lines ({carts} carts) are dropped by the service's reader: "
        "ts is a JSON number, the reader expects an RFC 3339 string"
    )


# -- helpers -------------------------------------------------------------------------------
def _n(k: int, word: str, plural: str | None = None) -> str:
    return f"{k:,} {word if k == 1 else (plural or word + 's')}"


def _v(k: int, singular: str, plural: str) -> str:
    """The verb agreeing with ``k`` lines."""
    return singular if k == 1 else plural


def _when(t: pd.Timestamp | None) -> str:
    return "an unknown time" if t is None else t.strftime("%Y-%m-%d %H:%M:%S UTC")


def _obj(values: Any) -> np.ndarray:
    """A column as an object array with None for missing values."""
    s = pd.Series(values)
    out = s.to_numpy(dtype=object, na_value=None) if len(s) else np.empty(0, dtype=object)
    bad = np.fromiter((v is not None and not isinstance(v, str) for v in out), bool, len(out))
    out[bad] = None
    return out


def _check_pair(go: Replay, lenient: Replay) -> None:
    if go.mode != "go" or lenient.mode != "lenient":
        raise ValueError(
            f"findings(go, lenient) needs a go-mode and a lenient-mode replay, got "
            f"{go.mode!r} and {lenient.mode!r}"
        )
    if go.semantics != lenient.semantics:
        raise ValueError(
            f"the two replays are of different toolchains ({go.semantics.label} and "
            f"{lenient.semantics.label}): replay both with the same go_version"
        )
    a, b = go.outcomes, lenient.outcomes
    same = len(a) == len(b) and bool(
        (a["line"].to_numpy() == b["line"].to_numpy()).all()
        and (a["cart_id"].astype(str).to_numpy() == b["cart_id"].astype(str).to_numpy()).all()
    )
    if not same:
        raise ValueError(
            "the two replays are not of the same lines: replay one read_events DataFrame in "
            "both modes"
        )


def _base(go: Replay, lenient: Replay) -> pd.DataFrame:
    ev = go.events
    a, b = go.outcomes, lenient.outcomes
    return pd.DataFrame({
        "cart_id": ev["cart_id"].astype(str).to_numpy(dtype=object),
        "line": ev["line"].to_numpy(dtype=np.int64),
        "ts": ev["ts"].to_numpy(),
        "type": _obj(ev["type"]),
        "go_outcome": a["outcome"].astype(str).to_numpy(dtype=object),
        "go_error": _obj(a["error"]),
        "lenient_outcome": b["outcome"].astype(str).to_numpy(dtype=object),
        "lenient_error": _obj(b["error"]),
    }).assign(ts=lambda d: pd.to_datetime(d["ts"], utc=True))


def _raw_bytes(events: pd.DataFrame, rows: Sequence[int]) -> list[bytes]:
    if not len(rows):
        return []
    col = events["raw"]
    arr = col.array
    if hasattr(arr, "_pa_array"):
        chunked = arr._pa_array  # ArrowExtensionArray
        return [bytes(v) for v in chunked.take(pa.array(list(rows), pa.int64())).to_pylist()]
    return [bytes(col.iloc[int(r)]) for r in rows]


def snippet(raw: bytes, limit: int = SNIPPET) -> str:
    """A line's bytes as text (invalid UTF-8 replaced), cut at ``limit`` characters."""
    text = raw.decode("utf-8", "replace")
    if len(text) > limit:
        return text[:limit] + f"… ({len(raw):,} bytes)"
    return text


def _examples(ev: pd.DataFrame) -> list[tuple[str, int]]:
    """Up to five (cart_id, line): one per cart first, then more from the same carts."""
    if ev.empty:
        return []
    pairs = list(zip(ev["cart_id"].tolist(), ev["line"].tolist(), strict=True))
    seen: set[str] = set()
    first = []
    for c, ln in pairs:
        if c not in seen:
            seen.add(c)
            first.append((c, int(ln)))
        if len(first) == N_EXAMPLES:
            return first
    rest = [(c, int(ln)) for c, ln in pairs if (c, int(ln)) not in set(first)]
    return first + rest[: N_EXAMPLES - len(first)]


def _seen(ts: pd.Series) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    ts = ts.dropna()
    if ts.empty:
        return None, None
    return ts.min(), ts.max()


def _finding(
    kind: str,
    base: pd.DataFrame,
    mask: np.ndarray,
    message: Callable[[dict[str, Any]], str],
    key: str | None = None,
    extra: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    seen_ts: pd.Series | None = None,
) -> Finding:
    """Build a finding from the lines in ``mask`` (``extra``: more evidence columns, each
    aligned with ``base`` or with the masked rows)."""
    idx = np.flatnonzero(mask)
    ev = base.iloc[idx][EVIDENCE_COLUMNS].copy()
    for name, values in (extra or {}).items():
        vals = np.asarray(values, dtype=object) if not isinstance(values, pd.Series) \
            else values.to_numpy()
        ev[name] = vals[idx] if len(vals) == len(base) and len(vals) != len(idx) else vals
    ev.insert(0, "row", idx)
    ev = ev.reset_index(drop=True)
    ts = ev["ts"] if seen_ts is None else seen_ts
    first, last = _seen(ts)
    info = {
        "n": len(idx),
        "carts": int(ev["cart_id"].nunique()),
        "first": first,
        "last": last,
        **(details or {}),
    }
    return Finding(
        kind=kind,
        message=message(info),
        count=info["n"],
        carts=info["carts"],
        first_seen=first,
        last_seen=last,
        examples=_examples(ev),
        evidence=ev,
        key=key,
        details=details or {},
    )


def _grouped(
    kind: str,
    base: pd.DataFrame,
    mask: np.ndarray,
    keys: np.ndarray,
    make: Callable[[str | None, np.ndarray], Finding],
    other_label: Callable[[int], str],
) -> list[Finding]:
    """One finding per key (the MAX_GROUPS largest), the rest together."""
    if not mask.any():
        return []
    sel = pd.Series(keys[mask])
    counts = sel.value_counts()
    counts = counts.iloc[  # most lines first, ties by key: the same result every time
        sorted(range(len(counts)), key=lambda j: (-int(counts.iloc[j]), str(counts.index[j])))
    ]
    top = list(counts.index[:MAX_GROUPS])
    out = []
    for k in top:
        out.append(make(k, mask & (keys == k)))
    rest = list(counts.index[MAX_GROUPS:])
    if rest:
        out.append(make(other_label(len(rest)), mask & np.isin(keys, rest)))
    return out


# -- glued and torn lines ------------------------------------------------------------------
def line_shape(token: bytes) -> tuple[str, str]:
    """How a line that does not decode is broken: ("glued", how many records),
    ("torn", how), ("blank", "") or ("other", "") for a line that is one whole JSON value."""
    text = token.decode("utf-8", "replace").strip(" \t\r\n")
    if not text:
        return "blank", ""
    dec = json.JSONDecoder()
    objs = 0
    pos = 0
    try:
        while pos < len(text):
            try:
                val, end = dec.raw_decode(text, pos)
            except json.JSONDecodeError as e:
                if objs:
                    if text[pos] == "{":
                        return "glued", f"{objs + 1} records, the last one torn"
                    return "torn", "garbage after a record"
                if text[0] != "{":
                    return "torn", "starts mid-record"
                if text.find('{"ts"', 1) > 0 or text.find('{"type"', 1) > 0:
                    return "torn", "another record starts inside it"
                if e.pos >= len(text) - 1 or e.msg.startswith("Unterminated"):
                    return "torn", "cut off"
                return "torn", "broken JSON"
            if not isinstance(val, dict):
                if objs:
                    return "torn", "garbage after a record"
                if text[end:].strip(" \t\r\n"):  # a value, then more: the tail of a record
                    return "torn", "starts mid-record"
                return "other", ""  # one whole JSON value that is not an object
            objs += 1
            pos = end
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
            if pos < len(text) and text[pos] != "{":
                return "torn", "garbage after a record"
    except (RecursionError, ValueError):
        return "other", ""
    if objs >= 2:
        return "glued", f"{objs} records"
    return "other", ""


def _glued_ts(token: bytes) -> pd.Timestamp | None:
    """The ts of the first record on a glued line, read leniently."""
    try:
        val, _ = json.JSONDecoder().raw_decode(token.decode("utf-8", "replace").strip())
        t = val.get("ts") if isinstance(val, dict) else None
        if isinstance(t, bool) or t is None:
            return None
        if isinstance(t, (int, float)):
            return pd.Timestamp(t, unit="s", tz="UTC")
        if isinstance(t, str):
            return pd.Timestamp(t).tz_convert("UTC")
    except (ValueError, TypeError, OverflowError, RecursionError):
        return None
    return None


# -- the findings --------------------------------------------------------------------------
def findings(go: Replay, lenient: Replay) -> list[Finding]:
    """Every problem the logs show, ranked by the number of lines it touches (ties: the order
    of :data:`KINDS`). ``go`` and ``lenient`` are replays of the same ``read_events``
    DataFrame in the two modes.

    Kinds: ``numeric_ts`` (the headline: the reader rejects a JSON number in ts), ``too_long``
    (a line over 256 KiB and the lines lost after it), ``unknown_type`` (one per type),
    ``glued`` and ``torn`` lines (two writers, or a crash), ``no_final_newline`` (a crash
    mid-write), ``apply_error`` (one per handler error text), ``payload_error`` (one per
    payload field), ``other_malformed`` (any other line the reader rejects, by error),
    ``ts_backwards``, ``duplicate`` (a line repeating an earlier line of its cart byte for
    byte), ``file_problem`` (a file that could not be read whole) and ``toolchain`` (lines
    whose go-mode outcome depends on the Go that built the service: see
    :func:`toolchain_lines`).
    """
    _check_pair(go, lenient)
    ev = go.events
    base = _base(go, lenient)
    out: list[Finding] = []
    out += _numeric_ts(ev, base)
    out += _too_long(ev, base)
    out += _unknown_types(base)
    out += _broken_lines(ev, base)
    out += _no_final_newline(ev, base)
    out += _apply_errors(base)
    out += _payload_errors(base)
    out += _ts_backwards(base)
    out += _duplicates(ev, base)
    out += _file_problems(ev)
    out += _toolchain(go, base)
    order = {k: i for i, k in enumerate(KINDS)}
    out.sort(key=lambda f: (-f.count, order.get(f.kind, len(order)), str(f.key)))
    return out


def _numeric_ts(ev: pd.DataFrame, base: pd.DataFrame) -> list[Finding]:
    head = headline(ev)
    if head is None:
        return []
    mask = ((ev["ts_kind"].astype(str) == "number") & ev["envelope_error"].notna()).to_numpy()
    applied_lenient = int((base["lenient_outcome"].to_numpy()[mask] == "applied").sum())
    return [_finding(
        "numeric_ts", base, mask, lambda i: head,
        details={"lines": int(mask.sum()), "total_lines": len(ev),
                 "applied_in_lenient_mode": applied_lenient},
    )]


def _too_long(ev: pd.DataFrame, base: pd.DataFrame) -> list[Finding]:
    long_ = ev["too_long"].to_numpy(dtype=bool)
    lost = base["go_outcome"].to_numpy() == "not_reached"
    mask = long_ | lost
    if not mask.any():
        return []
    role = np.where(long_, "over 256 KiB", "not reached")
    n_long, n_lost = int(long_.sum()), int(lost.sum())
    length = ev["length"].to_numpy()

    def msg(i: dict[str, Any]) -> str:
        return (
            f"{_n(n_long, 'line')} over 256 KiB {_v(n_long, 'stops', 'stop')} the service's "
            f"reader in {_n(i['carts'], 'cart')}: it also loses the {_n(n_lost, 'line')} after "
            f"{_v(n_long, 'it', 'them')}, and counts a failed replay instead of a successful "
            f"one for {_v(i['carts'], 'that cart', 'each of those carts')}"
        )

    return [_finding(
        "too_long", base, mask, msg, extra={"role": role, "length": length},
        details={"too_long": n_long, "not_reached": n_lost,
                 "longest": int(length[long_].max()) if n_long else 0},
    )]


def _unknown_types(base: pd.DataFrame) -> list[Finding]:
    mask = base["lenient_outcome"].to_numpy() == "unknown_type"
    types = np.array([t if isinstance(t, str) else "" for t in base["type"]], dtype=object)
    go_unknown = base["go_outcome"].to_numpy() == "unknown_type"

    def make(key: str | None, m: np.ndarray) -> Finding:
        seen_by_service = int((go_unknown & m).sum())
        hidden = int(m.sum()) - seen_by_service
        label = go_quote(key) if key is not None and not key.startswith("(") else key

        def msg(i: dict[str, Any]) -> str:
            which = (f"the type {label}, which the service's registry does not know"
                     if not (key or "").startswith("(") else f"types the registry does not know "
                     f"({key})")
            tail = (f" ({hidden:,} of them hidden behind the numeric-ts rejection)"
                    if hidden else "")
            return (
                f"{_n(i['n'], 'line')} ({_n(i['carts'], 'cart')}) {_v(i['n'], 'has', 'have')} "
                f"{which}, first seen "
                f"{_when(i['first'])}: the service skips {_v(i['n'], 'it', 'them')} and counts "
                f"{_v(i['n'], 'it', 'them')} in replay_failures_total, never in "
                f"unknown_types_total{tail}"
            )

        return _finding("unknown_type", base, m, msg, key=key,
                        details={"seen_by_service": seen_by_service, "hidden": hidden})

    return _grouped("unknown_type", base, mask, types, make,
                    lambda k: f"({k} other types)")


def _broken_lines(ev: pd.DataFrame, base: pd.DataFrame) -> list[Finding]:
    bad = np.flatnonzero(base["lenient_error"].notna().to_numpy()
                         & (base["lenient_outcome"].to_numpy() == "malformed"))
    n = len(base)
    shape = np.full(n, None, dtype=object)
    how = np.full(n, None, dtype=object)
    snip = np.full(n, None, dtype=object)
    inner_ts = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]")
    raws = _raw_bytes(ev, bad.tolist())
    for r, raw in zip(bad.tolist(), raws, strict=True):
        tok = raw[:-1] if raw.endswith(b"\r") else raw
        s, h = line_shape(tok)
        shape[r], how[r], snip[r] = s, h, snippet(raw)
        if s == "glued":
            t = _glued_ts(tok)
            if t is not None:
                inner_ts.iloc[r] = t
    out: list[Finding] = []
    glued = shape == "glued"
    if glued.any():
        records = np.array([int(h.split()[0]) if h else 0 for h in how[glued]])

        def msg_glued(i: dict[str, Any]) -> str:
            return (
                f"{_n(i['n'], 'line')} ({_n(i['carts'], 'cart')}) "
                f"{_v(i['n'], 'holds', 'hold')} {int(records.sum()):,} "
                "JSON records glued together: two writers appended to the same cart at once "
                "(or one wrote after a crash cut a line short), and the reader drops every "
                "record on such a line"
            )

        ts = base["ts"].where(base["ts"].notna(), inner_ts)
        out.append(_finding(
            "glued", base, glued, msg_glued, extra={"shape": how, "snippet": snip},
            details={"records": int(records.sum())}, seen_ts=ts[glued].reset_index(drop=True),
        ))
    torn = shape == "torn"
    if torn.any():
        kinds = pd.Series(how[torn]).value_counts().to_dict()

        def msg_torn(i: dict[str, Any]) -> str:
            what = ", ".join(f"{v:,} {k}" for k, v in kinds.items())
            return (
                f"{_n(i['n'], 'line')} ({_n(i['carts'], 'cart')}) {_v(i['n'], 'is', 'are')} torn "
                f"JSON ({what}): a "
                "write was interrupted or two writers interleaved, and the reader drops them"
            )

        out.append(_finding("torn", base, torn, msg_torn, extra={"shape": how, "snippet": snip},
                            details={"shapes": {str(k): int(v) for k, v in kinds.items()}}))
    other = np.zeros(n, dtype=bool)
    other[bad] = True
    other &= ~glued & ~torn
    if other.any():
        keys = _other_keys(base, shape, other)

        def make(key: str | None, m: np.ndarray) -> Finding:
            def msg(i: dict[str, Any]) -> str:
                if key == "blank line":
                    return (f"{_n(i['n'], 'line')} ({_n(i['carts'], 'cart')}) "
                            f"{_v(i['n'], 'is', 'are')} blank: the reader counts each as a "
                            "failed line")
                return (f"{_n(i['n'], 'line')} ({_n(i['carts'], 'cart')}) "
                        f"{_v(i['n'], 'is', 'are')} rejected by the reader with \"{key}\", "
                        "in both modes")
            return _finding("other_malformed", base, m, msg, key=key,
                            extra={"snippet": snip})

        out += _grouped("other_malformed", base, other, keys, make,
                        lambda k: f"({k} other errors)")
    return out


def _other_keys(base: pd.DataFrame, shape: np.ndarray, other: np.ndarray) -> np.ndarray:
    keys = np.full(len(base), None, dtype=object)
    errs = base["lenient_error"].to_numpy()
    for r in np.flatnonzero(other).tolist():
        keys[r] = "blank line" if shape[r] == "blank" else str(errs[r])
    return keys


def _no_final_newline(ev: pd.DataFrame, base: pd.DataFrame) -> list[Finding]:
    mask = ~ev["newline"].to_numpy(dtype=bool)
    if not mask.any():
        return []
    go = base["go_outcome"].to_numpy()[mask]
    applied = int((go == "applied").sum())
    raws = _raw_bytes(ev, np.flatnonzero(mask).tolist())
    snip = [snippet(r) for r in raws]

    def msg(i: dict[str, Any]) -> str:
        whose = "cart's log ends" if i["carts"] == 1 else "carts' logs end"
        return (
            f"{i['carts']:,} {whose} in a line without its newline, a write cut "
            f"short (a crash mid-write?): the reader still reads it ({applied:,} applied by "
            "the service), the writer never counted it in appends_total, and the next append "
            "to the cart will be glued onto it"
        )

    return [_finding("no_final_newline", base, mask, msg,
                     extra={"length": ev["length"].to_numpy(), "snippet": snip},
                     details={"applied_by_service": applied})]


def _apply_errors(base: pd.DataFrame) -> list[Finding]:
    go_o = base["go_outcome"].to_numpy()
    le_o = base["lenient_outcome"].to_numpy()
    in_go = go_o == "apply_error"
    in_le = le_o == "apply_error"
    mask = in_go | in_le
    keys = np.where(in_go, base["go_error"].to_numpy(), base["lenient_error"].to_numpy())
    types = base["type"].to_numpy()

    def make(key: str | None, m: np.ndarray) -> Finding:
        g = int((m & in_go).sum())
        cascade = int((m & in_go & (le_o == "applied")).sum())
        both = int((m & in_go & in_le).sum())
        only_le = int((m & in_le & ~in_go).sum())
        top_types = pd.Series(types[m]).value_counts()
        tnames = ", ".join(str(t) for t in top_types.index[:3])

        def msg(i: dict[str, Any]) -> str:
            parts = [f"{g:,} in the service's replay"]
            if cascade:
                parts.append(f"{cascade:,} of them only because it had dropped earlier lines "
                             "of the cart")
            if only_le:
                parts.append(f"{only_le:,} only once numeric ts are read")
            return (f"{_n(i['n'], 'line')} ({_n(i['carts'], 'cart')}) "
                    f"{_v(i['n'], 'is', 'are')} refused by the cart handler ({tnames}) "
                    f"with \"{key}\": " + ", ".join(parts))

        return _finding("apply_error", base, m, msg, key=key, details={
            "in_service_replay": g, "cascade": cascade, "also_in_lenient_mode": both,
            "only_in_lenient_mode": only_le,
            "types": {str(k): int(v) for k, v in top_types.items()},
        })

    return _grouped("apply_error", base, mask, keys, make, lambda k: f"({k} other errors)")


def payload_field(error: str, event_type: str | None) -> tuple[str, str, str]:
    """(field, value, Go type) from a payload error text: ``json: cannot unmarshal string
    into Go struct field AddRequest.items.quantity of type int32`` on a SetCartRequest line →
    (``SetCartRequest.items.quantity``, ``string``, ``int32``)."""
    t = event_type or "?"
    m = _FIELD_ERR.match(error)
    if m:
        value, path, gotype = m.groups()
        rest = path.split(".", 1)[1] if "." in path else path
        return f"{t}.{rest}", value, gotype
    m = _VALUE_ERR.match(error)
    if m:
        return f"{t} (whole payload)", m.group(1), m.group(2)
    if error == "unexpected end of JSON input":
        return f"{t} (payload missing)", "nothing", "an object"
    return f"{t} ({error})", "", ""


def _value_words(v: str) -> str:
    """Go's description of a JSON value in a type error, as words: ``number 1.5`` → ``the
    number 1.5``, ``string`` → ``a string``."""
    if v.startswith("number "):
        return "the " + v
    if v in ("array", "object"):
        return "an " + v
    return "a " + v if v else "a value"


def _payload_errors(base: pd.DataFrame) -> list[Finding]:
    go_o = base["go_outcome"].to_numpy()
    le_o = base["lenient_outcome"].to_numpy()
    mask = (go_o == "payload_error") | (le_o == "payload_error")
    n = len(base)
    field_ = np.full(n, None, dtype=object)
    value = np.full(n, None, dtype=object)
    gotype = np.full(n, None, dtype=object)
    errs = np.where(go_o == "payload_error", base["go_error"].to_numpy(),
                    base["lenient_error"].to_numpy())
    types = base["type"].to_numpy()
    for r in np.flatnonzero(mask).tolist():
        field_[r], value[r], gotype[r] = payload_field(str(errs[r]), types[r])

    def make(key: str | None, m: np.ndarray) -> Finding:
        vals = pd.Series(value[m]).value_counts()
        gt = pd.Series(gotype[m]).value_counts()
        seen = int((m & (go_o == "payload_error")).sum())

        def msg(i: dict[str, Any]) -> str:
            got = " or ".join(_value_words(str(v)) for v in vals.index[:2])
            want = str(gt.index[0]) if len(gt) else "?"
            hidden = i["n"] - seen
            tail = (f" ({hidden:,} of them hidden behind the numeric-ts rejection)"
                    if hidden else "")
            if key and key.endswith("(payload missing)"):
                what = _v(i["n"], "has", "have") + " no payload"
            elif key and "(" in key and not key.endswith("(whole payload)"):
                what = (_v(i["n"], "carries", "carry")
                    + f" a payload the service cannot decode: {key}")
            elif key and key.endswith("(whole payload)"):
                what = _v(i["n"], "carries", "carry") + f" a payload that is {got}, not {want}"
            else:
                what = _v(i["n"], "carries", "carry") + f" {got} in payload field {key}, " \
                f"where Go wants {want}"
            return (f"{_n(i['n'], 'line')} ({_n(i['carts'], 'cart')}) {what}: the service "
                    f"skips {_v(i['n'], 'it', 'them')} and counts mutation_errors_total{tail}")

        return _finding("payload_error", base, m, msg, key=key,
                        extra={"field": field_, "value": value, "go_type": gotype},
                        details={"values": {str(k): int(v) for k, v in vals.items()},
                                 "seen_by_service": seen})

    return _grouped("payload_error", base, mask, field_, make,
                    lambda k: f"({k} other fields)")


def _ts_backwards(base: pd.DataFrame) -> list[Finding]:
    if base.empty:
        return []
    cart = pd.factorize(base["cart_id"])[0]
    ts = base["ts"]
    ff = ts.groupby(cart, sort=False).ffill()
    prev = ff.groupby(cart, sort=False).shift(1)
    mask = (ts.notna() & prev.notna() & (ts < prev)).to_numpy()
    if not mask.any():
        return []
    behind = prev - ts
    worst = behind[mask].max()

    def msg(i: dict[str, Any]) -> str:
        return (
            f"{_n(i['n'], 'line')} ({_n(i['carts'], 'cart')}) {_v(i['n'], 'has', 'have')} a "
            f"ts earlier than the line before {_v(i['n'], 'it', 'them')} (up to "
            f"{_span(worst)} back): the writers' clocks disagree or lines were appended late; "
            "the replay keeps file order, so a cart's state at a time is approximate there"
        )

    return [_finding("ts_backwards", base, mask, msg,
                     extra={"previous_ts": prev, "behind": behind},
                     details={"max_behind_seconds": float(worst.total_seconds())})]


def _span(td: pd.Timedelta) -> str:
    s = td.total_seconds()
    if s < 120:
        return f"{s:g} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def _duplicates(ev: pd.DataFrame, base: pd.DataFrame) -> list[Finding]:
    n = len(ev)
    if n < 2:
        return []
    # a dataset read for a report (fleet.stored_replays) keeps a digest of each line instead
    # of its bytes: equal digests, equal lines
    arr = ev["raw_digest" if "raw_digest" in ev.columns else "raw"].array
    if hasattr(arr, "_pa_array"):
        enc = arr._pa_array.combine_chunks().dictionary_encode()
        ids = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    else:
        ids = pd.factorize(pd.Series([bytes(x) for x in ev["raw"]], dtype=object))[0]
    cart = pd.factorize(base["cart_id"])[0].astype(np.int64)
    blank = (ev["length"].to_numpy() == 0)
    if blank.any():  # whitespace-only lines are not records
        ids = ids.copy()
        ids[blank] = -1
    key = pd.DataFrame({"c": cart, "r": ids})
    dup = key.duplicated(keep="first").to_numpy() & (ids >= 0)
    if not dup.any():
        return []
    prev_same = np.r_[False, (cart[1:] == cart[:-1]) & (ids[1:] == ids[:-1])]
    consecutive = dup & prev_same
    first_line = base.groupby([cart, ids], sort=False)["line"].transform("first").to_numpy()
    go_applied = int((dup & (base["go_outcome"].to_numpy() == "applied")).sum())
    le_applied = int((dup & (base["lenient_outcome"].to_numpy() == "applied")).sum())
    n_consec = int(consecutive.sum())

    def msg(i: dict[str, Any]) -> str:
        return (
            f"{_n(i['n'], 'line')} ({_n(i['carts'], 'cart')}) "
            f"{_v(i['n'], 'repeats', 'repeat')} an earlier line of the same cart byte for byte "
            f"({n_consec:,} right after it), a retried or doubled "
            f"append or a real double click: the service's replay applies {go_applied:,} of "
            f"{_v(i['n'], 'it', 'them')} again (lenient mode {le_applied:,})"
        )

    return [_finding("duplicate", base, dup, msg,
                     extra={"repeats_line": first_line, "consecutive": consecutive},
                     details={"consecutive": n_consec, "applied_by_service": go_applied,
                              "applied_in_lenient_mode": le_applied})]


def _file_problems(ev: pd.DataFrame) -> list[Finding]:
    problems = ev.attrs.get("problems") or []
    if not problems:
        return []
    df = pd.DataFrame(problems)
    carts = df["cart_id"].nunique() if "cart_id" in df else len(df)
    first = str(df["error"].iloc[0]) if "error" in df else ""
    msg = (f"{_n(len(df), 'file')} could not be read whole ({first}"
           f"{', …' if len(df) > 1 else ''}): lines past the damage are missing from every count")
    return [Finding(
        kind="file_problem", message=msg, count=len(df), carts=int(carts), first_seen=None,
        last_seen=None,
        examples=[(str(c), 0) for c in df.get("cart_id", pd.Series(dtype=str))[:N_EXAMPLES]],
        evidence=df, details={},
    )]


# -- summaries -----------------------------------------------------------------------------
def findings_table(fs: Sequence[Finding]) -> pd.DataFrame:
    """One row per finding, in rank order: rank, kind, key, lines, carts, first_seen,
    last_seen, message."""
    return pd.DataFrame(
        {
            "rank": range(1, len(fs) + 1),
            "kind": [f.kind for f in fs],
            "key": [f.key for f in fs],
            "lines": [f.count for f in fs],
            "carts": [f.carts for f in fs],
            "first_seen": pd.to_datetime([f.first_seen for f in fs], utc=True),
            "last_seen": pd.to_datetime([f.last_seen for f in fs], utc=True),
            "message": [f.message for f in fs],
        }
    )


def headline_finding(fs: Sequence[Finding]) -> Finding | None:
    """The finding to show first: the numeric-ts rejection when there is one, else the
    largest."""
    for f in fs:
        if f.is_headline:
            return f
    return fs[0] if fs else None


__all__ = [
    "KINDS", "KIND_TITLES", "Finding", "findings", "findings_table", "headline", "headline_finding",
    "line_shape", "payload_field", "snippet",
]


# -- the toolchain finding -----------------------------------------------------------------
def toolchain_lines(go: Replay) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The lines whose go-mode outcome would differ under the other side of the json v1/v2
    line (Go ≤ 1.26 against Go ≥ 1.27; see :mod:`cartforensics.goversion`), and their carts.

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
    cart_of = ev["cart_id"].astype(str).to_numpy(dtype=object)
    has_bs = pc.fill_null(pc.match_substring(raw, "\\"), False).to_numpy(zero_copy_only=False)
    lenient = go.mode == "lenient"
    flips: set[str] = set()
    flipped_rows: set[int] = set()
    for r in _maybe_escaped_ts(raw, np.flatnonzero(has_bs)).tolist():
        data = raw[r].as_py()
        tok = go_token(data, 0, len(data))
        here = decode_envelope(tok, lenient, go.semantics).error is None
        there = decode_envelope(tok, lenient, other).error is None
        if here != there:
            flips.add(cart_of[r])
            flipped_rows.add(r)
    if not flips:
        return empty_lines, empty_carts
    from .events import read_events_bytes, to_frame

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
    there_err = _obj(there["error"])
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
    canonical = canonical_lines(b"\n".join(tokens) + b"\n", starts, lengths)[0]
    return rows[~canonical]


def _toolchain(go: Replay, base: pd.DataFrame) -> list[Finding]:
    lines, carts = toolchain_lines(go)
    if not len(lines):
        return []
    here, there = go.semantics, other_json(go.semantics)
    tag = there.spec
    mask = np.zeros(len(base), dtype=bool)
    mask[lines["row"].to_numpy(dtype=np.int64)] = True
    order = np.argsort(lines["row"].to_numpy())
    direct = lines["escaped_ts"].to_numpy(dtype=bool)
    v2_oc = (lines["outcome"] if here.json_v2 else lines["outcome_" + tag]).to_numpy()
    v1_oc = (lines["outcome_" + tag] if here.json_v2 else lines["outcome"]).to_numpy()
    n_direct = int(direct.sum())
    # the usual direction: json v2 reads the escaped ts, json v1 rejects the line
    usual = bool(((v1_oc[direct] == "malformed") & (v2_oc[direct] != "malformed")).all())
    k_v2 = int((v2_oc[direct] == "applied").sum())
    stake = (carts["total_" + tag] - carts["total"]).abs()
    changed = int((stake != 0).sum())
    money = int(stake.sum())
    n_carts = int((carts["lines"] > 0).sum())

    def msg(i: dict[str, Any]) -> str:
        d = n_direct
        if usual:
            applies = "applies" if k_v2 == d else "decodes"
            head = (f"{_n(d, 'line')} in {_n(n_carts, 'cart')} {_v(d, 'has', 'have')} an "
                    f"escaped ts: Go ≥ 1.27 {applies} {_v(d, 'it', 'them')}, Go ≤ 1.26 drops "
                    f"{_v(d, 'it', 'them')}")
        else:
            head = (f"{_n(d, 'line')} in {_n(n_carts, 'cart')} {_v(d, 'decodes', 'decode')} "
                    "under one of Go ≤ 1.26 and Go ≥ 1.27 only")
        more = i["n"] - d
        if more:
            head += (f"; {_n(more, 'more line')} of {_v(n_carts, 'that cart', 'those carts')} "
                     f"{_v(more, 'changes', 'change')} outcome with them")
        return (f"{head} (this report replays as {here.label}). At stake: "
                f"{_n(changed, 'cart')} whose total differs, {money:,} in all.")

    cart_of = dict(zip(carts["cart_id"], zip(carts["total"], carts["total_" + tag],
                                             strict=True), strict=True))
    ev_cart = lines["cart_id"].to_numpy()[order]
    extra = {
        "escaped_ts": direct[order],
        "outcome_" + tag: lines["outcome_" + tag].to_numpy(dtype=object)[order],
        "error_" + tag: lines["error_" + tag].to_numpy(dtype=object)[order],
        "cart_total": np.array([cart_of[c][0] for c in ev_cart], dtype=object),
        "cart_total_" + tag: np.array([cart_of[c][1] for c in ev_cart], dtype=object),
    }
    details = {
        "replayed_as": here.spec, "other": tag, "lines": int(len(lines)), "carts": n_carts,
        "escaped_ts_lines": n_direct, "applied_by_json_v2": k_v2, "carts_with_other_total": changed,
        "total_difference": money,
        "per_cart": [
            {"cart_id": r["cart_id"], "lines": int(r["lines"]), "total": int(r["total"]),
             "total_other": int(r["total_" + tag])}
            for r in carts.to_dict("records")
        ],
    }
    return [_finding("toolchain", base, mask, msg, extra=extra, details=details)]
