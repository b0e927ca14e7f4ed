"""The investigation's questions about one line: which line set each field (blame), and what
the other carts did around the same time (context).

Everything here works through what any replay answers (:mod:`cartforensics.model.protocol`:
``outcomes``, ``rows_of``, ``state_at``, ``cart_ids``; and a replay's ``applied_states``, the
states after its applied lines in one pass, where it has them), so it holds whatever the
replay's internals are and never imports :mod:`cartforensics.model.replay`, whose
:meth:`Replay.blame` and :meth:`Replay.context` call these functions.

>>> go = cf.replay("sample_data")                                  # doctest: +SKIP
>>> go.blame("cart-1164")                                          # doctest: +SKIP
>>> go.context("cart-1164", line=4, minutes=5)                     # doctest: +SKIP
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from cartforensics.model.cart import same_value
from cartforensics.model.protocol import ReplayLike, ReplayOfStates

__all__ = ["BlameIndex", "blame", "blame_index", "context", "first_parting", "leaves",
           "parting_index"]

BLAME_COLUMNS = ["path", "value", "line", "ts", "type"]
CONTEXT_COLUMNS = ["cart_id", "line", "ts", "offset", "type", "outcome", "error"]

_ABSENT = object()
Key = tuple[Any, ...]


# -- leaves of a state JSON -------------------------------------------------------------------


def _ident(k: int, v: Any) -> tuple[str, Any]:
    """How an element of a list is known from one state to the next: an item or a delivery
    by its id (so that removing items[0] does not blame every item after it), anything else
    by its place."""
    if isinstance(v, dict) and "id" in v:
        return ("#", v["id"])
    return ("@", k)


def leaves(value: Any, key: Key = (), path: str = "") -> Iterator[tuple[Key, str, Any]]:
    """``(key, path, value)`` of every leaf: scalars, and lists or objects that are empty.
    ``path`` reads ``items[0].qty``; ``key`` names the same field by ids (``items#3.qty``)."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from leaves(v, (*key, k), f"{path}.{k}" if path else str(k))
    elif isinstance(value, list) and value:
        for k, v in enumerate(value):
            yield from leaves(v, (*key, _ident(k, v)), f"{path}[{k}]")
    else:
        yield key, path, value


def _collect_leaves(value: Any, key: Key, path: str, keys: list[Key], paths: list[str],
                    values: list[Any]) -> None:
    """:func:`leaves` appended to three lists (no generator per level: a blame lists every
    leaf of a state at each position asked for)."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(v, (dict, list)) and v:
                _collect_leaves(v, (*key, k), sub, keys, paths, values)
            else:
                keys.append((*key, k))
                paths.append(sub)
                values.append(v)
    elif isinstance(value, list) and value:
        for k, v in enumerate(value):
            _collect_leaves(v, (*key, _ident(k, v)), f"{path}[{k}]", keys, paths, values)
    else:
        keys.append(key)
        paths.append(path)
        values.append(value)


# what entries listed last: (keys, paths, values, where each list element's leaves lie in
# them: (id(element), list name, index) -> (element, start, stop))
_Listed = tuple[list[Key], list[str], list[Any], dict[tuple[int, str, int], tuple[Any, int, int]]]


def _collect_state_leaves(state: dict[str, Any], keys: list[Key], paths: list[str],
                          values: list[Any], before: _Listed | None
                          ) -> dict[tuple[int, str, int], tuple[Any, int, int]]:
    """:func:`_collect_leaves` of a state JSON, the leaves of each element of its lists (an
    item, a delivery) copied from ``before`` when that very dict (never changed: the states
    after consecutive lines share the elements that stayed the same) was listed at the same
    place there; returns where each element's leaves lie in ``keys``."""
    where: dict[tuple[int, str, int], tuple[Any, int, int]] = {}
    for name, v in state.items():
        if not (isinstance(v, list) and v):
            if isinstance(v, dict) and v:
                _collect_leaves(v, (name,), name, keys, paths, values)
            else:
                keys.append((name,))
                paths.append(name)
                values.append(v)
            continue
        for k, x in enumerate(v):
            start = len(keys)
            hit = before[3].get((id(x), name, k)) if before is not None else None
            if hit is not None and hit[0] is x:
                _x, a, b = hit
                keys.extend(before[0][a:b])  # type: ignore[index]
                paths.extend(before[1][a:b])  # type: ignore[index]
                values.extend(before[2][a:b])  # type: ignore[index]
            else:
                _collect_leaves(x, (name, _ident(k, x)), f"{name}[{k}]", keys, paths, values)
            where[(id(x), name, k)] = (x, start, len(keys))
    return where


def _changed_keys(old: Any, new: Any, key: Key, out: list[Key]) -> None:
    """Append the key of every leaf of ``new`` that is new or differs from ``old``."""
    if not same_value(old, new):
        _differing_keys(old, new, key, out)


def _differing_keys(old: Any, new: Any, key: Key, out: list[Key]) -> None:
    """:func:`_changed_keys` of two values known to differ."""
    # (a child the same as before is passed over here: most of a state is)
    if isinstance(new, dict) and new and isinstance(old, dict):
        for k, v in new.items():
            o = old.get(k, _ABSENT)
            if not same_value(o, v):
                _differing_keys(o, v, (*key, k), out)
    elif isinstance(new, list) and new and isinstance(old, list):
        # (_ident inlined: a diff runs once per applied line, over every item)
        before = {("#", v["id"]) if isinstance(v, dict) and "id" in v else ("@", k): v
                  for k, v in enumerate(old)}
        for k, v in enumerate(new):
            ident = ("#", v["id"]) if isinstance(v, dict) and "id" in v else ("@", k)
            o = before.get(ident, _ABSENT)
            if o is v and type(v) is dict:  # an item the line left as it was, itself
                continue
            if not same_value(o, v):
                _differing_keys(o, v, (*key, ident), out)
    else:
        _leaf_keys(new, key, out)


def _leaf_keys(value: Any, key: Key, out: list[Key]) -> None:
    """Append the key of every leaf of ``value``, as :func:`leaves` lists them.

    >>> out = []; _leaf_keys({"a": [{"id": 7, "q": 1}], "b": {}}, (), out); out
    [('a', ('#', 7), 'id'), ('a', ('#', 7), 'q'), ('b',)]
    """
    if isinstance(value, dict) and value:
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                _leaf_keys(v, (*key, k), out)
            else:
                out.append((*key, k))
    elif isinstance(value, list) and value:
        for k, v in enumerate(value):
            _leaf_keys(v, (*key, _ident(k, v)), out)
    else:
        out.append(key)


# -- blame ------------------------------------------------------------------------------------


class BlameIndex:
    """For one cart of one replay: at which positions each field of the state changed, built
    in one pass over the lines the replay applied (as far as asked: a blame after line 10
    reads the first 10 lines only). :meth:`at` answers for any position.

    Positions count the cart's lines (0 = the empty cart, p = after the p-th line), as
    :meth:`Replay.state_at` does with ``line=``. The states after the applied lines come from
    the replay's ``applied_states`` (:meth:`Replay.applied_states`: each line applied to the
    cart the line before left) where it has one, else from ``state_at`` one by one.
    """

    def __init__(self, replay: ReplayOfStates, cart_id: str):
        self.replay = replay
        self.cart_id = cart_id
        rows = np.asarray(replay.rows_of(cart_id), dtype=np.int64)
        self._rows = rows
        oc = replay.outcomes
        self.lines = oc["line"].to_numpy()[rows].astype(np.int64)
        # the cart's rows only (a whole column of a large replay costs more than the cart)
        applied = oc["outcome"].iloc[rows].astype(str).to_numpy() == "applied"
        # an error, an unknown type or a line never reached leaves the state as it was: only
        # applied lines can change a field
        self.applied = (np.flatnonzero(applied) + 1).tolist()
        self.changes: dict[Key, list[int]] = {}
        self._done = 0  # how many of the applied lines are read
        self._prev: Any = None
        self._prev_at = 0
        self._recent: dict[int, dict[str, Any]] = {}  # the states of the last two read
        # the states after the applied lines in one forward pass, when the replay gives them
        # (Replay.applied_states), else None: each asked of state_at
        self._states: Iterator[tuple[int, dict[str, Any]]] | None = None
        self._listed: _Listed | None = None  # see _collect_state_leaves

    @functools.cached_property
    def ts(self) -> np.ndarray:
        """Per line of the cart: its ts (UTC, naive ``datetime64[ns]``; NaT: none readable)."""
        ts = self.replay.outcomes["ts"].iloc[self._rows]
        return (pd.to_datetime(ts, utc=True).dt.tz_convert(None).to_numpy()
                .astype("datetime64[ns]"))

    @functools.cached_property
    def types(self) -> np.ndarray:
        """Per line of the cart: its type (None: none)."""
        return np.array([v if isinstance(v, str) else None for v in
                         self.replay.outcomes["type"].iloc[self._rows].to_numpy()],
                        dtype=object)

    def __len__(self) -> int:
        return len(self.lines)

    def _extend(self, position: int) -> None:
        """Read the applied lines up to ``position`` (once each)."""
        if self._prev is None:
            self._prev = self.replay.state_at(self.cart_id, line=0)
            self._recent = {0: self._prev}
            forward = getattr(self.replay, "applied_states", None)
            if forward is not None:
                self._states = forward(self.cart_id)
        applied = self.applied
        while self._done < len(applied) and applied[self._done] <= position:
            p = applied[self._done]
            if self._states is not None:
                at, state = next(self._states)
                if at != p:
                    raise RuntimeError(f"the replay's applied states of cart "
                                       f"{self.cart_id!r} went to position {at}, not {p}")
            else:
                state = self.replay.state_at(self.cart_id, line=p)
            out: list[Key] = []
            _changed_keys(self._prev, state, (), out)
            for k in out:
                self.changes.setdefault(k, []).append(p)
            self._recent = {q: v for q, v in self._recent.items() if q == self._prev_at}
            self._recent[p] = state
            self._prev, self._prev_at = state, p
            self._done += 1

    def read(self, position: int) -> None:
        """Read the applied lines up to ``position`` now (what a blame there needs)."""
        self._extend(position)

    def state_read(self, position: int) -> dict[str, Any] | None:
        """``replay.state_at(cart_id, line=position)`` as the index read it, else None: a
        caller that draws the state beside the blame need not ask again. The state after
        ``position`` is the one after the last applied line at or before it (a line that
        did not apply leaves the cart and its lastChange as they were), so any position
        whose last applied line is one of the last two read is answered. The dict is the
        one the index compares with: read it, never change it."""
        if not 0 <= position <= len(self.lines):
            return None
        k = bisect.bisect_right(self.applied, position)
        q = self.applied[k - 1] if k else 0
        if k > self._done:  # that line is not read yet
            return None
        return self._recent.get(q)

    def position_of(self, line: int) -> int:
        """The position after the cart's line numbered ``line`` (its ``line`` column)."""
        return int(np.searchsorted(self.lines, int(line), side="right"))

    def last_change(self, key: Key, position: int) -> int:
        """The position (1 …) of the line that last changed the field ``key`` at or before
        ``position``, or 0 when it still has its empty-cart value."""
        self._extend(position)
        hits = self.changes.get(key)
        if not hits:
            return 0
        k = bisect.bisect_right(hits, position)
        return hits[k - 1] if k else 0

    def entries(self, position: int, state: dict[str, Any] | None = None
                ) -> tuple[list[str], list[Any], np.ndarray]:
        """``(paths, values, positions)`` of every leaf of the state after ``position``
        lines: ``positions[k]`` is where leaf k last changed (0: never). The lists are kept
        for the next call (which copies the leaves of the items it shares): read them, never
        change them."""
        n = len(self.lines)
        if not 0 <= position <= n:
            raise IndexError(f"cart {self.cart_id!r} has {n} lines, not position {position}")
        self._extend(position)
        if state is None:
            state = self.replay.state_at(self.cart_id, line=position)
        keys: list[Key] = []
        paths: list[str] = []
        values: list[Any] = []
        items = state.get("items") if isinstance(state, dict) else None
        if items and any(items is s.get("items") for s in self._recent.values()):
            # a state this index read (or a copy of one): its items are shared with the
            # states read before it, whose leaves may have been listed already
            placed = _collect_state_leaves(state, keys, paths, values, self._listed)
            self._listed = (keys, paths, values, placed)
        else:
            _collect_leaves(state, (), "", keys, paths, values)
        changes = self.changes
        where = []
        for key in keys:
            hits = changes.get(key)
            if not hits:
                where.append(0)
            elif hits[-1] <= position:  # read no further than position: the usual case
                where.append(hits[-1])
            else:
                k = bisect.bisect_right(hits, position)
                where.append(hits[k - 1] if k else 0)
        return paths, values, np.asarray(where, dtype=np.int64)

    def at(self, position: int, state: dict[str, Any] | None = None) -> pd.DataFrame:
        """The blame after ``position`` lines: one row per leaf field of the state JSON
        (``path``, ``value``) and the ``line``, ``ts`` and ``type`` of the line that last
        changed it (missing while the field has its empty-cart value). ``state``: the state
        JSON at that position when the caller already holds it."""
        paths, values, where = self.entries(position, state)
        known = where > 0
        at = np.where(known, where - 1, 0)
        lines = pd.array(self.lines[at] if len(self.lines) else np.zeros(len(at), np.int64),
                         dtype="Int64")
        lines[~known] = pd.NA
        ts = (self.ts[at] if len(self.ts) else np.full(len(at), np.datetime64("NaT"), "M8[ns]"))
        ts = np.where(known, ts, np.datetime64("NaT"))
        types = [t if k else None for t, k in zip(
            self.types[at] if len(self.types) else [None] * len(at), known, strict=True)]
        out = pd.DataFrame({
            "path": np.array(paths, dtype=object),
            "value": _objects(values),
            "line": lines,
            "ts": pd.to_datetime(pd.Series(ts, dtype="datetime64[ns]"), utc=True),
            "type": pd.array(types, dtype="str") if types else pd.array([], dtype="str"),
        })
        out.attrs.update(cart_id=self.cart_id, position=position, mode=self.replay.mode)
        return out


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)  # lists stay lists (np.array would nest them)
    out[:] = values
    return out


