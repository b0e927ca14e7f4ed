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

from cartforensics.analysis.toolchain import text_or_none, toolchain_lines
from cartforensics.go.json import go_quote
from cartforensics.go.version import other_json
from cartforensics.model.protocol import ReplayLike, ReplayOfEvents
from cartforensics.model.replay import Replay
from cartforensics.vocab import EVIDENCE_ROWS as EVIDENCE_KEPT
from cartforensics.vocab import OUTCOMES

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
    n, carts = numeric_ts_dropped(events)
    return headline_text(n, len(events), len(carts))


def numeric_ts_dropped(events: pd.DataFrame) -> tuple[int, set[str]]:
    """The lines :func:`headline` counts (whose ts is a JSON number, which the service's
    reader rejects) and their carts: counts that add up over pieces of the events."""
    numeric = _dropped_numeric_ts(events)
    if not numeric.any():
        return 0, set()
    return int(numeric.sum()), set(map(str, events.loc[numeric, "cart_id"].unique()))


def headline_text(dropped: int, lines: int, carts: int) -> str | None:
    """:func:`headline`'s sentence for ``dropped`` of ``lines`` lines in ``carts`` carts.

    >>> headline_text(0, 10, 0) is None, headline_text(2, 10, 1)[:32]
    (True, '2 of 10 lines (1 carts) are drop')
    """
    if not dropped:
        return None
    return (
        f"{dropped} of {lines} lines ({carts} carts) are dropped by the service's reader: "
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


def _check_pair(go: ReplayLike, lenient: ReplayLike) -> None:
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
        and _same_texts(a["cart_id"], b["cart_id"])
    )
    if not same:
        raise ValueError(
            "the two replays are not of the same lines: replay one read_events DataFrame in "
            "both modes"
        )


def _same_texts(a: pd.Series, b: pd.Series) -> bool:
    """Whether two columns of the same length hold the same values as text, with no Python
    string per row where it can: two categoricals over the same categories by their codes,
    two Arrow-backed text columns in Arrow.

    >>> _same_texts(pd.Series(["a", "b"], dtype="str"), pd.Series(["a", "b"], dtype="str"))
    True
    >>> _same_texts(pd.Series(["a", "b"], dtype="str"), pd.Series(["a", "c"], dtype="str"))
    False
    """
    if (isinstance(a.dtype, pd.CategoricalDtype) and isinstance(b.dtype, pd.CategoricalDtype)
            and a.cat.categories.equals(b.cat.categories)):
        return bool((a.cat.codes.to_numpy() == b.cat.codes.to_numpy()).all())
    x, y = getattr(a.array, "_pa_array", None), getattr(b.array, "_pa_array", None)
    if x is not None and y is not None and x.type == y.type and pa.types.is_large_string(
            x.type) and not x.null_count and not y.null_count:
        return bool(x.equals(y))
    return bool((a.astype(str).to_numpy() == b.astype(str).to_numpy()).all())


