"""Replay cart event logs line by line, exactly as the service's ``ReplayCartEvents`` does.

>>> r = replay("sample_data", mode="go")                       # doctest: +SKIP
>>> r.outcomes.groupby("outcome").size()                       # doctest: +SKIP
>>> r.final_state("cart-1001")["items"]                        # doctest: +SKIP
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from .cart import CartState, HandlerError, empty_cart, state_to_json
from .envelope import decode_envelope
from .events import Source, read_events
from .gojson import go_quote
from .gotime import ZERO_TIME_TEXT
from .lines import go_token
from .registry import Registry, default_registry

Mode = Literal["go", "lenient"]
OUTCOMES = (
    "applied", "malformed", "unknown_type", "payload_error", "apply_error", "too_long",
    "not_reached",
)
TOO_LONG_ERROR = "scanner error: bufio.Scanner: token too long"
METRIC_NAMES = (
    "cart_event_log_replay_total",
    "cart_event_log_replay_failures_total",
    "cart_event_log_mutation_errors_total",
    "cart_event_log_unknown_types_total",
)
# what the seed's comments promise (its code never increments the real counter)
PROMISED_UNKNOWN = "cart_event_log_unknown_types_total_promised"


@dataclass(frozen=True)
class _CartRun:
    """One cart's replay: the state after each line (shared, immutable) and where lines sit."""

    cart_id: str
    rows: np.ndarray  # positions in the events frame, in file order
    initial: CartState
    states: tuple[CartState, ...]  # states[i] = state after the cart's (i+1)-th line
    ts_ns: np.ndarray  # int64 ns; NaT as min int64; readable times beyond ns range clamped
    # lastChange is kept beside the states, not in them (one copy fewer per line): the row of
    # the last applied line at each point, -1 before any
    last_applied: np.ndarray


def _catalog_from(catalog: Any) -> Mapping[str, Mapping[str, Any]] | None:
    if catalog is None:
        return None
    if isinstance(catalog, pd.DataFrame):
        if "sku" not in catalog.columns:
            raise ValueError("catalog DataFrame needs a 'sku' column (and AddItem fields)")
        out: dict[str, dict[str, Any]] = {}
        for rec in catalog.to_dict("records"):
            sku = str(rec["sku"])
            out[sku] = {k: v for k, v in rec.items() if not _is_missing(v)}
        return out
    if isinstance(catalog, Mapping):
        return catalog
    raise TypeError("catalog must be a DataFrame with a 'sku' column or a mapping sku -> fields")


def _is_missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


