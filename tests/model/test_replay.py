"""``replay`` and ``Replay``: outcomes, metrics, states at a line or a time, history, diff,
compare, user handlers. Expectations are computed here from crafted logs (the Go differential
tests in test_replay_go.py check the outcomes and states against Go itself).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartforensics import compare, default_registry, diff_states, dropped_lines, read_events, replay
from cartforensics.model.cart import CartState, HandlerError
from cartforensics.model.replay import replay_modes

OUTCOMES = {"applied", "malformed", "unknown_type", "payload_error", "apply_error", "too_long",
            "not_reached"}
NOT_A_STRING = "Time.UnmarshalJSON: input is not a JSON string"
TOO_LONG = "scanner error: bufio.Scanner: token too long"
MAX_TOKEN = 262_144
EPOCH = pd.Timestamp("2024-03-01T00:00:00Z")


def iso(sec: int) -> str:
    return (EPOCH + pd.Timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rec(ts: object, type_: str, payload: object = None, *, omit_payload: bool = False) -> bytes:
    obj: dict[str, Any] = {"ts": ts, "type": type_}
    if not omit_payload:
        obj["payload"] = payload if payload is not None else {}
    return json.dumps(obj, separators=(",", ":")).encode()


def write_log(d: Path, cart: str, lines: list[bytes], final_newline: bool = True) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{cart}.events.log"
    p.write_bytes(b"\n".join(lines) + (b"\n" if final_newline and lines else b""))
    return p


def add(ts: object, sku: str, qty: int = 1, price: int = 0, **extra: Any) -> bytes:
    return rec(ts, "AddItem", {"sku": sku, "quantity": qty, "price": price, **extra})


def skus(state: dict) -> list[tuple[str, int]]:
    return [(i["sku"], i["qty"]) for i in state["items"]]


# -------------------------------------------------- lines whose outcome is known by construction


def _line_kinds() -> dict[str, Any]:
    """kind → (line maker(sec, n) -> bytes, go outcome, lenient outcome, error text or None)."""
    return {
        # an AddItem with a positive quantity always applies
        "add_str": (lambda s, n: add(iso(s), f"k{n % 3}", 1 + n % 4, 100 * (1 + n % 5)),
                    "applied", "applied"),
        "add_num": (lambda s, n: add(1709251200 + s, f"k{n % 3}", 1 + n % 4, 100 * (1 + n % 5)),
                    "malformed", "applied"),
        "order_str": (
            lambda s, n: rec(iso(s), "OrderCreated", {"orderId": f"o{n}", "status": "ok"}),
            "applied", "applied"),
        "garbage": (lambda s, n: b"{not json " + str(n).encode(), "malformed", "malformed"),
        "bad_ts": (lambda s, n: add("yesterday", "k0"), "malformed", "malformed"),
        "unknown": (lambda s, n: rec(iso(s), "AddVoucher", {"code": "X"}),
                    "unknown_type", "unknown_type"),
        "unknown_num": (lambda s, n: rec(1709251200 + s, "addItem", {"sku": "a"}),
                        "malformed", "unknown_type"),
        "bad_payload": (lambda s, n: rec(iso(s), "AddItem", {"sku": "k0", "quantity": "2"}),
                        "payload_error", "payload_error"),
        "no_payload": (lambda s, n: rec(iso(s), "RemoveItem", omit_payload=True),
                       "payload_error", "payload_error"),
        "remove_missing": (lambda s, n: rec(iso(s), "RemoveItem", {"Id": 4000 + n}),
                           "apply_error", "apply_error"),
        "zero_qty": (lambda s, n: add(iso(s), "k1", 0), "apply_error", "apply_error"),
    }


KINDS = _line_kinds()


def expected_from(kinds: list[str], mode: str) -> list[str]:
    return [KINDS[k][1 if mode == "go" else 2] for k in kinds]


def expected_items(kinds: list[str], mode: str) -> list[tuple[str, int, int]]:
    """(sku, qty, price) of the applied AddItems, merged by sku (storeId always null)."""
    items: dict[str, list[int]] = {}
    for n, k in enumerate(kinds):
        if k in ("add_str", "add_num") and expected_from([k], mode)[0] == "applied":
            sku, qty, price = f"k{n % 3}", 1 + n % 4, 100 * (1 + n % 5)
            if sku in items:
                items[sku][0] += qty
            else:
                items[sku] = [qty, price]
    return [(s, q, p) for s, (q, p) in items.items()]


def build(kinds: list[str]) -> list[bytes]:
    return [KINDS[k][0](10 * n, n) for n, k in enumerate(kinds)]


carts_strategy = st.dictionaries(
    st.sampled_from(["c1", "c2", "c3", "z9"]),
    st.lists(st.sampled_from(sorted(KINDS)), max_size=10),
    min_size=1, max_size=3,
)


@settings(max_examples=30, deadline=None)
@given(carts=carts_strategy, mode=st.sampled_from(["go", "lenient"]))
def test_outcomes_and_metrics_match_independent_counts(carts: dict[str, list[str]],
                                                       mode: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for cid, kinds in carts.items():
            write_log(Path(tmp), cid, build(kinds))
        r = replay(tmp, mode=mode)
    nonempty = {c: k for c, k in carts.items() if k}
    total_lines = sum(len(k) for k in nonempty.values())
    oc = r.outcomes
    assert len(oc) == len(r.events) == total_lines
    assert set(oc["outcome"].astype(str)) <= OUTCOMES
    counts: Counter[str] = Counter()
    for cid, kinds in nonempty.items():
        got = oc[oc["cart_id"] == cid]
        exp = expected_from(kinds, mode)
        assert got["outcome"].astype(str).tolist() == exp, cid
        assert got["line"].tolist() == list(range(1, len(kinds) + 1))
        counts.update(exp)
        # the state: applied AddItems merged by sku, in first-seen order
        state = r.final_state(cid)
        items = expected_items(kinds, mode)
        assert [(i["sku"], i["qty"], i["price"]) for i in state["items"]] == items
        assert state["totalPrice"] == sum(q * p for _, q, p in items)
        assert [i["id"] for i in state["items"]] == list(range(1, len(items) + 1))
        orders = [n for n, k in enumerate(kinds) if k == "order_str"]
        assert state["orderReference"] == (f"o{orders[-1]}" if orders else "")
        applied = [n for n, o in enumerate(exp) if o == "applied"]
        if applied:
            # lastChange is the ts of the last applied line, in UTC
            assert pd.Timestamp(state["lastChange"]) == EPOCH + pd.Timedelta(
                seconds=10 * applied[-1])
        else:
            assert state["lastChange"] is None
    m = r.metrics()
    assert m["cart_event_log_replay_failures_total"] == (
        counts["malformed"] + counts["unknown_type"] + counts["too_long"])
    assert m["cart_event_log_mutation_errors_total"] == (
        counts["payload_error"] + counts["apply_error"])
    # an empty file is replayed too (Go: no lines, no scanner error, replay_total +1)
    assert m["cart_event_log_replay_total"] == len(carts)
    assert m["cart_event_log_unknown_types_total"] == 0
    assert m["cartforensics_promised_unknown_types_total"] == counts["unknown_type"]
    by_cart = r.metrics(by_cart=True)
    assert sorted(by_cart.index) == sorted(carts)  # empty files are carts too
    for cid, kinds in nonempty.items():
        c = Counter(expected_from(kinds, mode))
        assert by_cart.loc[cid, "cart_event_log_mutation_errors_total"] == (
            c["payload_error"] + c["apply_error"])
    # summary: lines per outcome per cart
    s = r.summary()
    for cid, kinds in nonempty.items():
        c = Counter(expected_from(kinds, mode))
        assert s.loc[cid, "lines"] == len(kinds)
        for o in OUTCOMES:
            assert s.loc[cid, o] == c[o], (cid, o)
        assert s.loc[cid, "items"] == len(expected_items(kinds, mode))


def test_error_texts_for_each_outcome(tmp_path: Path) -> None:
    kinds = ["add_str", "add_num", "garbage", "unknown", "bad_payload", "no_payload",
             "remove_missing", "zero_qty"]
    write_log(tmp_path, "e", build(kinds))
    oc = replay(tmp_path).outcomes
    errors = oc["error"].tolist()
    assert pd.isna(errors[0])
    assert errors[1] == NOT_A_STRING
    assert errors[2].startswith("invalid character")
    assert errors[3] == 'unknown mutation type: "AddVoucher"'
    assert errors[4] == ("json: cannot unmarshal string into Go struct field AddItem.quantity "
                         "of type int32")
    assert errors[5] == "unexpected end of JSON input"
    assert errors[6] == "item not found"
    assert errors[7] == "invalid quantity"


def test_outcome_vocabulary_is_exactly_the_specs(tmp_path: Path) -> None:
    oc = replay(write_log(tmp_path, "v", build(["add_str"]))).outcomes
    assert set(oc["outcome"].cat.categories) == OUTCOMES


def test_writer_format_go_drops_everything_lenient_applies(tmp_path: Path) -> None:
    lines = [
        b'{"ts":1700000000,"type":"AddItem","payload":{"sku":"a","quantity":2,"price":1000}}',
        b'{"ts":1700000060,"type":"AddItem","payload":{"sku":"b","quantity":1,"price":250}}',
        b'{"ts":1700000120,"type":"ChangeQuantity","payload":{"Id":1,"quantity":3}}',
        b'{"ts":1700000180,"type":"OrderCreated","payload":{"orderId":"O-1","status":"done"}}',
    ]
    write_log(tmp_path, "w", lines)
    go = replay(tmp_path, mode="go")
    le = replay(tmp_path, mode="lenient")
    assert go.outcomes["outcome"].astype(str).tolist() == ["malformed"] * 4
    assert go.outcomes["error"].tolist() == [NOT_A_STRING] * 4
    assert le.outcomes["outcome"].astype(str).tolist() == ["applied"] * 4
    g, s = go.final_state("w"), le.final_state("w")
    assert g["items"] == [] and g["lastChange"] is None and g["totalPrice"] == 0
    assert skus(s) == [("a", 3), ("b", 1)]
    assert s["totalPrice"] == 3 * 1000 + 250
    assert s["orderReference"] == "O-1"
    assert pd.Timestamp(s["lastChange"]) == pd.Timestamp(1700000180, unit="s", tz="UTC")
    assert go.metrics()["cart_event_log_replay_failures_total"] == 4
    assert go.metrics()["cart_event_log_replay_total"] == 1  # the replay "succeeded"
    assert le.metrics()["cart_event_log_replay_failures_total"] == 0


# ------------------------------------------------------------------------- too long lines


def test_too_long_stops_only_its_own_cart(tmp_path: Path) -> None:
    long_line = add(iso(1), "LONG", 1, 7, name="x" * MAX_TOKEN)
    assert len(long_line) > MAX_TOKEN
    write_log(tmp_path, "a", [add(iso(0), "a1"), long_line, add(iso(2), "a2"), b"junk",
                              add(iso(3), "a3")])
    write_log(tmp_path, "b", [add(iso(0), "b1"), add(iso(1), "b2")])
    write_log(tmp_path, "c", [long_line])
    go = replay(tmp_path, mode="go")
    oc = go.outcomes
    a = oc[oc["cart_id"] == "a"]
    assert a["outcome"].astype(str).tolist() == [
        "applied", "too_long", "not_reached", "not_reached", "not_reached"]
    assert a["error"].tolist()[1] == TOO_LONG
    assert a["error"].tolist()[2:] == ["not reached: the scanner stopped at line 2"] * 3
    assert oc[oc["cart_id"] == "b"]["outcome"].astype(str).tolist() == ["applied", "applied"]
    assert oc[oc["cart_id"] == "c"]["outcome"].astype(str).tolist() == ["too_long"]
    assert skus(go.final_state("a")) == [("a1", 1)]
    assert skus(go.final_state("b")) == [("b1", 1), ("b2", 1)]
    m = go.metrics(by_cart=True)
    assert m["cart_event_log_replay_total"].to_dict() == {"a": 0, "b": 1, "c": 0}
    assert m["cart_event_log_replay_failures_total"].to_dict() == {"a": 1, "b": 0, "c": 1}
    assert go.metrics()["cart_event_log_replay_total"] == 1

    le = replay(tmp_path, mode="lenient")
    la = le.outcomes[le.outcomes["cart_id"] == "a"]
    assert la["outcome"].astype(str).tolist() == [
        "applied", "applied", "applied", "malformed", "applied"]
    assert [s for s, _ in skus(le.final_state("a"))] == ["a1", "LONG", "a2", "a3"]
    assert le.final_state("a")["items"][1]["name"] == "x" * MAX_TOKEN
    assert le.metrics()["cart_event_log_replay_total"] == 3


# ------------------------------------------------------- states: at a line, at a time, history

SESSION_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(["a", "b", "c"]), st.integers(-1, 3),
                  st.sampled_from([None, "s1"]), st.integers(0, 5000)),
        st.tuples(st.just("change"), st.integers(0, 4), st.integers(-1, 4)),
        st.tuples(st.just("remove"), st.integers(0, 4)),
        st.tuples(st.just("deliver"), st.lists(st.integers(0, 4), max_size=2)),
        st.tuples(st.just("undeliver"), st.integers(0, 2)),
        st.tuples(st.just("pickup"), st.integers(0, 2), st.sampled_from(["p1", "p2"])),
        st.tuples(st.just("checkout"), st.sampled_from(["o1", "o2"]), st.booleans()),
        st.tuples(st.just("order"), st.sampled_from(["o1", "o2"])),
        st.tuples(st.just("setcart"), st.lists(st.sampled_from(["a", "d"]), max_size=2)),
        st.tuples(st.just("junk"), st.sampled_from([b"", b"{", b"null", b"[1]"])),
    ),
    max_size=14,
)


def session_lines(ops: list[tuple], ts_list: list[object] | None = None) -> list[bytes]:
    out = []
    for n, op in enumerate(ops):
        ts: object = iso(n) if ts_list is None else ts_list[n]
        kind = op[0]
        if kind == "add":
            p: dict[str, Any] = {"sku": op[1], "quantity": op[2], "price": op[4],
                                 "orgPrice": op[4] + 100, "tax": 1200}
            if op[3] is not None:
                p["storeId"] = op[3]
            out.append(rec(ts, "AddItem", p))
        elif kind == "change":
            out.append(rec(ts, "ChangeQuantity", {"Id": op[1], "quantity": op[2]}))
        elif kind == "remove":
            out.append(rec(ts, "RemoveItem", {"Id": op[1]}))
        elif kind == "deliver":
            out.append(rec(ts, "SetDelivery", {"provider": "pn", "items": op[1]}))
        elif kind == "undeliver":
            out.append(rec(ts, "RemoveDelivery", {"id": op[1]}))
        elif kind == "pickup":
            out.append(rec(ts, "SetPickupPoint", {"deliveryId": op[1], "id": op[2]}))
        elif kind == "checkout":
            out.append(rec(ts, "InitializeCheckout",
                           {"orderId": op[1], "status": "pending", "paymentInProgress": op[2]}))
        elif kind == "order":
            out.append(rec(ts, "OrderCreated", {"orderId": op[1], "status": "done"}))
        elif kind == "setcart":
            out.append(rec(ts, "SetCartRequest",
                           {"items": [{"sku": s, "quantity": 1} for s in op[1]]}))
        else:
            out.append(op[1])
    return out


@settings(max_examples=25, deadline=None)
@given(ops=SESSION_OPS, final_newline=st.booleans(), mode=st.sampled_from(["go", "lenient"]))
def test_state_at_line_equals_a_fresh_replay_of_the_prefix(ops: list[tuple],
                                                           final_newline: bool,
                                                           mode: str) -> None:
    lines = session_lines(ops)
    if lines and lines[-1] == b"":
        final_newline = True  # else the empty last line is no physical line at all
    with tempfile.TemporaryDirectory() as tmp:
        full_dir = Path(tmp) / "full"
        write_log(full_dir, "s", lines, final_newline)
        if not lines:
            return
        r = replay(full_dir, mode=mode)
        before = [r.state_at("s", line=n) for n in range(len(lines) + 1)]
        assert before[0]["items"] == [] and before[0]["lastChange"] is None
        for n in range(1, len(lines) + 1):
            pdir = Path(tmp) / f"p{n}"
            write_log(pdir, "s", lines[:n], final_newline=True)
            fresh = replay(pdir, mode=mode)
            assert r.state_at("s", line=n) == fresh.final_state("s"), n
            # earlier states are values: the later lines did not touch them
            assert before[n] == fresh.final_state("s"), n
            o1 = r.outcomes["outcome"].astype(str).tolist()[:n]
            assert fresh.outcomes["outcome"].astype(str).tolist() == o1
        assert r.state_at("s", line=len(lines)) == r.final_state("s")


def test_returned_states_are_fresh_structures(tmp_path: Path) -> None:
    write_log(tmp_path, "f", [add(iso(0), "a", 2, 10), add(iso(1), "b", 1, 5)])
    r = replay(tmp_path)
    s = r.state_at("f", line=1)
    s["items"][0]["qty"] = 999
    s["items"].append({"bogus": True})
    s["totalPrice"] = -1
    again = r.state_at("f", line=1)
    assert skus(again) == [("a", 2)] and again["totalPrice"] == 20
    fin = r.final_state("f")
    fin["items"].clear()
    assert skus(r.final_state("f")) == [("a", 2), ("b", 1)]


def test_state_at_line_bounds(tmp_path: Path) -> None:
    write_log(tmp_path, "b", [add(iso(0), "a"), add(iso(1), "b")])
    r = replay(tmp_path)
    assert r.state_at("b", line=0)["items"] == []
    with pytest.raises(IndexError):
        r.state_at("b", line=3)
    with pytest.raises(ValueError):
        r.state_at("b")
    with pytest.raises(ValueError):
        r.state_at("b", ts=iso(0), line=1)
    with pytest.raises(KeyError, match="nope"):
        r.state_at("nope", line=1)


def expected_prefix(ts_values: list[pd.Timestamp | None], t: pd.Timestamp) -> int:
    """SPEC §6, my reading: stop before the first line with a readable ts > T; a line without a
    readable ts goes with the line before it (never stops the prefix)."""
    n = 0
    for ts in ts_values:
        if ts is not None and ts > t:
            break
        n += 1
    return n


TS_CHOICE = st.one_of(
    st.tuples(st.just("str"), st.integers(0, 60)),
    st.tuples(st.just("num"), st.integers(0, 60)),
    st.tuples(st.just("frac"), st.integers(0, 600)),
    st.tuples(st.just("null"), st.just(0)),
    st.tuples(st.just("missing"), st.just(0)),
    st.tuples(st.just("junk"), st.just(0)),
)


def _ts_line(choice: tuple[str, int], n: int) -> tuple[bytes, pd.Timestamp | None]:
    kind, v = choice
    payload = {"sku": f"s{n}", "quantity": 1}
    if kind == "str":
        return rec(iso(v), "AddItem", payload), EPOCH + pd.Timedelta(seconds=v)
    if kind == "num":
        return rec(int(EPOCH.timestamp()) + v, "AddItem", payload), EPOCH + pd.Timedelta(
            seconds=v)
    if kind == "frac":
        text = f"{int(EPOCH.timestamp()) + v // 10}.{v % 10}"
        line = b'{"ts":' + text.encode() + b',"type":"AddItem","payload":{"sku":"s%d",' % n \
            + b'"quantity":1}}'
        return line, EPOCH + pd.Timedelta(milliseconds=100 * v)
    if kind == "null":
        return rec(None, "AddItem", payload), None
    if kind == "missing":
        return json.dumps({"type": "AddItem", "payload": payload}).encode(), None
    return b"junk %d" % n, None


@settings(max_examples=40, deadline=None)
@given(choices=st.lists(TS_CHOICE, min_size=1, max_size=10), t=st.integers(-5, 65),
       tz_naive=st.booleans())
def test_state_at_time_is_the_longest_prefix_with_ts_not_after_t(
    choices: list[tuple[str, int]], t: int, tz_naive: bool
) -> None:
    pairs = [_ts_line(c, n) for n, c in enumerate(choices)]
    lines = [p for p, _ in pairs]
    tvals = [ts for _, ts in pairs]
    when = EPOCH + pd.Timedelta(seconds=t)
    with tempfile.TemporaryDirectory() as tmp:
        write_log(Path(tmp), "t", lines)
        r = replay(tmp, mode="lenient")
    k = expected_prefix(tvals, when)
    query: Any = when.tz_localize(None) if tz_naive else when  # naive means UTC
    assert r.line_at("t", query) == k
    assert r.state_at("t", ts=query) == r.state_at("t", line=k)
    assert r.state_at("t", ts=when.isoformat()) == r.state_at("t", line=k)


def test_state_at_time_does_not_reorder_backward_timestamps(tmp_path: Path) -> None:
    write_log(tmp_path, "bk", [
        add(iso(10), "a"), add(iso(30), "b"), add(iso(20), "c"), b"garbage",
        add(None, "d"), add(iso(40), "e"),
    ])
    r = replay(tmp_path)
    cases = {5: [], 10: ["a"], 25: ["a"], 29: ["a"], 30: ["a", "b", "c", "d"],
             39: ["a", "b", "c", "d"], 40: ["a", "b", "c", "d", "e"]}
    for sec, expect in cases.items():
        st_ = r.state_at("bk", ts=EPOCH + pd.Timedelta(seconds=sec))
        assert [s for s, _ in skus(st_)] == expect, sec
    # an offset in the query is honoured
    assert r.line_at("bk", "2024-03-01T02:00:25+02:00") == 1
    assert r.line_at("bk", "2024-03-01T00:00:30Z") == 5


def test_state_at_time_in_go_mode_uses_the_readable_string_ts(tmp_path: Path) -> None:
    write_log(tmp_path, "g", [add(iso(0), "a"), add(iso(20), "b"), add(iso(40), "c")])
    r = replay(tmp_path, mode="go")
    assert [s for s, _ in skus(r.state_at("g", ts=EPOCH + pd.Timedelta(seconds=25)))] == [
        "a", "b"]


def test_state_at_time_far_future_ts_stops_the_prefix(tmp_path: Path) -> None:
    write_log(tmp_path, "ff", [add(iso(0), "a"), add("2300-01-01T00:00:00Z", "b"),
                               add(iso(5), "c")])
    r = replay(tmp_path)
    assert r.outcomes["outcome"].astype(str).tolist() == ["applied"] * 3
    assert r.line_at("ff", EPOCH + pd.Timedelta(seconds=10)) == 1
    assert r.final_state("ff")["lastChange"] == "2024-03-01T00:00:05Z"


def _history_case(tmp_path: Path) -> Any:
    lines = [
        add(iso(0), "a", 2, 1000),              # 1 applied: item 1
        b"garbage",                             # 2 malformed
        add(iso(2), "b", 1, 500),               # 3 applied: item 2
        rec(iso(3), "ChangeQuantity", {"Id": 1, "quantity": 5}),    # 4 applied
        rec(iso(4), "SetDelivery", {"provider": "pn", "items": []}),  # 5 applied: delivery 1
        rec(iso(5), "RemoveItem", {"Id": 2}),   # 6 applied
        rec(iso(6), "RemoveItem", {"Id": 2}),   # 7 apply_error
        add(iso(7), "c", 1, 300, storeId="s9"),  # 8 applied: item 3
        rec(iso(8), "OrderCreated", {"orderId": "O-9", "status": "done"}),  # 9 applied
    ]
    write_log(tmp_path, "h", lines)
    return replay(tmp_path)


def test_history_one_row_per_line_and_summaries_match_states(tmp_path: Path) -> None:
    r = _history_case(tmp_path)
    h = r.history("h")
    assert len(h) == 9
    assert h["line"].tolist() == list(range(1, 10))
    assert h["outcome"].astype(str).tolist() == [
        "applied", "malformed", "applied", "applied", "applied", "applied", "apply_error",
        "applied", "applied"]
    assert h["items"].tolist() == [1, 1, 2, 2, 2, 1, 1, 2, 2]
    assert h["quantity"].tolist() == [2, 2, 3, 6, 6, 5, 5, 6, 6]
    assert h["deliveries"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert h["total_price"].tolist() == [2000, 2000, 2500, 5500, 10400, 9900, 9900, 10200,
                                         10200]
    for n in range(1, 10):
        s = r.state_at("h", line=n)
        row = h.iloc[n - 1]
        assert row["items"] == len(s["items"])
        assert row["quantity"] == sum(i["qty"] for i in s["items"])
        assert row["deliveries"] == len(s["deliveries"])
        assert row["total_price"] == s["totalPrice"]
    assert h.iloc[-1]["total_price"] == r.final_state("h")["totalPrice"]
    assert h["error"].tolist()[6] == "item not found"


def test_history_changed_is_true_exactly_for_applied_lines(tmp_path: Path) -> None:
    write_log(tmp_path, "hc", [b"garbage", add(iso(1), "a"), add(iso(2), "a", 0)])
    h = replay(tmp_path).history("hc")
    assert h["changed"].tolist() == [False, True, False]


def test_history_changed_after_the_first_line(tmp_path: Path) -> None:
    h = _history_case(tmp_path).history("h")
    assert h["changed"].tolist()[1:] == [False, True, True, True, True, False, True, True]


def test_diff_items_deliveries_and_fields(tmp_path: Path) -> None:
    r = _history_case(tmp_path)
    d = r.diff("h", 3, 9)
    items = d["items"]
    assert [i["sku"] for i in items["added"]] == ["c"]
    assert items["added"][0]["id"] == 3 and items["added"][0]["storeId"] == "s9"
    assert [i["sku"] for i in items["removed"]] == ["b"]
    assert items["removed"][0]["id"] == 2
    assert set(items["changed"]) == {1}
    ch = items["changed"][1]
    assert ch["qty"] == (2, 5)
    assert ch["totalPrice"] == (2000, 5000)
    # add() sends no tax, so the rate is 2500 bp: tax = price*qty*2500/12500
    assert ch["tax"] == (400, 1000)
    assert set(ch) == {"qty", "totalPrice", "tax"}
    dl = d["deliveries"]
    assert len(dl["added"]) == 1 and dl["added"][0]["items"] == [1]
    assert dl["removed"] == [] and dl["changed"] == {}
    f = d["fields"]
    assert f["totalPrice"] == (2500, 1000 * 5 + 300 + 4900)
    assert f["orderReference"] == ("", "O-9")
    assert f["paymentStatus"] == ("", "done")
    assert f["lastChange"] == (iso(2), iso(8))
    assert "id" not in f and "processing" not in f and "paymentInProgress" not in f
    # the same two points by time; and the reverse diff swaps added and removed
    by_time = r.diff("h", EPOCH + pd.Timedelta(seconds=2), EPOCH + pd.Timedelta(seconds=8))
    assert by_time == d
    back = r.diff("h", 9, 3)
    assert back["items"]["added"] == items["removed"]
    assert back["items"]["removed"] == items["added"]
    assert back["items"]["changed"][1]["qty"] == (5, 2)
    # no difference with itself
    same = r.diff("h", 5, 5)
    assert same["fields"] == {} and all(
        same[k] == {"added": [], "removed": [], "changed": {}} for k in ("items", "deliveries"))
    assert diff_states(r.state_at("h", line=3), r.state_at("h", line=9)) == d


def test_diff_of_a_pickup_point_change(tmp_path: Path) -> None:
    write_log(tmp_path, "pp", [
        add(iso(0), "a"),
        rec(iso(1), "SetDelivery", {"provider": "pn", "items": [1]}),
        rec(iso(2), "SetPickupPoint", {"deliveryId": 1, "id": "P7", "city": "Lund"}),
    ])
    d = replay(tmp_path).diff("pp", 2, 3)
    assert d["items"] == {"added": [], "removed": [], "changed": {}}
    (pick,) = d["deliveries"]["changed"].values()
    old, new = pick["pickupPoint"]
    assert old is None and new["id"] == "P7" and new["city"] == "Lund"
    assert set(d["fields"]) == {"lastChange"}


# --------------------------------------------------------------------- compare / dropped_lines


def test_compare_and_dropped_lines_on_a_mixed_log(tmp_path: Path) -> None:
    write_log(tmp_path, "x", [
        add(1709251200, "a", 1, 100),          # numeric: dropped by go
        add(iso(1), "b", 1, 200),              # string
        add(1709251202, "c", 2, 300),          # numeric: dropped by go
        b"garbage",                            # lost in both modes
        rec(iso(4), "RemoveItem", {"Id": 3}),  # go: item 3 does not exist; lenient: removes c
    ])
    write_log(tmp_path, "y", [add(iso(0), "s", 1, 50)])
    events = read_events(tmp_path)
    go = replay(events, mode="go")
    le = replay(events, mode="lenient")
    c = compare(go, le).set_index("cart_id")
    x = c.loc["x"]
    assert x["lines"] == 5
    assert x["applied_go"] == 1
    assert x["applied_lenient"] == 4
    assert x["dropped"] == 3
    assert x["items_go"] == 1 and x["items_lenient"] == 2
    assert x["total_go"] == 200 and x["total_lenient"] == 300
    assert x["total_lost"] == 100
    y = c.loc["y"]
    assert (y["dropped"], y["total_lost"], y["applied_go"], y["applied_lenient"]) == (0, 0, 1, 1)

    dl = dropped_lines(go, le)
    assert dl["cart_id"].tolist() == ["x", "x", "x"]
    assert dl["line"].tolist() == [1, 3, 5]
    assert dl["outcome"].astype(str).tolist() == ["malformed", "malformed", "apply_error"]
    assert dl["error"].tolist() == [NOT_A_STRING, NOT_A_STRING, "item not found"]
    assert dl["type"].tolist()[2] == "RemoveItem"


# ------------------------------------------------------------------------- user handlers


def test_user_handler_raising_is_an_apply_error_and_replay_continues(tmp_path: Path) -> None:
    def boom(state: CartState, msg: dict, catalog: Any = None) -> CartState:
        if msg["orderId"] == "bad":
            raise ValueError("no such order")
        return dataclasses.replace(state, orderReference=msg["orderId"].upper())

    reg = default_registry().register("OrderCreated", handler=boom)
    write_log(tmp_path, "u", [
        rec(iso(0), "OrderCreated", {"orderId": "bad", "status": "x"}),
        add(iso(1), "a"),
        rec(iso(2), "OrderCreated", {"orderId": "good", "status": "x"}),
    ])
    r = replay(tmp_path, registry=reg)
    assert r.outcomes["outcome"].astype(str).tolist() == ["apply_error", "applied", "applied"]
    assert r.outcomes["error"].iloc[0] == "ValueError: no such order"
    s = r.final_state("u")
    assert s["orderReference"] == "GOOD" and skus(s) == [("a", 1)]
    assert r.metrics()["cart_event_log_mutation_errors_total"] == 1
    # the default registry is untouched
    assert replay(tmp_path).final_state("u")["orderReference"] == "good"


def test_user_handler_error_text_of_a_handler_error_is_kept_verbatim(tmp_path: Path) -> None:
    def refuse(state: CartState, msg: dict, catalog: Any = None) -> CartState:
        raise HandlerError("checkout closed")

    reg = default_registry().register("InitializeCheckout", handler=refuse)
    write_log(tmp_path, "v", [rec(iso(0), "InitializeCheckout", {"orderId": "o"})])
    r = replay(tmp_path, registry=reg)
    assert r.outcomes["error"].tolist() == ["checkout closed"]


@pytest.mark.parametrize("returned", [None, {"id": "r"}, "state", 0])
def test_handler_returning_a_non_state_is_an_apply_error(tmp_path: Path, returned: Any) -> None:
    reg = default_registry().register(
        "OrderCreated", handler=lambda state, msg, catalog=None: returned)
    write_log(tmp_path, "r", [add(iso(0), "a"),
                              rec(iso(1), "OrderCreated", {"orderId": "o"}),
                              add(iso(2), "b")])
    r = replay(tmp_path, registry=reg)
    assert r.outcomes["outcome"].astype(str).tolist() == ["applied", "apply_error", "applied"]
    assert isinstance(r.outcomes["error"].iloc[1], str)
    s = r.final_state("r")
    assert skus(s) == [("a", 1), ("b", 1)] and s["orderReference"] == ""


# ------------------------------------------------------------------------ inputs and modes


def test_replay_accepts_the_events_dataframe(tmp_path: Path) -> None:
    write_log(tmp_path, "p", build(["add_str", "garbage", "add_num", "unknown"]))
    write_log(tmp_path, "q", build(["order_str", "add_str"]))
    ev = read_events(tmp_path)
    for mode in ("go", "lenient"):
        a = replay(tmp_path, mode=mode)
        b = replay(ev, mode=mode)
        pd.testing.assert_frame_equal(a.outcomes, b.outcomes)
        assert a.cart_ids == b.cart_ids == ["p", "q"]
        for cid in a.cart_ids:
            assert a.final_state(cid) == b.final_state(cid)


def test_replay_of_a_filtered_frame_equals_replay_of_that_file(tmp_path: Path) -> None:
    write_log(tmp_path, "p", build(["add_str", "garbage", "add_str"]))
    write_log(tmp_path, "q", build(["order_str", "add_str", "remove_missing"]))
    ev = read_events(tmp_path)
    sub = replay(ev[ev["cart_id"] == "q"])  # index starts at 3, not 0
    alone = replay(tmp_path / "q.events.log")
    assert sub.cart_ids == ["q"]
    assert sub.final_state("q") == alone.final_state("q")
    assert sub.outcomes["outcome"].tolist() == alone.outcomes["outcome"].tolist()


def test_replay_rejects_a_bad_mode_and_a_foreign_frame(tmp_path: Path) -> None:
    write_log(tmp_path, "m", build(["add_str"]))
    with pytest.raises(ValueError, match="mode"):
        replay(tmp_path, mode="strict")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        replay(pd.DataFrame({"cart_id": ["m"], "line": [1]}))


def test_gz_log_replays_like_the_plain_one(tmp_path: Path) -> None:
    lines = build(["add_str", "add_num", "order_str", "remove_missing"])
    plain = write_log(tmp_path / "p", "g", lines)
    gz = tmp_path / "z" / "g.events.log.gz"
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    for mode in ("go", "lenient"):
        a, b = replay(plain, mode=mode), replay(gz, mode=mode)
        assert a.final_state("g") == b.final_state("g")
        assert a.outcomes["outcome"].tolist() == b.outcomes["outcome"].tolist()


def test_final_state_of_a_never_applied_cart_is_empty(tmp_path: Path) -> None:
    write_log(tmp_path, "n", [b"x", b"y"], final_newline=False)
    s = replay(tmp_path).final_state("n")
    assert s == {"id": "n", "items": [], "deliveries": [], "totalPrice": 0, "totalTax": 0,
                 "totalDiscount": 0, "processing": False, "paymentInProgress": False,
                 "orderReference": "", "paymentStatus": "", "lastChange": None}


def test_an_empty_log_file_is_still_a_replayed_cart(tmp_path: Path) -> None:
    write_log(tmp_path, "empty", [])
    write_log(tmp_path, "full", [add(iso(0), "a")])
    assert (tmp_path / "empty.events.log").stat().st_size == 0
    r = replay(tmp_path)
    assert r.metrics()["cart_event_log_replay_total"] == 2
    assert "empty" in r.cart_ids
    assert r.final_state("empty")["items"] == []


def test_a_cart_in_two_files_is_replayed_in_read_order(tmp_path: Path) -> None:
    write_log(tmp_path, "two", [add(iso(0), "p1"), add(iso(1), "p2")])
    (tmp_path / "two.events.log.gz").write_bytes(
        gzip.compress(add(iso(2), "g1") + b"\n" + add(iso(3), "g2") + b"\n"))
    ev = read_events(tmp_path)
    order = [json.loads(p)["sku"] for p in ev["payload"]]
    r = replay(ev)
    assert [s for s, _ in skus(r.final_state("two"))] == order


# -- lastChange from the ts alone ------------------------------------------------------------

_TS_TOKENS = st.one_of(
    st.sampled_from(['"2025-01-01T00:00:00Z"', '"2025-01-01T01:00:00.123456789+01:00"',
                     '"2025-1-01T00:00:00Z"', '"bad"', '""', "1700000000", "-1", "0",
                     "9223372036854775807", '"2025-01-01T00:00:00\\u005a"', "null", "1.5",
                     '"9999-12-31T23:59:59.999999999-23:59"']),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
)
_TAILS = st.sampled_from(["", ',"TS":"2030-01-01T00:00:00Z"', ',"ts":1', ' ', ',"Ts":null'])


@settings(max_examples=300, deadline=None)
@given(ts=_TS_TOKENS, tail=_TAILS, payload=st.sampled_from(['{}', '{"sku":"a"}', '[1]', 'null']),
       lenient=st.booleans(), go=st.sampled_from(["1.25", "1.27"]))
def test_ts_only_envelope_gives_the_whole_lines_ts(ts: str, tail: str, payload: str,
                                                   lenient: bool, go: str) -> None:
    """lastChange decodes ``{"ts":…}`` instead of the whole line only where the line is in
    the writer's exact shape; wherever the whole line decodes, both give the same ts."""
    from cartforensics.go.envelope import decode_envelope, decode_ts_value
    from cartforensics.go.version import semantics
    from cartforensics.model.replay import _writer_ts

    line = f'{{"ts":{ts},"type":"AddItem","payload":{payload}{tail}}}'.encode()
    value = _writer_ts(line, payload)
    sem = semantics(go)
    whole = decode_envelope(line, lenient=lenient, sem=sem)
    if tail:
        assert value is None  # another key (or a space): the whole line decides
    elif whole.error is None:
        if re.fullmatch(r'"[^"\\]*"|-?[0-9]+', ts):  # the writer's shapes take the shortcut
            assert value == ts.encode()
        pair = None if value is None else decode_ts_value(value, lenient=lenient, sem=sem)
        if pair is not None:
            assert pair == (whole.ts, whole.ts_kind)
        elif value is not None:  # the shortcut declined: only where the value holds an escape
            assert "\\" in ts