_CACHE = "_blame_indexes"  # the attribute a replay keeps its carts' indexes in


def blame_index(replay: ReplayOfStates, cart_id: str) -> BlameIndex:
    """The :class:`BlameIndex` of a cart, built once per replay and cart. The indexes are
    kept on the replay itself, so they go when it goes (a cache keyed weakly by the replay
    would never let go: each index holds its replay)."""
    per = getattr(replay, _CACHE, None)
    if per is None:
        per = {}
        try:
            setattr(replay, _CACHE, per)
        except (AttributeError, TypeError):  # a replay that takes no attribute: no cache
            return BlameIndex(replay, cart_id)
    hit = per.get(cart_id)
    if hit is None:
        hit = per[cart_id] = BlameIndex(replay, cart_id)
    return hit


def blame(replay: ReplayOfStates, cart_id: str, line: int | None = None) -> pd.DataFrame:
    """One row per leaf field of the cart's state JSON after line ``line`` (its number in
    the cart's file; default: the final state): ``path`` (``items[0].qty``,
    ``deliveries[1].provider``, ``totalPrice``), ``value``, and the ``line``, ``ts`` and
    ``type`` of the line that last changed the field, missing where it still has its
    empty-cart value. Items and deliveries are followed by id: removing one never blames
    the fields of the others. A field is blamed on the line that last gave it a new value
    (a line that writes the value it already has does not take the blame); ``lastChange``
    goes to the last applied line whose ts text differs from the one before.

    >>> go.blame("cart-1002", line=5)                               # doctest: +SKIP
    """
    if cart_id not in replay.cart_ids:
        raise KeyError(f"no cart {cart_id!r} in this replay")
    idx = blame_index(replay, cart_id)
    if line is None:
        position = len(idx)
    else:
        if isinstance(line, bool) or not isinstance(line, (int, np.integer)) or line < 0:
            raise ValueError(f"line must be a line number (0 or more), not {line!r}")
        last = int(idx.lines[-1]) if len(idx) else 0
        if line > last:
            raise IndexError(f"cart {cart_id!r} has no line {line} (its last line is {last})")
        position = idx.position_of(int(line))
    return idx.at(position)