def _is_text(col: pd.Series, value: str) -> np.ndarray:
    """``col.astype(str) == value`` as a bool array, read off a categorical's codes when it
    is one (no string per row).

    >>> _is_text(pd.Series(["number", "string", None], dtype="category"), "number").tolist()
    [True, False, False]
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        match = np.fromiter((str(c) == value for c in col.cat.categories), bool,
                            len(col.cat.categories))
        if value == "nan":  # (a missing value reads "nan" as text)
            return (col.astype(str) == value).to_numpy(dtype=bool)
        codes = col.cat.codes.to_numpy()
        return np.r_[match, False][codes] if len(match) else np.zeros(len(col), bool)
    return (col.astype(str) == value).to_numpy(dtype=bool)


def _dropped_numeric_ts(events: pd.DataFrame) -> np.ndarray:
    """The lines whose ts is a JSON number and whose envelope the service's reader rejects
    (the headline's and the numeric-ts finding's lines), as a bool array."""
    return _is_text(events["ts_kind"], "number") & events["envelope_error"].notna().to_numpy()


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


def _span(td: pd.Timedelta) -> str:
    s = td.total_seconds()
    if s < 120:
        return f"{s:g} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


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
    "EVIDENCE_KEPT", "KINDS", "KIND_TITLES", "Finding", "FindingPart", "build_findings",
    "combine_parts", "finding_parts", "findings", "findings_table", "headline",
    "hash_repeats", "headline_finding", "headline_text", "numeric_ts_dropped", "line_shape",
    "payload_field", "snippet",
]


# -- the findings, in parts ----------------------------------------------------------------
# Every kind is computed from one cart's lines alone (a cart's files, its earlier lines), so
# a set of carts ("a chunk") gives partial groups that combine exactly: counts and sums add,
# carts are disjoint between chunks, first/last seen take min/max, and the evidence keeps
# the first EVIDENCE_KEPT lines plus the first line of each of the first N_EXAMPLES carts
# (all that the examples and the report's tables read). findings() is one chunk, unbounded.
_GROUPED = {"unknown_type": "types", "apply_error": "errors", "payload_error": "fields",
            "other_malformed": "errors"}
_NAT = np.iinfo(np.int64).min


@dataclass
class _Spec:
    """The lines of one kind in one chunk (``idx``: rows, ascending) and what each carries."""

    kind: str
    idx: np.ndarray
    keys: np.ndarray | None = None  # aligned with idx; None: one group with key None
    extra: dict[str, Any] = field(default_factory=dict)  # full-length arrays or rows -> values
    seen: np.ndarray | None = None  # ns, aligned with idx (else the lines' ts)
    sums: dict[str, np.ndarray] = field(default_factory=dict)  # aligned with idx
    maxes: dict[str, np.ndarray] = field(default_factory=dict)
    alls: dict[str, np.ndarray] = field(default_factory=dict)
    counters: dict[str, np.ndarray] = field(default_factory=dict)
    lists: dict[str, list[Any]] = field(default_factory=dict)  # chunk level (one group)
    scalars: dict[str, int] = field(default_factory=dict)  # chunk level, added to sums


@dataclass
class FindingPart:
    """One (kind, key) of a set of carts: what combines into a :class:`Finding`."""

    kind: str
    key: Any
    n: int
    carts: dict[str, int]
    first: int | None  # ns since the epoch, UTC
    last: int | None
    sums: dict[str, int]
    maxes: dict[str, Any]
    alls: dict[str, bool]
    counters: dict[str, dict[str, list[int]]]  # value -> [lines, first row]
    lists: dict[str, list[Any]]
    evidence: pd.DataFrame
    limit: int | None = None

    def merge(self, other: FindingPart) -> FindingPart:
        """This part and ``other`` (of later rows) as one."""
        carts = dict(self.carts)
        for c, k in other.carts.items():
            carts[c] = carts.get(c, 0) + k
        counters: dict[str, dict[str, list[int]]] = {}
        for name in dict.fromkeys([*self.counters, *other.counters]):
            mine = {v: list(x) for v, x in self.counters.get(name, {}).items()}
            for v, (k, r) in other.counters.get(name, {}).items():
                if v in mine:
                    mine[v] = [mine[v][0] + k, min(mine[v][1], r)]
                else:
                    mine[v] = [k, r]
            counters[name] = mine
        ev = pd.concat([self.evidence, other.evidence], ignore_index=True)
        if len(self.evidence) and len(other.evidence) and "row" in ev.columns:
            ev = ev.sort_values("row", kind="stable", ignore_index=True)
        return FindingPart(
            self.kind, self.key, self.n + other.n, carts,
            _opt(min, self.first, other.first), _opt(max, self.last, other.last),
            {k: self.sums.get(k, 0) + other.sums.get(k, 0)
             for k in dict.fromkeys([*self.sums, *other.sums])},
            {k: _opt(max, self.maxes.get(k), other.maxes.get(k))
             for k in dict.fromkeys([*self.maxes, *other.maxes])},
            {k: self.alls.get(k, True) and other.alls.get(k, True)
             for k in dict.fromkeys([*self.alls, *other.alls])},
            counters,
            {k: self.lists.get(k, []) + other.lists.get(k, [])
             for k in dict.fromkeys([*self.lists, *other.lists])},
            _bound(ev, self.limit), self.limit)

    def counted(self, name: str) -> pd.Series:
        """A counter as value_counts() gives it: most lines first, ties by first row."""
        c = self.counters.get(name, {})
        items = sorted(c.items(), key=lambda kv: (-kv[1][0], kv[1][1]))
        return pd.Series({k: v[0] for k, v in items}, dtype="int64")


def _opt(f: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else f(a, b)


def _bound(ev: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    """The first ``limit`` lines and the first line of each of the first N_EXAMPLES carts."""
    if limit is None or len(ev) <= limit or "cart_id" not in ev.columns:
        return ev
    carts = ev["cart_id"].to_numpy()
    firsts = pd.Index(carts).duplicated(keep="first")
    first_rows = np.flatnonzero(~firsts)[:N_EXAMPLES]
    keep = np.union1d(np.arange(limit), first_rows)
    return ev.iloc[keep].reset_index(drop=True)


class _Chunk:
    """A go/lenient pair's columns as the findings read them (object values only on demand)."""

    def __init__(self, go: ReplayOfEvents, lenient: ReplayLike) -> None:
        ev = go.events
        self.go, self.lenient, self.ev = go, lenient, ev
        self.n = len(ev)
        self.cart, self.cart_names = cart_codes(ev["cart_id"])
        ts = pd.to_datetime(ev["ts"], utc=True)
        self.ts = ts.reset_index(drop=True)
        self.ts_ns = self.ts.dt.as_unit("ns").array.asi8 if len(ts) else np.zeros(0, np.int64)
        self.go_oc = go.outcomes["outcome"].reset_index(drop=True)
        self.le_oc = lenient.outcomes["outcome"].reset_index(drop=True)
        self._is: dict[tuple[str, str], np.ndarray] = {}

    def is_(self, mode: str, outcome: str) -> np.ndarray:
        k = (mode, outcome)
        if k not in self._is:
            s = self.go_oc if mode == "go" else self.le_oc
            self._is[k] = (s == outcome).to_numpy(dtype=bool)
        return self._is[k]

    def at(self, col: pd.Series, rows: np.ndarray) -> np.ndarray:
        """``col``'s values at ``rows`` as objects (None for missing or non-text); of a
        categorical, its categories' own objects (not a new str per row)."""
        if not len(rows):
            return np.empty(0, dtype=object)
        if isinstance(col.dtype, pd.CategoricalDtype):
            names = np.append(text_or_none(np.asarray(col.cat.categories, dtype=object)), None)
            return names[col.cat.codes.to_numpy()[rows]]  # (code -1: the None at the end)
        return text_or_none(col.iloc[rows])

    def evidence(self, rows: np.ndarray) -> pd.DataFrame:
        ev, a, b = self.ev, self.go.outcomes, self.lenient.outcomes
        return pd.DataFrame({
            "cart_id": ev["cart_id"].iloc[rows].astype(str).to_numpy(dtype=object),
            "line": ev["line"].to_numpy(dtype=np.int64)[rows],
            "ts": self.ts.iloc[rows].array,
            "type": self.at(ev["type"], rows),
            "go_outcome": a["outcome"].iloc[rows].astype(str).to_numpy(dtype=object),
            "go_error": self.at(a["error"], rows),
            "lenient_outcome": b["outcome"].iloc[rows].astype(str).to_numpy(dtype=object),
            "lenient_error": self.at(b["error"], rows),
        }).assign(ts=lambda d: pd.to_datetime(d["ts"], utc=True))