# -- states after each applied line, in one pass ------------------------------------------------


def _hostile_corpus(d: Path) -> Path:
    """The widgets' hostile corpus (markup in types, names, cart ids; a broken line), and
    carts that stop, fail and take the reference core: a too-long line, payload and apply
    errors, an unknown type, a duplicated item id, a type registered by the analyst."""
    from test_widgets import write_hostile

    write_hostile(d)
    write_log(d, "stops", [add(iso(0), "a", 2, 100), add(iso(1), "b", 1, 5),
                           add(iso(2), "c", 1, 1, name="x" * MAX_TOKEN),
                           add(iso(3), "c", 1, 1)])
    write_log(d, "fails", [add(iso(0), "a", 1, 10), rec(iso(1), "ChangeQuantity", {"Id": 9}),
                           rec(iso(2), "AddItem", {"quantity": "many"}), rec(iso(3), "Nope", {}),
                           rec(5, "ChangeQuantity", {"Id": 1, "quantity": 7}),
                           rec(iso(6), "RemoveItem", {"Id": 1}), add(iso(7), "a", 1, 10)])
    write_log(d, "voucher", [add(iso(0), "a", 1, 1000), rec(iso(1), "AddVoucher", {"off": 3}),
                             rec(iso(2), "AddVoucher", {"off": -1}), add(iso(3), "b", 1, 1)])
    return d