def parting_index(go_applied: np.ndarray, lenient_applied: np.ndarray) -> int | None:
    """The index of the first line one mode applies and the other does not, given whether
    each mode applied each line of a cart (None when they apply the same lines)."""
    differ = np.flatnonzero(go_applied != lenient_applied)
    return int(differ[0]) if len(differ) else None


def first_parting(go: ReplayLike, lenient: ReplayLike, cart_id: str) -> int | None:
    """The first line (its number) of the cart that one mode applies and the other does not:
    where the service's cart and the writer's part (they agree on every line before it), or
    None when both modes apply the same lines."""
    a = go.outcomes["outcome"].astype(str).to_numpy()[go.rows_of(cart_id)] == "applied"
    rows = lenient.rows_of(cart_id)
    b = lenient.outcomes["outcome"].astype(str).to_numpy()[rows] == "applied"
    if len(a) != len(b):
        raise ValueError("the two replays hold different lines for this cart")
    k = parting_index(a, b)
    return None if k is None else int(lenient.outcomes["line"].to_numpy()[rows][k])


# -- context ----------------------------------------------------------------------------------


def _minutes(minutes: Any) -> pd.Timedelta:
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float, np.integer,
                                                             np.floating)):
        raise ValueError(f"minutes must be a number above 0, not {minutes!r}")
    if not minutes > 0 or minutes != minutes or minutes == float("inf"):
        raise ValueError(f"minutes must be a number above 0, not {minutes!r}")
    return pd.Timedelta(minutes=float(minutes))