class OutcomeColumns:
    """A replay's ``outcomes`` read one column at a time (``cols["error"]``), never the whole
    frame (a row of six columns per line): a :class:`~cartforensics.model.replay.Replay`'s
    ``outcome`` and ``error`` as categoricals over the codes it keeps per line, its other
    columns the events' own; any other replay's from its ``outcomes``. ``len``: the lines.

    >>> import cartforensics as cf                                     # doctest: +SKIP
    >>> OutcomeColumns(cf.replay("sample_data"))["outcome"].value_counts()  # doctest: +SKIP
    """

    def __init__(self, replay: ReplayLike) -> None:
        self._replay = replay
        # the compact columns (model/replay.py), unless the frame is there already
        self._compact = isinstance(replay, Replay) and replay._outcomes is None

    def __len__(self) -> int:
        r = self._replay
        return len(r._plain) if self._compact else len(r.outcomes)  # type: ignore[attr-defined]

    def __getitem__(self, name: str) -> pd.Series:
        r = self._replay
        if not self._compact:
            return r.outcomes[name]
        if name == "outcome":
            return pd.Series(pd.Categorical.from_codes(r._codes, categories=OUTCOMES))
        if name == "error":
            return pd.Series(pd.Categorical.from_codes(r._error_index,
                                                       categories=r._error_texts))
        if name not in ("cart_id", "line", "ts", "type"):
            raise KeyError(name)
        return r._plain[name]  # (the events without their attrs: no deep copy per access)


class _ReadByColumn:
    """A replay whose ``outcomes`` is its :class:`OutcomeColumns`; the rest is the replay's."""

    def __init__(self, replay: ReplayLike) -> None:
        self._replay = replay
        self.outcomes = OutcomeColumns(replay)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._replay, name)


def cart_codes(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, name per code) of a cart_id column (categorical: its own codes)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return (col.cat.codes.to_numpy().astype(np.int64),
                np.asarray([str(c) for c in col.cat.categories], dtype=object))
    codes, uniq = pd.factorize(col.astype(str), sort=False)
    return codes.astype(np.int64), np.asarray(uniq, dtype=object)


def _text_columns(ev: pd.DataFrame) -> pd.DataFrame:
    """Text columns as pandas' ``str`` dtype whatever they hold (all missing too), so that
    evidence has the same dtypes however the carts were cut into chunks."""
    for col in ev.columns:
        s = ev[col]
        if s.dtype == object and all(v is None or isinstance(v, str) for v in s):
            ev[col] = s.astype("str")
    return ev


def _reduce(spec: _Spec, ch: _Chunk, limit: int | None, offset: int) -> list[FindingPart]:
    idx = spec.idx
    if not len(idx):
        return []
    if spec.keys is None:
        groups: list[tuple[Any, np.ndarray]] = [(None, np.arange(len(idx)))]
    else:
        valid = np.fromiter((k is not None for k in spec.keys), bool, len(idx))
        codes, uniq = pd.factorize(pd.Series(spec.keys[valid], dtype=object), sort=False)
        pos = np.flatnonzero(valid)
        order = np.argsort(codes, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=len(uniq)))]
        groups = [(uniq[k], pos[order[bounds[k]:bounds[k + 1]]]) for k in range(len(uniq))]
    out = []
    for key, p in groups:
        rows = idx[p]
        cc = ch.cart[rows]
        u, cnt = np.unique(cc, return_counts=True)
        carts = {str(ch.cart_names[c]): int(k) for c, k in zip(u, cnt, strict=True)}
        seen = spec.seen[p] if spec.seen is not None else ch.ts_ns[rows]
        seen = seen[seen != _NAT]
        counters = {}
        for name, vals in spec.counters.items():
            v = vals[p]
            ok = np.fromiter((x is not None for x in v), bool, len(v))
            c2, u2 = pd.factorize(pd.Series(v[ok], dtype=object), sort=False)
            if len(u2):
                firsts = np.full(len(u2), len(c2), dtype=np.int64)
                np.minimum.at(firsts, c2, np.arange(len(c2)))
                r_ok = rows[ok]
                counters[name] = {str(u2[j]): [int(k), int(r_ok[firsts[j]]) + offset]
                                  for j, k in enumerate(np.bincount(c2, minlength=len(u2)))}
            else:
                counters[name] = {}
        if limit is None:
            kept = np.arange(len(rows))
        else:
            _, first_pos = np.unique(cc, return_index=True)
            kept = np.union1d(np.arange(min(limit, len(rows))),
                              np.sort(first_pos)[:N_EXAMPLES])
        krows = rows[kept]
        ev = ch.evidence(krows)
        for name, values in spec.extra.items():
            if callable(values):
                ev[name] = values(krows)
            else:
                vals = np.asarray(values, dtype=object) if not isinstance(values, pd.Series) \
                    else values.to_numpy()
                ev[name] = vals[krows]
        ev.insert(0, "row", krows + offset)
        ev = _text_columns(ev)
        one = spec.keys is None
        out.append(FindingPart(
            spec.kind, key, len(rows), carts,
            int(seen.min()) if len(seen) else None, int(seen.max()) if len(seen) else None,
            {**{k: int(np.asarray(v)[p].sum()) for k, v in spec.sums.items()},
             **(spec.scalars if one else {})},
            {k: (np.asarray(v)[p].max().item() if len(p) else None)
             for k, v in spec.maxes.items()},
            {k: bool(np.asarray(v)[p].all()) for k, v in spec.alls.items()},
            counters, dict(spec.lists) if one else {}, ev, limit))
    return out