class Replay:
    """The result of :func:`replay`: outcomes per line, states per line, metrics."""

    def __init__(self, events: pd.DataFrame, mode: Mode, registry: Registry, catalog: Any):
        self.events = events
        self.mode: Mode = mode
        self.registry = registry
        self.catalog = _catalog_from(catalog)
        self._runs: dict[str, _CartRun] = {}
        self._last_change_cache: dict[int, str] = {}
        # pandas deep-copies attrs on every column access: work on a view without them
        self._files = list(events.attrs.get("files", []))
        plain = events.copy(deep=False)
        plain.attrs = {}
        self._plain = plain
        self._raw = plain["raw"]
        self._kinds = plain["ts_kind"].to_numpy()
        # the run makes millions of small acyclic objects (states are kept): the cyclic
        # collector would scan them again and again for nothing, so it waits until the end
        collecting = gc.isenabled()
        gc.disable()
        try:
            self.outcomes = self._run()
        finally:
            if collecting:
                gc.enable()

    # -- the engine --------------------------------------------------------------------------
    def _run(self) -> pd.DataFrame:
        ev = self._plain
        n = len(ev)
        outcome = np.empty(n, dtype=object)
        error: list[str | None] = [None] * n
        err_col = ev["envelope_error" if self.mode == "go" else "lenient_error"].tolist()
        types = ev["type"].tolist()
        payloads = ev["payload"].tolist()
        too_long = ev["too_long"].to_numpy() if self.mode == "go" else np.zeros(n, dtype=bool)
        lines = ev["line"].to_numpy()
        cart_ids = ev["cart_id"].to_numpy()
        ts_ns = _ts_ns(ev["ts"])
        registry = self.registry
        catalog = self.catalog
        # carts in order of first appearance (files with no lines too); a cart's rows in the
        # order given, which read_events makes file order
        codes, uniques = pd.factorize(cart_ids) if n else (np.zeros(0, int), [])
        order = np.argsort(codes, kind="stable")
        counts = np.bincount(codes, minlength=len(uniques)) if n else np.zeros(0, int)
        bounds = np.r_[0, np.cumsum(counts)]
        index = {str(c): b for b, c in enumerate(uniques)}
        # an empty file is still a cart the service replays (replay_total +1, empty state)
        files = self._files
        carts = list(dict.fromkeys(
            [f["cart_id"] for f in files if f["cart_id"] in index or f["lines"] == 0]
            + list(index)
        ))
        for cid in carts:
            b = index.get(cid)
            rows = order[bounds[b] : bounds[b + 1]] if b is not None else order[:0]
            state = initial = empty_cart(cid)
            states: list[CartState] = []
            applied_rows: list[int] = []  # per line: the row of the last applied line, or -1
            last_applied = -1
            stop_line: int | None = None
            for r in rows.tolist():
                if stop_line is not None:
                    outcome[r] = "not_reached"
                    error[r] = f"not reached: the scanner stopped at line {stop_line}"
                elif too_long[r]:
                    outcome[r] = "too_long"
                    error[r] = TOO_LONG_ERROR
                    stop_line = int(lines[r])
                elif err_col[r] is not None and not _is_na_str(err_col[r]):
                    outcome[r] = "malformed"
                    error[r] = err_col[r]
                else:
                    t = types[r]
                    mt = registry.get(t if isinstance(t, str) else None)
                    if mt is None:
                        outcome[r] = "unknown_type"
                        error[r] = f"unknown mutation type: {go_quote(t or '')}"
                    else:
                        p = payloads[r]
                        msg, perr = mt.decode(None if not isinstance(p, str) else p.encode())
                        if perr is not None:
                            outcome[r] = "payload_error"
                            error[r] = perr
                        else:
                            try:
                                new = mt.handler(state, msg, catalog)
                            except HandlerError as e:
                                outcome[r] = "apply_error"
                                error[r] = str(e)
                            except Exception as e:  # a user's handler: report, never crash
                                outcome[r] = "apply_error"
                                error[r] = f"{type(e).__name__}: {e}"
                            else:
                                if not isinstance(new, CartState):
                                    outcome[r] = "apply_error"
                                    error[r] = (
                                        f"handler for {t} returned {type(new).__name__}, "
                                        "not a CartState"
                                    )
                                else:
                                    state = new
                                    last_applied = r
                                    outcome[r] = "applied"
                states.append(state)
                applied_rows.append(last_applied)
            self._runs[cid] = _CartRun(
                cid, rows, initial, tuple(states), self._ts_key(ts_ns[rows], rows),
                np.asarray(applied_rows, dtype=np.int64),
            )
        out = pd.DataFrame(
            {
                "cart_id": ev["cart_id"].to_numpy(),
                "line": lines,
                "ts": ev["ts"].array,
                "type": ev["type"].array,
                "outcome": pd.Categorical(outcome, categories=OUTCOMES),
                "error": pd.array(error, dtype="str") if n else pd.array([], dtype="str"),
            }
        )
        return out

    def _ts_key(self, ts: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """ts for placing lines in time: a readable time outside the ns range (years before
        1678 or after 2261) is clamped to the range's ends instead of being unreadable."""
        nat = np.iinfo(np.int64).min
        missing = np.flatnonzero(ts == nat)
        if not len(missing):
            return ts
        kinds = self._kinds
        raw = self._raw
        ts = ts.copy()
        for j in missing.tolist():
            r = int(rows[j])
            if kinds[r] not in ("string", "number"):
                continue
            data = bytes(raw.iloc[r])
            env = decode_envelope(go_token(data, 0, len(data)), lenient=True)
            if env.ts is not None:
                ts[j] = np.iinfo(np.int64).max if env.ts.unix_sec > 0 else nat + 1
        return ts

    # -- states ------------------------------------------------------------------------------
    @property
    def cart_ids(self) -> list[str]:
        """Carts in replay order."""
        return list(self._runs)

    def rows_of(self, cart_id: str) -> list[int]:
        """Row positions (in ``events`` and ``outcomes``) of a cart's lines, in line order."""
        return self._run_of(cart_id).rows.tolist()

    def _run_of(self, cart_id: str) -> _CartRun:
        try:
            return self._runs[cart_id]
        except KeyError:
            raise KeyError(f"no cart {cart_id!r} in this replay") from None

    def _last_change_text(self, row: int | None) -> str | None:
        if row is None:
            return None
        hit = self._last_change_cache.get(row)
        if hit is None:
            raw = self._raw.iloc[row]
            token = go_token(bytes(raw), 0, len(raw))
            env = decode_envelope(token, lenient=self.mode == "lenient")
            hit = env.ts.rfc3339nano() if env.ts is not None else ZERO_TIME_TEXT
            self._last_change_cache[row] = hit
        return hit

    def state_json(self, state: CartState, last_row: int | None = None) -> dict[str, Any]:
        """SPEC §5's state JSON of a state; ``last_row`` is the events row of the last applied
        line, whose ts is lastChange (None: the state's own ``last_change`` text, if any)."""
        out = state_to_json(state)
        if last_row is not None:
            out["lastChange"] = self._last_change_text(last_row if last_row >= 0 else None)
        return out

    def _json_after(self, cart_id: str, line: int) -> dict[str, Any]:
        run = self._run_of(cart_id)
        if line <= 0:
            return self.state_json(run.initial, -1)
        if line > len(run.states):
            raise IndexError(f"cart {cart_id!r} has {len(run.states)} lines, not {line}")
        return self.state_json(run.states[line - 1], int(run.last_applied[line - 1]))

    def final_state(self, cart_id: str) -> dict[str, Any]:
        """The cart as the replay left it."""
        return self._json_after(cart_id, len(self._run_of(cart_id).states))

    def line_at(self, cart_id: str, ts: Any) -> int:
        """How many lines of the cart are in the longest prefix whose ts are all ≤ ``ts``
        (a line with no readable ts goes with the line before it)."""
        run = self._run_of(cart_id)
        t = pd.Timestamp(ts)
        if t.tzinfo is None:
            t = t.tz_localize("UTC")
        limit = t.value
        tsv = run.ts_ns
        readable = tsv != np.iinfo(np.int64).min
        later = np.flatnonzero(readable & (tsv > limit))
        return int(later[0]) if len(later) else len(tsv)

    def state_at(self, cart_id: str, ts: Any = None, line: int | None = None) -> dict[str, Any]:
        """The state after ``line`` lines (exact), or at time ``ts`` (SPEC §6)."""
        if (ts is None) == (line is None):
            raise ValueError("give exactly one of ts= or line=")
        n = self.line_at(cart_id, ts) if line is None else int(line)
        return self._json_after(cart_id, n)

    def history(self, cart_id: str) -> pd.DataFrame:
        """One row per line: outcome, error and a summary of the state after it."""
        run = self._run_of(cart_id)
        oc = self.outcomes.iloc[run.rows]
        states = run.states
        return pd.DataFrame(
            {
                "line": oc["line"].to_numpy(),
                "ts": oc["ts"].array,
                "type": oc["type"].array,
                "outcome": oc["outcome"].array,
                "error": oc["error"].array,
                "items": [len(s.items) for s in states],
                "quantity": [sum(i.qty for i in s.items) for s in states],
                "deliveries": [len(s.deliveries) for s in states],
                "total_price": [s.totalPrice for s in states],
                "changed": [
                    states[i] is not (states[i - 1] if i else run.initial)
                    for i in range(len(states))
                ],
            }
        )

    def diff(self, cart_id: str, a: Any, b: Any) -> dict[str, Any]:
        """What changed between two points (line numbers as int, times otherwise)."""
        sa = self._point(cart_id, a)
        sb = self._point(cart_id, b)
        return diff_states(sa, sb)

    def _point(self, cart_id: str, p: Any) -> dict[str, Any]:
        if isinstance(p, (int, np.integer)):
            return self.state_at(cart_id, line=int(p))
        return self.state_at(cart_id, ts=p)

    # -- metrics -----------------------------------------------------------------------------
    def metrics(self, by_cart: bool = False) -> pd.DataFrame | pd.Series:
        """The seed's counters as the service would have exported them for this replay, plus
        the unknown-type count its comments promised (the code never increments it)."""
        oc = self.outcomes
        counts = pd.crosstab(oc["cart_id"], oc["outcome"]).reindex(columns=OUTCOMES, fill_value=0)
        counts = counts.reindex(self.cart_ids, fill_value=0)
        m = pd.DataFrame(index=counts.index)
        m["cart_event_log_replay_total"] = (counts["too_long"] == 0).astype("int64")
        m["cart_event_log_replay_failures_total"] = (
            counts["malformed"] + counts["unknown_type"] + counts["too_long"]
        )
        m["cart_event_log_mutation_errors_total"] = counts["payload_error"] + counts["apply_error"]
        m["cart_event_log_unknown_types_total"] = 0
        m[PROMISED_UNKNOWN] = counts["unknown_type"]
        m.index.name = "cart_id"
        if by_cart:
            return m
        return m.sum().astype("int64")

    def cart_metrics(self, cart_id: str) -> dict[str, int]:
        """The seed's four per-cart counters by their metric names (the jsonl contract)."""
        row = self.metrics(by_cart=True).loc[cart_id]
        return {name: int(row[name]) for name in METRIC_NAMES}

    def summary(self) -> pd.DataFrame:
        """One row per cart: lines per outcome, items and total of the final state."""
        oc = self.outcomes
        counts = pd.crosstab(oc["cart_id"], oc["outcome"]).reindex(columns=OUTCOMES, fill_value=0)
        counts = counts.reindex(self.cart_ids, fill_value=0)
        finals = [self._runs[c].states[-1] if self._runs[c].states else empty_cart(c)
                  for c in counts.index]
        counts.insert(0, "lines", counts.sum(axis=1))
        counts["items"] = [len(s.items) for s in finals]
        counts["total_price"] = [s.totalPrice for s in finals]
        counts.index.name = "cart_id"
        counts.columns.name = None
        return counts

    # -- the investigation (cartforensics.investigate, through the public API above) --------
    def blame(self, cart_id: str, line: int | None = None) -> pd.DataFrame:
        """One row per leaf field of the state after line ``line`` (default: the final
        state): ``path``, ``value`` and the ``line``, ``ts``, ``type`` that last changed it."""
        from .investigate import blame

        return blame(self, cart_id, line)

    def context(self, cart_id: str, line: int, minutes: float = 5) -> pd.DataFrame:
        """The other carts' lines within ``minutes`` of that line's ts, ordered by time."""
        from .investigate import context

        return context(self, cart_id, line, minutes)


def _ts_ns(ts: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch, NaT as the minimum int64."""
    return np.asarray(ts.dt.as_unit("ns").array.asi8, dtype=np.int64)


def _is_na_str(v: Any) -> bool:
    return not isinstance(v, str)


def diff_states(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Items and deliveries added, removed and changed (by id), and changed cart fields."""
    out: dict[str, Any] = {}
    for key in ("items", "deliveries"):
        old = {x["id"]: x for x in a[key]}
        new = {x["id"]: x for x in b[key]}
        changed = {}
        for i in old.keys() & new.keys():
            fields = {f: (old[i][f], new[i][f]) for f in new[i] if old[i].get(f) != new[i][f]}
            if fields:
                changed[i] = fields
        out[key] = {
            "added": [new[i] for i in new if i not in old],
            "removed": [old[i] for i in old if i not in new],
            "changed": dict(sorted(changed.items())),
        }
    out["fields"] = {
        k: (a[k], b[k]) for k in b if k not in ("items", "deliveries") and a.get(k) != b[k]
    }
    return out


def replay(
    source: Source | pd.DataFrame,
    mode: Mode = "go",
    catalog: Any = None,
    registry: Registry | None = None,
) -> Replay:
    """Replay logs (anything :func:`read_events` takes, or its DataFrame) in ``"go"`` mode (the
    seed's reader, bugs and all) or ``"lenient"`` mode (numeric ts and long lines accepted).

    >>> r = replay("sample_data")                  # doctest: +SKIP
    >>> r.metrics()                                # doctest: +SKIP
    """
    if mode not in ("go", "lenient"):
        raise ValueError(f"mode must be 'go' or 'lenient', not {mode!r}")
    events = source if isinstance(source, pd.DataFrame) else read_events(source)
    missing = {"cart_id", "line", "ts", "type", "payload", "envelope_error", "lenient_error",
               "too_long", "raw"} - set(events.columns)
    if missing:
        raise ValueError(f"not a read_events DataFrame: missing columns {sorted(missing)}")
    events = events.reset_index(drop=True)
    return Replay(events, mode, registry or default_registry(), catalog)


def compare(go: Replay, lenient: Replay) -> pd.DataFrame:
    """Per cart: the lines the service dropped (applied only in lenient mode) and how the
    rebuilt cart differs from what the writer meant."""
    a = go.outcomes
    b = lenient.outcomes
    dropped = (b["outcome"] == "applied") & (a["outcome"] != "applied")
    rows = []
    for cid in lenient.cart_ids:
        ga = go.final_state(cid) if cid in go._runs else None
        le = lenient.final_state(cid)
        mask = (b["cart_id"] == cid).to_numpy()
        rows.append(
            {
                "cart_id": cid,
                "lines": int(mask.sum()),
                "applied_go": int(((a["outcome"] == "applied").to_numpy() & mask).sum()),
                "applied_lenient": int(((b["outcome"] == "applied").to_numpy() & mask).sum()),
                "dropped": int((dropped.to_numpy() & mask).sum()),
                "items_go": len(ga["items"]) if ga else 0,
                "items_lenient": len(le["items"]),
                "total_go": ga["totalPrice"] if ga else 0,
                "total_lenient": le["totalPrice"],
                "total_lost": le["totalPrice"] - (ga["totalPrice"] if ga else 0),
            }
        )
    return pd.DataFrame(rows)


def _check_pair(a: Replay, b: Replay) -> None:
    same = len(a.outcomes) == len(b.outcomes) and (
        a.outcomes["cart_id"].to_numpy() == b.outcomes["cart_id"].to_numpy()
    ).all() and (a.outcomes["line"].to_numpy() == b.outcomes["line"].to_numpy()).all()
    if not same:
        raise ValueError("the two replays are not of the same events: replay one DataFrame "
                         "from read_events in both modes")


def dropped_lines(go: Replay, lenient: Replay) -> pd.DataFrame:
    """The lines lenient mode applies and go mode does not, with go's outcome and error."""
    _check_pair(go, lenient)
    a = go.outcomes
    b = lenient.outcomes
    mask = (b["outcome"] == "applied") & (a["outcome"] != "applied")
    out = a.loc[mask, ["cart_id", "line", "ts", "type", "outcome", "error"]].copy()
    return out.reset_index(drop=True)