def _voucher(state: CartState, msg: dict, catalog: Any = None) -> CartState:
    if msg["off"] < 0:
        raise HandlerError("a voucher takes money off")
    return dataclasses.replace(state, totalDiscount=state.totalDiscount + msg["off"])


@pytest.mark.parametrize("corpus", ["sample_data", "hostile"])
def test_applied_states_are_the_states_at_every_position(corpus: str, tmp_path: Path) -> None:
    """Replay.applied_states (each applied line applied to the cart the line before left, in
    one pass) gives state_at's state after every applied line, equal in every value and its
    type; the state after any other position is the one after the last applied line before
    it; both modes, both cores, which give the same states."""
    registry = default_registry().register("AddVoucher", {"off": "int64"}, _voucher)
    src = (Path(__file__).resolve().parents[2] / "sample_data" if corpus == "sample_data"
           else _hostile_corpus(tmp_path / "hostile"))
    ev = read_events(src)
    for mode in ("go", "lenient"):
        by_core = {}
        for engine in ("compiled", "reference"):
            r = replay(ev, mode=mode, registry=registry, engine=engine)
            got = {c: [(p, json.dumps(s)) for p, s in r.applied_states(c)] for c in r.cart_ids}
            for c, states in got.items():
                applied = (r.outcomes["outcome"].iloc[r.rows_of(c)] == "applied").to_numpy()
                assert [p for p, _s in states] == (applied.nonzero()[0] + 1).tolist()
                last = json.dumps(r.state_at(c, line=0))
                after = dict(states)
                for p in range(1, len(applied) + 1):
                    last = after.get(p, last)
                    assert json.dumps(r.state_at(c, line=p)) == last, (mode, engine, c, p)
            by_core[engine] = got
        assert by_core["compiled"] == by_core["reference"], mode
        assert sum(map(len, by_core["compiled"].values())) > 0
    if corpus == "hostile":  # the corpus holds what it says
        oc = replay(ev, registry=registry).outcomes
        assert {"too_long", "not_reached", "payload_error", "apply_error", "unknown_type",
                "malformed"} <= set(oc["outcome"].astype(str))