def finding_parts(go: ReplayOfEvents, lenient: ReplayLike, limit: int | None = EVIDENCE_KEPT,
                  offset: int = 0) -> dict[tuple[str, Any], FindingPart]:
    """The findings of a set of carts as parts that :func:`combine_parts` adds up and
    :func:`build_findings` turns into :class:`Finding` objects: ``limit`` evidence lines per
    part (None: all), rows numbered from ``offset``. Every cart must be whole in ``go``."""
    go, lenient = _ReadByColumn(go), _ReadByColumn(lenient)  # never the outcomes frames
    _check_pair(go, lenient)
    ch = _Chunk(go, lenient)
    specs: list[_Spec] = []
    specs += _numeric_ts(ch)
    specs += _too_long(ch)
    specs += _unknown_types(ch)
    specs += _broken_lines(ch)
    specs += _no_final_newline(ch)
    specs += _apply_errors(ch)
    specs += _payload_errors(ch)
    specs += _ts_backwards(ch)
    specs += _duplicates(ch)
    specs += _toolchain(ch)
    parts: dict[tuple[str, Any], FindingPart] = {}
    for spec in specs:
        for part in _reduce(spec, ch, limit, offset):
            parts[(part.kind, part.key)] = part
    problems = list(go.events.attrs.get("problems") or [])
    if problems:
        # read_events lists the files' problems first, then its notes on carts of several
        # files: kept apart, so that chunks of carts list them in the same order
        notes = [p for p in problems if _is_multi_file_note(p)]
        reads = [p for p in problems if not _is_multi_file_note(p)]
        parts[("file_problem", None)] = FindingPart(
            "file_problem", None, len(problems), {}, None, None, {}, {}, {}, {},
            {"problems": reads, "notes": notes}, pd.DataFrame(), limit)
    return parts


def _is_multi_file_note(p: dict[str, Any]) -> bool:
    err = str(p.get("error", ""))
    return err.startswith(f"cart {p.get('cart_id')!r} has ") and " files; their lines " in err


def combine_parts(parts: Sequence[dict[tuple[str, Any], FindingPart]]
                  ) -> dict[tuple[str, Any], FindingPart]:
    """Parts of consecutive sets of carts (in row order) as one set of parts."""
    out: dict[tuple[str, Any], FindingPart] = {}
    for p in parts:
        for k, part in p.items():
            out[k] = out[k].merge(part) if k in out else part
    return out


def build_findings(parts: dict[tuple[str, Any], FindingPart], total_lines: int,
                   sem: Any) -> list[Finding]:
    """The ranked findings from combined parts (``total_lines``: lines read in all;
    ``sem``: the toolchain replayed as)."""
    by_kind: dict[str, list[FindingPart]] = {}
    for (kind, _), part in parts.items():
        by_kind.setdefault(kind, []).append(part)
    out: list[Finding] = []
    for kind in KINDS:
        got = by_kind.get(kind, [])
        if not got:
            continue
        if kind not in _GROUPED:
            for p in got:
                out.append(_BUILD[kind](p, total_lines, sem))
                out[-1].part_keys = [p.key]  # type: ignore[attr-defined]
            continue
        got.sort(key=lambda p: (-p.n, str(p.key)))
        top, rest = got[:MAX_GROUPS], got[MAX_GROUPS:]
        for p in top:
            out.append(_BUILD[kind](p, total_lines, sem))
            out[-1].part_keys = [p.key]  # type: ignore[attr-defined]
        if rest:
            merged = rest[0]
            for p in rest[1:]:
                merged = merged.merge(p)
            merged.key = f"({len(rest)} other {_GROUPED[kind]})"
            out.append(_BUILD[kind](merged, total_lines, sem))
            out[-1].part_keys = [p.key for p in rest]  # type: ignore[attr-defined]
    order = {k: i for i, k in enumerate(KINDS)}
    out.sort(key=lambda f: (-f.count, order.get(f.kind, len(order)), str(f.key)))
    return out


def _ts(ns: int | None) -> pd.Timestamp | None:
    return None if ns is None else pd.Timestamp(ns, unit="ns", tz="UTC")


def _make(p: FindingPart, message: Callable[[dict[str, Any]], str],
          details: dict[str, Any] | None = None) -> Finding:
    ev = p.evidence.reset_index(drop=True)
    first, last = _ts(p.first), _ts(p.last)
    info = {"n": p.n, "carts": len(p.carts), "first": first, "last": last, **(details or {})}
    return Finding(kind=p.kind, message=message(info), count=p.n, carts=len(p.carts),
                   first_seen=first, last_seen=last, examples=_examples(ev), evidence=ev,
                   key=p.key, details=details or {})