def context(replay: ReplayLike, cart_id: str, line: int, minutes: float = 5) -> pd.DataFrame:
    """The lines of the other carts whose ts lies within ``minutes`` before or after the ts
    of the cart's line ``line`` (its number in the file), with their outcome and error in
    this replay's mode, ordered by time (then cart and line). ``offset`` is each line's ts
    minus the line's own. Times are the lines' ts as written (``outcomes["ts"]``, where a
    numeric ts is read as Unix seconds), so both modes place a line at the same time.

    A line with no readable ts is placed at the ts of the nearest line before it that has
    one (after it, when none before), as SPEC §6 places such lines; when the cart has no
    readable ts at all the frame is empty and ``attrs["reason"]`` says why. Lines of other
    carts with no readable ts cannot be placed in time: ``attrs["untimed"]`` counts them.
    ``attrs["center"]`` is the time the window is centred on.

    >>> go.context("cart-1002", line=5, minutes=2)                  # doctest: +SKIP
    """
    window = _minutes(minutes)
    if cart_id not in replay.cart_ids:
        raise KeyError(f"no cart {cart_id!r} in this replay")
    oc = replay.outcomes
    rows = np.asarray(replay.rows_of(cart_id), dtype=np.int64)
    lines = oc["line"].to_numpy()[rows]
    hit = np.flatnonzero(lines == line)
    if not len(hit):
        raise IndexError(f"cart {cart_id!r} has no line {line!r}")
    k = int(hit[0])
    ts = oc["ts"]
    own = ts.iloc[rows].reset_index(drop=True)
    readable = own.notna().to_numpy()
    center: pd.Timestamp | None = None
    placed = "its own ts"
    if readable[k]:
        center = own.iloc[k]
    else:
        before = np.flatnonzero(readable[:k])
        after = np.flatnonzero(readable[k + 1:])
        if len(before):
            j = int(before[-1])
            center = own.iloc[j]
            placed = f"the ts of line {int(lines[j])} (line {line} has no readable ts)"
        elif len(after):
            j = k + 1 + int(after[0])
            center = own.iloc[j]
            placed = f"the ts of line {int(lines[j])} (line {line} has no readable ts)"
    others = (oc["cart_id"] != cart_id).to_numpy()
    timed = ts.notna().to_numpy()
    if center is None:
        out = _context_frame(oc.iloc[:0], pd.Series([], dtype="timedelta64[ns]"))
        out.attrs.update(center=None, minutes=minutes, untimed=int((others & ~timed).sum()),
                         reason=f"cart {cart_id!r} has no line with a readable ts: its "
                                "lines cannot be placed in time")
        return out
    lo, hi = center - window, center + window
    inside = others & timed & (ts >= lo).to_numpy() & (ts <= hi).to_numpy()
    sel = oc[inside]
    offset = sel["ts"] - center
    out = _context_frame(sel, offset)
    out = out.assign(_cart=out["cart_id"].astype(str)).sort_values(
        ["ts", "_cart", "line"], kind="stable").drop(columns="_cart")
    out.attrs.update(center=center, minutes=minutes, untimed=int((others & ~timed).sum()),
                     reason=f"centred on {placed}")
    return out


def _context_frame(sel: pd.DataFrame, offset: pd.Series) -> pd.DataFrame:
    out = pd.DataFrame({
        "cart_id": sel["cart_id"].astype(str).to_numpy(dtype=object),
        "line": sel["line"].to_numpy(),
        "ts": sel["ts"].array,
        "offset": offset.to_numpy(),
        "type": [v if isinstance(v, str) else None for v in sel["type"].to_numpy()],
        "outcome": sel["outcome"].astype(str).to_numpy(dtype=object),
        "error": [v if isinstance(v, str) else None for v in sel["error"].to_numpy()],
    }, index=pd.Index(sel.index, name="row"))
    return out[CONTEXT_COLUMNS]