@pytest.mark.parametrize("corpus", ["sample_data", "hostile"])
def test_replay_modes_gives_each_modes_replay(corpus: str, tmp_path: Path) -> None:
    """replay_modes (both modes from one PreparedEvents, as convert replays) gives, mode by
    mode, the replay replay() gives: the same outcomes and errors, rows, carts and the cores
    that ran them, every state at every line (lastChange too), histories and metrics; both
    cores, and a frame in pieces (a lastChange read through pandas, not the buffers)."""
    registry = default_registry().register("AddVoucher", {"off": "int64"}, _voucher)
    src = (Path(__file__).resolve().parents[2] / "sample_data" if corpus == "sample_data"
           else _hostile_corpus(tmp_path / "hostile"))
    whole = read_events(src)
    half = len(whole) // 2
    pieces = pd.concat([whole.iloc[:half], whole.iloc[half:]], ignore_index=True)
    pieces.attrs = whole.attrs
    for ev in (whole, pieces):
        for engine in ("compiled", "reference"):
            shared = list(replay_modes(ev, registry=registry, engine=engine))
            assert [r.mode for r in shared] == ["go", "lenient"]
            assert shared[0]._prepared is shared[1]._prepared
            for r in shared:
                alone = replay(ev, mode=r.mode, registry=registry, engine=engine)
                pd.testing.assert_frame_equal(r.outcomes, alone.outcomes)
                assert r.cart_ids == alone.cart_ids
                assert r.carts_on_reference == alone.carts_on_reference
                pd.testing.assert_frame_equal(r.metrics(by_cart=True),
                                              alone.metrics(by_cart=True))
                for c in r.cart_ids:
                    assert r.rows_of(c) == alone.rows_of(c)
                    # the state after every applied line (any other line's is one of them)
                    assert json.dumps(list(r.applied_states(c))) == json.dumps(
                        list(alone.applied_states(c))), c
                    assert json.dumps(r.final_state(c)) == json.dumps(alone.final_state(c))
                for c in r.cart_ids[:3] + r.carts_on_reference:  # (5 ms a history)
                    pd.testing.assert_frame_equal(r.history(c), alone.history(c))
    assert any(s["lastChange"] for s in (replay(whole, mode="lenient").final_state(c)
                                         for c in replay(whole).cart_ids))