def findings(go: ReplayOfEvents, lenient: ReplayLike) -> list[Finding]:
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

    A report computes the same findings set of carts by set of carts
    (:func:`finding_parts`, :func:`combine_parts`, :func:`build_findings`), keeping a few
    evidence lines of each.
    """
    parts = finding_parts(go, lenient, limit=None)
    return build_findings(parts, len(go.events), go.semantics)


# -- the kinds: which lines (per chunk), and the message (from the combined part) ----------
def _numeric_ts(ch: _Chunk) -> list[_Spec]:
    ev = ch.ev
    idx = np.flatnonzero(_dropped_numeric_ts(ev))
    return [_Spec("numeric_ts", idx, sums={"applied": ch.is_("lenient", "applied")[idx]})]


def _build_numeric_ts(p: FindingPart, total: int, sem: Any) -> Finding:
    head = (f"{p.n} of {total} lines ({len(p.carts)} carts) are dropped by the service's "
            "reader: ts is a JSON number, the reader expects an RFC 3339 string")
    return _make(p, lambda i: head, {"lines": p.n, "total_lines": total,
                                     "applied_in_lenient_mode": p.sums["applied"]})


def _too_long(ch: _Chunk) -> list[_Spec]:
    long_ = ch.ev["too_long"].to_numpy(dtype=bool)
    lost = ch.is_("go", "not_reached")
    idx = np.flatnonzero(long_ | lost)
    def role(rows: np.ndarray) -> np.ndarray:  # of the evidence rows only
        return np.where(long_[rows], "over 256 KiB", "not reached").astype(object)

    length = ch.ev["length"].to_numpy()
    return [_Spec("too_long", idx, extra={"role": role, "length": length},
                  sums={"too_long": long_[idx], "not_reached": lost[idx]},
                  maxes={"longest": np.where(long_[idx], length[idx], 0).astype(np.int64)})]


def _build_too_long(p: FindingPart, total: int, sem: Any) -> Finding:
    n_long, n_lost = p.sums["too_long"], p.sums["not_reached"]

    def msg(i: dict[str, Any]) -> str:
        return (
            f"{_n(n_long, 'line')} over 256 KiB {_v(n_long, 'stops', 'stop')} the service's "
            f"reader in {_n(i['carts'], 'cart')}: it also loses the {_n(n_lost, 'line')} after "
            f"{_v(n_long, 'it', 'them')}, and counts a failed replay instead of a successful "
            f"one for {_v(i['carts'], 'that cart', 'each of those carts')}"
        )

    return _make(p, msg, {"too_long": n_long, "not_reached": n_lost,
                          "longest": int(p.maxes["longest"]) if n_long else 0})


def _unknown_types(ch: _Chunk) -> list[_Spec]:
    idx = np.flatnonzero(ch.is_("lenient", "unknown_type"))
    types = np.array([t if isinstance(t, str) else "" for t in ch.at(ch.ev["type"], idx)],
                     dtype=object)
    return [_Spec("unknown_type", idx, keys=types,
                  sums={"seen_by_service": ch.is_("go", "unknown_type")[idx]})]


def _build_unknown_type(p: FindingPart, total: int, sem: Any) -> Finding:
    key = p.key
    seen_by_service = p.sums["seen_by_service"]
    hidden = p.n - seen_by_service
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

    return _make(p, msg, {"seen_by_service": seen_by_service, "hidden": hidden})


_BROKEN_PIECE = 65_536  # broken lines read at a time


def _broken_lines(ch: _Chunk) -> list[_Spec]:
    le_err = ch.lenient.outcomes["error"]
    bad = np.flatnonzero(le_err.notna().to_numpy() & ch.is_("lenient", "malformed"))
    if not len(bad):
        return []
    n = ch.n
    shape = np.full(n, None, dtype=object)
    how = np.full(n, None, dtype=object)
    snip = np.full(n, None, dtype=object)
    inner = np.full(n, _NAT, dtype=np.int64)
    for a in range(0, len(bad), _BROKEN_PIECE):  # a piece at a time: no int object per line
        piece = bad[a : a + _BROKEN_PIECE].tolist()
        seen: dict[bytes, tuple[Any, Any, str, int]] = {}  # the piece's distinct lines
        for r, raw in zip(piece, _raw_bytes(ch.ev, piece), strict=True):
            hit = seen.get(raw)
            if hit is None:
                tok = raw[:-1] if raw.endswith(b"\r") else raw
                s, h = line_shape(tok)
                t = _glued_ts(tok) if s == "glued" else None
                hit = seen[raw] = (s, h, snippet(raw), _NAT if t is None else
                                   t.as_unit("ns").value)
            shape[r], how[r], snip[r], inner[r] = hit
    out = []
    glued = np.flatnonzero(shape == "glued")
    if len(glued):
        records = np.array([int(h.split()[0]) if h else 0 for h in how[glued]], dtype=np.int64)
        own = ch.ts_ns[glued]
        out.append(_Spec("glued", glued, extra={"shape": how, "snippet": snip},
                         seen=np.where(own != _NAT, own, inner[glued]),
                         sums={"records": records}))
    torn = np.flatnonzero(shape == "torn")
    if len(torn):
        out.append(_Spec("torn", torn, extra={"shape": how, "snippet": snip},
                         counters={"shapes": how[torn]}))
    other = np.setdiff1d(bad, np.union1d(glued, torn))
    if len(other):
        errs = ch.at(le_err, other)
        keys = errs.copy()  # (the texts' own objects: the lines have an error text)
        keys[shape[other] == "blank"] = "blank line"
        out.append(_Spec("other_malformed", other, keys=keys, extra={"snippet": snip}))
    return out


def _build_glued(p: FindingPart, total: int, sem: Any) -> Finding:
    records = p.sums["records"]

    def msg(i: dict[str, Any]) -> str:
        return (
            f"{_n(i['n'], 'line')} ({_n(i['carts'], 'cart')}) "
            f"{_v(i['n'], 'holds', 'hold')} {records:,} "
            "JSON records glued together: two writers appended to the same cart at once "
            "(or one wrote after a crash cut a line short), and the reader drops every "
            "record on such a line"
        )

    return _make(p, msg, {"records": records})


def _build_torn(p: FindingPart, total: int, sem: Any) -> Finding:
    kinds = p.counted("shapes").to_dict()

    def msg(i: dict[str, Any]) -> str:
        what = ", ".join(f"{v:,} {k}" for k, v in kinds.items())
        return (
            f"{_n(i['n'], 'line')} ({_n(i['carts'], 'cart')}) {_v(i['n'], 'is', 'are')} torn "
            f"JSON ({what}): a "
            "write was interrupted or two writers interleaved, and the reader drops them"
        )

    return _make(p, msg, {"shapes": {str(k): int(v) for k, v in kinds.items()}})


def _build_other_malformed(p: FindingPart, total: int, sem: Any) -> Finding:
    key = p.key

    def msg(i: dict[str, Any]) -> str:
        if key == "blank line":
            return (f"{_n(i['n'], 'line')} ({_n(i['carts'], 'cart')}) "
                    f"{_v(i['n'], 'is', 'are')} blank: the reader counts each as a "
                    "failed line")
        return (f"{_n(i['n'], 'line')} ({_n(i['carts'], 'cart')}) "
                f"{_v(i['n'], 'is', 'are')} rejected by the reader with \"{key}\", "
                "in both modes")

    return _make(p, msg)


def _no_final_newline(ch: _Chunk) -> list[_Spec]:
    idx = np.flatnonzero(~ch.ev["newline"].to_numpy(dtype=bool))
    ev = ch.ev
    return [_Spec("no_final_newline", idx,
                  extra={"length": ev["length"].to_numpy(),
                         "snippet": lambda rows: [snippet(r) for r in
                                                  _raw_bytes(ev, rows.tolist())]},
                  sums={"applied": ch.is_("go", "applied")[idx]})]


def _build_no_final_newline(p: FindingPart, total: int, sem: Any) -> Finding:
    applied = p.sums["applied"]

    def msg(i: dict[str, Any]) -> str:
        whose = "cart's log ends" if i["carts"] == 1 else "carts' logs end"
        return (
            f"{i['carts']:,} {whose} in a line without its newline, a write cut "
            f"short (a crash mid-write?): the reader still reads it ({applied:,} applied by "
            "the service), the writer never counted it in appends_total, and the next append "
            "to the cart will be glued onto it"
        )

    return _make(p, msg, {"applied_by_service": applied})


def _apply_errors(ch: _Chunk) -> list[_Spec]:
    in_go, in_le = ch.is_("go", "apply_error"), ch.is_("lenient", "apply_error")
    idx = np.flatnonzero(in_go | in_le)
    g, le = in_go[idx], in_le[idx]
    keys = np.where(g, ch.at(ch.go.outcomes["error"], idx), ch.at(ch.lenient.outcomes["error"],
                                                                   idx))
    return [_Spec("apply_error", idx, keys=np.asarray(keys, dtype=object), sums={
        "in_go": g, "cascade": g & ch.is_("lenient", "applied")[idx], "both": g & le,
        "only_le": le & ~g}, counters={"types": ch.at(ch.ev["type"], idx)})]


def _build_apply_error(p: FindingPart, total: int, sem: Any) -> Finding:
    key = p.key
    g, cascade, both, only_le = (p.sums[k] for k in ("in_go", "cascade", "both", "only_le"))
    top_types = p.counted("types")
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

    return _make(p, msg, {
        "in_service_replay": g, "cascade": cascade, "also_in_lenient_mode": both,
        "only_in_lenient_mode": only_le,
        "types": {str(k): int(v) for k, v in top_types.items()},
    })


def _payload_errors(ch: _Chunk) -> list[_Spec]:
    in_go = ch.is_("go", "payload_error")
    idx = np.flatnonzero(in_go | ch.is_("lenient", "payload_error"))
    if not len(idx):
        return []
    errs = np.where(in_go[idx], ch.at(ch.go.outcomes["error"], idx),
                    ch.at(ch.lenient.outcomes["error"], idx))
    types = ch.at(ch.ev["type"], idx)
    n = ch.n
    field_ = np.full(n, None, dtype=object)
    value = np.full(n, None, dtype=object)
    gotype = np.full(n, None, dtype=object)
    for j, r in enumerate(idx.tolist()):
        field_[r], value[r], gotype[r] = payload_field(str(errs[j]), types[j])
    return [_Spec("payload_error", idx, keys=field_[idx],
                  extra={"field": field_, "value": value, "go_type": gotype},
                  sums={"seen": in_go[idx]},
                  counters={"values": value[idx], "gotypes": gotype[idx]})]


def _build_payload_error(p: FindingPart, total: int, sem: Any) -> Finding:
    key = p.key
    vals = p.counted("values")
    gt = p.counted("gotypes")
    seen = p.sums["seen"]

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

    return _make(p, msg, {"values": {str(k): int(v) for k, v in vals.items()},
                          "seen_by_service": seen})


def _ts_backwards(ch: _Chunk) -> list[_Spec]:
    if not ch.n:
        return []
    ts = ch.ts
    prev_ns = _previous_ts(ch.cart, ch.ts_ns)
    idx = np.flatnonzero((ch.ts_ns != _NAT) & (prev_ns != _NAT) & (ch.ts_ns < prev_ns))
    if not len(idx):
        return []
    prev = pd.Series(pd.DatetimeIndex(prev_ns.view("M8[ns]")).tz_localize("UTC")
                     .as_unit(ts.dt.unit), index=ts.index)
    behind = prev - ts
    worst = behind.dt.as_unit("ns").array.asi8[idx]
    return [_Spec("ts_backwards", idx, extra={"previous_ts": prev, "behind": behind},
                  maxes={"worst": worst})]


def _previous_ts(cart: np.ndarray, ts_ns: np.ndarray) -> np.ndarray:
    """Per line, the last readable ts (ns; ``_NAT``: none) of the lines before it in its cart.

    >>> _previous_ts(np.array([0, 0, 1, 0, 0]), np.array([5, _NAT, 9, 3, 4])).tolist() == [
    ...     _NAT, 5, _NAT, 5, 3]
    True
    """
    n = len(cart)
    if not n:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(cart, kind="stable")
    c, t = cart[order], ts_ns[order]
    at = np.arange(n)
    start = np.maximum.accumulate(np.where(np.r_[True, c[1:] != c[:-1]], at, 0))
    last = np.maximum.accumulate(np.where(t != _NAT, at, -1))  # last readable, up to here
    before = np.r_[-1, last[:-1]]
    prev = np.empty(n, dtype=np.int64)
    prev[order] = np.where(before >= start, t[np.maximum(before, 0)], _NAT)
    return prev


def _build_ts_backwards(p: FindingPart, total: int, sem: Any) -> Finding:
    worst = pd.Timedelta(int(p.maxes["worst"]), unit="ns")

    def msg(i: dict[str, Any]) -> str:
        return (
            f"{_n(i['n'], 'line')} ({_n(i['carts'], 'cart')}) {_v(i['n'], 'has', 'have')} a "
            f"ts earlier than the line before {_v(i['n'], 'it', 'them')} (up to "
            f"{_span(worst)} back): the writers' clocks disagree or lines were appended late; "
            "the replay keeps file order, so a cart's state at a time is approximate there"
        )

    return _make(p, msg, {"max_behind_seconds": float(worst.total_seconds())})


def _duplicates(ch: _Chunk) -> list[_Spec]:
    ev = ch.ev
    if ch.n < 2:
        return []
    cart = ch.cart
    length = ev["length"].to_numpy(dtype=np.int64)
    if "raw_digest" in ev.columns:
        # a dataset read for a report (fleet.stored_replays): a 64-bit hash of each line, its
        # bytes kept where another line of its cart has the same hash (equal lines, equal
        # hashes): only those can repeat one, and are compared byte for byte
        cand = np.flatnonzero(hash_repeats(cart, ev["raw_digest"].to_numpy(dtype=np.uint64)))
    else:  # only lines whose cart holds another line of their length and ts can repeat one
        cand = np.flatnonzero(hash_repeats(cart, _length_and_ts(ev, length)))
    ids = np.arange(ch.n, dtype=np.int64) + ch.n  # unique: no line repeats another
    if len(cand):
        arr = ev["raw"].array
        if hasattr(arr, "_pa_array"):
            some = arr._pa_array.take(pa.array(cand, pa.int64())).combine_chunks()
            if some.null_count:  # (a hash that collides with another cart's: no bytes kept)
                ok = some.is_valid().to_numpy(zero_copy_only=False)
                cand, some = cand[ok], some.filter(pa.array(ok))
            enc = some.dictionary_encode()
            ids[cand] = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        else:
            col = ev["raw"]
            ids[cand] = pd.factorize(pd.Series([bytes(col.iloc[int(r)]) for r in cand],
                                               dtype=object))[0]
    blank = (length == 0)
    if blank.any():  # whitespace-only lines are not records
        ids = ids.copy()
        ids[blank] = -1
    combined = cart * (int(ids.max()) + 2) + (ids + 1)  # one int per (cart, line bytes)
    codes, uniq = pd.factorize(combined, sort=False)
    first = np.full(len(uniq), len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    first_row = first[codes]
    dup = (first_row != np.arange(len(codes))) & (ids >= 0)
    idx = np.flatnonzero(dup)
    if not len(idx):
        return []
    prev_same = np.r_[False, (cart[1:] == cart[:-1]) & (ids[1:] == ids[:-1])]
    consecutive = dup & prev_same
    first_line = ev["line"].to_numpy(dtype=np.int64)[first_row]
    return [_Spec("duplicate", idx,
                  extra={"repeats_line": first_line, "consecutive": consecutive},
                  sums={"consecutive": consecutive[idx],
                        "go_applied": ch.is_("go", "applied")[idx],
                        "le_applied": ch.is_("lenient", "applied")[idx]})]


def _length_and_ts(ev: pd.DataFrame, length: np.ndarray) -> np.ndarray:
    """A 64-bit key per line that equal lines share: its length mixed with its ts (decoded
    from its bytes alone, NaT alike; the length alone where the frame has no such ts). Most
    lines of a cart share a length with another, few their ts as well: far fewer lines'
    bytes are compared."""
    key = np.asarray(length, dtype=np.int64).astype(np.uint64) << np.uint64(40)
    if "ts" in ev.columns and pd.api.types.is_datetime64_any_dtype(ev["ts"].dtype):
        key ^= np.asarray(ev["ts"].array.asi8, dtype=np.int64).view(np.uint64)
    return key


def hash_repeats(cart: np.ndarray, digest: np.ndarray) -> np.ndarray:
    """Whether each line (``cart``: its cart's code, ``digest``: a 64-bit hash of its bytes)
    may repeat another of its cart: every line whose cart holds another line of its hash, and
    a few more (cart and hash are mixed into one 64-bit key).

    >>> hash_repeats(np.array([0, 0, 1, 0]), np.array([7, 8, 7, 7], np.uint64)).tolist()
    [True, False, False, True]
    """
    key = np.asarray(digest, dtype=np.uint64) ^ (
        np.asarray(cart).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    return pd.Series(key).duplicated(keep=False).to_numpy()


def _build_duplicate(p: FindingPart, total: int, sem: Any) -> Finding:
    n_consec, go_applied, le_applied = (p.sums[k] for k in
                                        ("consecutive", "go_applied", "le_applied"))

    def msg(i: dict[str, Any]) -> str:
        return (
            f"{_n(i['n'], 'line')} ({_n(i['carts'], 'cart')}) "
            f"{_v(i['n'], 'repeats', 'repeat')} an earlier line of the same cart byte for byte "
            f"({n_consec:,} right after it), a retried or doubled "
            f"append or a real double click: the service's replay applies {go_applied:,} of "
            f"{_v(i['n'], 'it', 'them')} again (lenient mode {le_applied:,})"
        )

    return _make(p, msg, {"consecutive": n_consec, "applied_by_service": go_applied,
                          "applied_in_lenient_mode": le_applied})


def _build_file_problem(p: FindingPart, total: int, sem: Any) -> Finding:
    df = pd.DataFrame(p.lists["problems"] + p.lists.get("notes", []))
    carts = df["cart_id"].nunique() if "cart_id" in df else len(df)
    first = str(df["error"].iloc[0]) if "error" in df else ""
    msg = (f"{_n(len(df), 'file')} could not be read whole ({first}"
           f"{', …' if len(df) > 1 else ''}): lines past the damage are missing from every count")
    return Finding(
        kind="file_problem", message=msg, count=len(df), carts=int(carts), first_seen=None,
        last_seen=None,
        examples=[(str(c), 0) for c in df.get("cart_id", pd.Series(dtype=str))[:N_EXAMPLES]],
        evidence=df, details={},
    )


def _toolchain(ch: _Chunk) -> list[_Spec]:
    go = ch.go
    lines, carts = toolchain_lines(go)
    if not len(lines):
        return []
    here, there = go.semantics, other_json(go.semantics)
    tag = there.spec
    order = np.argsort(lines["row"].to_numpy())
    lines = lines.iloc[order].reset_index(drop=True)
    idx = lines["row"].to_numpy(dtype=np.int64)
    direct = lines["escaped_ts"].to_numpy(dtype=bool)
    v2_oc = (lines["outcome"] if here.json_v2 else lines["outcome_" + tag]).to_numpy()
    v1_oc = (lines["outcome_" + tag] if here.json_v2 else lines["outcome"]).to_numpy()
    stake = (carts["total_" + tag] - carts["total"]).abs()
    cart_of = dict(zip(carts["cart_id"], zip(carts["total"], carts["total_" + tag],
                                             strict=True), strict=True))
    pos = {int(r): j for j, r in enumerate(idx.tolist())}
    cols = {
        "escaped_ts": direct,
        "outcome_" + tag: lines["outcome_" + tag].to_numpy(dtype=object),
        "error_" + tag: lines["error_" + tag].to_numpy(dtype=object),
    }
    ev_cart = lines["cart_id"].to_numpy()

    def col(name: str) -> Callable[[np.ndarray], np.ndarray]:
        def take(rows: np.ndarray) -> np.ndarray:
            j = [pos[int(r)] for r in rows]
            if name == "cart_total":
                return np.array([cart_of[c][0] for c in ev_cart[j]], dtype=object)
            if name == "cart_total_" + tag:
                return np.array([cart_of[c][1] for c in ev_cart[j]], dtype=object)
            return cols[name][j]
        return take

    extra = {k: col(k) for k in [*cols, "cart_total", "cart_total_" + tag]}
    return [_Spec(
        "toolchain", idx, extra=extra,
        sums={"direct": direct, "k_v2": direct & (v2_oc == "applied")},
        alls={"usual": ~direct | ((v1_oc == "malformed") & (v2_oc != "malformed"))},
        scalars={"changed": int((stake != 0).sum()), "money": int(stake.sum()),
                 "n_carts": int((carts["lines"] > 0).sum())},
        lists={"per_cart": [
            {"cart_id": r["cart_id"], "lines": int(r["lines"]), "total": int(r["total"]),
             "total_other": int(r["total_" + tag])}
            for r in carts.to_dict("records")]},
    )]


def _build_toolchain(p: FindingPart, total: int, sem: Any) -> Finding:
    here, there = sem, other_json(sem)
    tag = there.spec
    n_direct, k_v2 = p.sums["direct"], p.sums["k_v2"]
    usual = p.alls["usual"]
    changed, money, n_carts = p.sums["changed"], p.sums["money"], p.sums["n_carts"]

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

    return _make(p, msg, {
        "replayed_as": here.spec, "other": tag, "lines": p.n, "carts": n_carts,
        "escaped_ts_lines": n_direct, "applied_by_json_v2": k_v2,
        "carts_with_other_total": changed, "total_difference": money,
        "per_cart": p.lists["per_cart"],
    })


_BUILD: dict[str, Callable[[FindingPart, int, Any], Finding]] = {
    "numeric_ts": _build_numeric_ts, "too_long": _build_too_long,
    "unknown_type": _build_unknown_type, "glued": _build_glued, "torn": _build_torn,
    "no_final_newline": _build_no_final_newline, "apply_error": _build_apply_error,
    "payload_error": _build_payload_error, "other_malformed": _build_other_malformed,
    "ts_backwards": _build_ts_backwards, "duplicate": _build_duplicate,
    "file_problem": _build_file_problem, "toolchain": _build_toolchain,
}