def test_state_at_time_beyond_the_nanosecond_range(tmp_path: Path) -> None:
    write_log(tmp_path, "in", [add(iso(0), "a"), add(iso(5), "b")])
    write_log(tmp_path, "far", [add(iso(0), "a"), add("2300-01-01T00:00:00Z", "b")])
    r = replay(tmp_path)
    for t, lines in (("0001-01-01T00:00:00Z", 0), ("1677-01-01T00:00:00Z", 0),
                     ("2262-04-12T00:00:00Z", 2), ("9999-12-31T23:59:59Z", 2)):
        assert r.line_at("in", t) == lines
        assert r.state_at("in", ts=t) == r.state_at("in", line=lines)
    assert r.line_at("far", "1677-01-01T00:00:00Z") == 0  # nothing clamped to the past end
    with pytest.raises(ValueError, match="ask by line="):  # 2300 is clamped to the range's end
        r.line_at("far", "2262-04-12T00:00:00Z")


@pytest.mark.parametrize("engine", ["compiled", "reference"])
def test_a_cart_replayed_in_two_parts_from_a_start_is_the_whole(tmp_path: Path,
                                                                engine: str) -> None:
    """replay(rest, starts={cart: first.cart_end(cart)}) goes on where the first part left
    the cart: outcomes, errors, states and lastChange as in one replay of all the lines,
    the too-long line's stop carried over; what needs the cart from its first line
    (history, without) is refused."""
    big = rec(iso(9), "AddItem", {"sku": "x" * MAX_TOKEN, "quantity": 1})
    lines = [rec(iso(0), "AddItem", {"sku": "a", "quantity": 2, "price": 5}),
             rec(1_700_000_000, "AddItem", {"sku": "n", "quantity": 1, "price": 3}),
             rec(iso(2), "AddItem", {"sku": "b", "quantity": 1, "price": 7}),
             rec(iso(3), "RemoveItem", {"Id": 1}), rec(iso(4), "RemoveItem", {"Id": 9}),
             rec(iso(5), "Nope"), big, rec(iso(6), "AddItem", {"sku": "c", "quantity": 1})]
    (tmp_path / "c.events.log").write_bytes(b"\n".join(lines) + b"\n")
    events = read_events(tmp_path, progress=False)
    for mode in ("go", "lenient"):
        full = replay(events, mode=mode, engine=engine)
        want = full.outcomes[["outcome", "error"]]
        for k in range(len(events)):  # (the rest holds a line or more: the cart is in it)
            first = replay(events.iloc[:k].reset_index(drop=True), mode=mode, engine=engine)
            start = first.cart_end("c") if k else None
            rest = replay(events.iloc[k:].reset_index(drop=True), mode=mode, engine=engine,
                          starts={"c": start} if start else None)
            got = pd.concat([first.outcomes, rest.outcomes], ignore_index=True)
            assert got[["outcome", "error"]].equals(want), (mode, k)
            assert rest.final_state("c") == full.final_state("c"), (mode, k)
            for j in range(len(events) - k + 1):
                assert rest.state_at("c", line=j) == full.state_at("c", line=k + j), (k, j)
            if start is not None:
                with pytest.raises(ValueError, match="replayed on from a start"):
                    rest.history("c")
                with pytest.raises(ValueError, match="replayed on from a start"):
                    rest.without("c", [1])
