"""Blame (which line last set each field of a cart) and context (the other carts' lines
around a line's time), through Replay.blame / Replay.context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_widgets import rec, write

from cartforensics import read_events, replay
from cartforensics.model.blame import first_parting


def add(ts: Any, sku: str, price: int, qty: int = 1) -> bytes:
    return rec(ts, "AddItem", {"item_id": int(sku), "quantity": qty, "price": price, "sku": sku,
                               "name": f"item {sku}"})


T = "2025-11-03T09:{:02d}:00Z".format

CART_A = [
    add(T(0), "101", 1000),                                            # 1 item 1
    add(T(1), "102", 2000, qty=2),                                     # 2 item 2
    rec(T(2), "ChangeQuantity", {"Id": 1, "quantity": 5}),             # 3 qty of item 1
    rec(T(3), "ChangeQuantity", {"Id": 9, "quantity": 1}),             # 4 apply_error
    b'{"ts":"2025-11-03T09:04:00Z","type":"AddItem","payload":',        # 5 malformed
    rec(T(5), "RemoveItem", {"Id": 1}),                                # 6 item 2 -> items[0]
    add(T(6), "103", 500),                                             # 7 item 3
    rec(T(7), "SetDelivery", {"provider": "postnord", "items": [2, 3]}),    # 8
    rec(T(8), "SetPickupPoint", {"deliveryId": 1, "id": "PP1", "city": "Umeå"}),  # 9
    rec(T(9), "InitializeCheckout", {"orderId": "HB-1", "status": "init",
                                     "paymentInProgress": True}),      # 10
    rec(T(10), "OrderCreated", {"orderId": "HB-1", "status": "checkout_complete"}),  # 11
    rec(1762161060, "ChangeQuantity", {"Id": 3, "quantity": 4}),       # 12 numeric ts 09:11
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    d = tmp_path_factory.mktemp("investigate")
    write(d, "cart-a", CART_A)
    write(d, "cart-b", [  # around cart-a's line 3 (09:02)
        add("2025-11-03T08:57:00Z", "201", 100),   # 09:02 - 5 min: on the edge, in
        add("2025-11-03T08:56:59Z", "202", 100),   # 1 s beyond the edge: out
        rec("2025-11-03T09:07:00Z", "RemoveItem", {"Id": 1}),      # + 5 min: in
        rec("2025-11-03T09:07:01Z", "RemoveItem", {"Id": 2}),      # out
        rec(None, "RemoveItem", {"Id": 2}),                         # no ts: never placed
        rec("2025-11-03T09:02:00Z", "Bogus", {}),                   # same time: in
    ])
    write(d, "cart-c", [  # no readable ts at all
        b'{"type":"AddItem","payload":{"quantity":1,"sku":"x"}}',
        rec(None, "AddItem", {"quantity": 1, "sku": "y"}),
    ])
    ev = read_events(d)
    return replay(ev), replay(ev, mode="lenient")


def row(b: pd.DataFrame, path: str) -> pd.Series:
    hit = b[b["path"] == path]
    assert len(hit) == 1, path
    return hit.iloc[0]


def blamed(b: pd.DataFrame, path: str) -> int | None:
    v = row(b, path)["line"]
    return None if pd.isna(v) else int(v)


# -- blame ------------------------------------------------------------------------------------
def test_blame_columns_and_one_row_per_leaf(pair):
    go, _ = pair
    b = go.blame("cart-a")
    assert list(b.columns) == ["path", "value", "line", "ts", "type"]
    state = go.final_state("cart-a")
    # 9 cart fields, 26 per item, a delivery of 2 items with a 6-field pickup point
    assert len(b) == 9 + len(state["items"]) * 26 + (3 + 2 + 6)
    for _, r in b.iterrows():  # every value is the state's
        assert _lookup(state, r["path"]) == r["value"]


def _lookup(state: Any, path: str) -> Any:
    cur = state
    for part in path.replace("]", "").replace("[", ".").split("."):
        cur = cur[int(part)] if isinstance(cur, list) else cur[part]
    return cur


def test_blame_adds_quantity_changes_and_removals(pair):
    go, _ = pair
    after3 = go.blame("cart-a", line=3)
    assert blamed(after3, "items[0].sku") == 1
    assert blamed(after3, "items[0].qty") == 3
    assert row(after3, "items[0].qty")["type"] == "ChangeQuantity"
    assert blamed(after3, "items[0].totalPrice") == 3
    assert blamed(after3, "items[1].qty") == 2
    assert blamed(after3, "totalPrice") == 3
    # item 1 removed at line 6: item 2 moves to items[0] but keeps its own lines
    after6 = go.blame("cart-a", line=6)
    assert row(after6, "items[0].sku")["value"] == "102"
    assert blamed(after6, "items[0].sku") == 2
    assert blamed(after6, "items[0].qty") == 2
    assert blamed(after6, "totalPrice") == 6
    assert row(after6, "totalPrice")["type"] == "RemoveItem"
    assert row(after6, "items[0].sku")["ts"] == pd.Timestamp(T(1))


def test_blame_deliveries_and_checkout(pair):
    go, _ = pair
    b = go.blame("cart-a")  # final state, go mode (line 12 has a numeric ts: dropped)
    assert blamed(b, "deliveries[0].provider") == 8
    assert blamed(b, "deliveries[0].items[1]") == 8
    assert blamed(b, "deliveries[0].pickupPoint.city") == 9
    assert row(b, "deliveries[0].pickupPoint.city")["value"] == "Umeå"
    assert blamed(b, "orderReference") == 10  # OrderCreated wrote the same reference again
    assert blamed(b, "paymentStatus") == 11
    assert blamed(b, "paymentInProgress") == 11  # back to false: still a change
    assert blamed(b, "lastChange") == 11
    assert blamed(b, "id") is None and blamed(b, "processing") is None
    assert pd.isna(row(b, "id")["type"]) and pd.isna(row(b, "id")["ts"])


def test_lines_not_applied_are_never_blamed(pair):
    go, _ = pair
    b = go.blame("cart-a")
    assert not ({4, 5, 12} & set(b["line"].dropna().astype(int)))
    # right after the handler error nothing moved
    assert go.blame("cart-a", line=4)["line"].tolist() == go.blame("cart-a", line=3)[
        "line"].tolist()


def test_blame_at_the_start_and_bad_lines(pair):
    go, _ = pair
    start = go.blame("cart-a", line=0)
    assert start["line"].isna().all()
    assert set(start["path"]) >= {"items", "deliveries", "totalPrice", "lastChange"}
    with pytest.raises(IndexError):
        go.blame("cart-a", line=13)
    with pytest.raises(ValueError):
        go.blame("cart-a", line=-1)
    with pytest.raises(KeyError):
        go.blame("no-such-cart")


def test_go_and_lenient_each_have_their_own_blame(pair):
    go, le = pair
    g, lb = go.blame("cart-a"), le.blame("cart-a")
    qty = "items[1].qty"  # item 3 (sku 103) after item 2
    assert row(g, qty)["value"] == 1 and blamed(g, qty) == 7
    assert row(lb, qty)["value"] == 4 and blamed(lb, qty) == 12
    assert blamed(lb, "lastChange") == 12 and blamed(g, "lastChange") == 11
    assert first_parting(go, le, "cart-a") == 12
    assert first_parting(go, le, "cart-b") is None


def _by_id(state: dict[str, Any]) -> dict[tuple, Any]:
    """An independent flattening keyed by item / delivery id, for the reference below."""
    out: dict[tuple, Any] = {}

    def walk(v: Any, key: tuple) -> None:
        if isinstance(v, dict) and v:
            for k, x in v.items():
                walk(x, (*key, k))
        elif isinstance(v, list) and v:
            for k, x in enumerate(v):
                walk(x, (*key, ("id", x["id"]) if isinstance(x, dict) else ("at", k)))
        else:
            out[key] = (type(v), v)
    walk(state, ())
    return out


def test_blame_matches_a_brute_force_walk_back(pair):
    """At every position, each field's line is the last position where that field (items
    and deliveries known by id) took its current value."""
    for r in pair:
        n = len(r.rows_of("cart-a"))
        flat = [_by_id(r.state_at("cart-a", line=p)) for p in range(n + 1)]
        for p in range(n + 1):
            b = r.blame("cart-a", line=p)
            expect = []
            for key, val in flat[p].items():
                q = p
                while q > 0 and flat[q - 1].get(key, object()) == val:
                    q -= 1
                expect.append(q or None)
            got = [None if pd.isna(v) else int(v) for v in b["line"]]
            assert got == expect, (r.mode, p)


# -- context ----------------------------------------------------------------------------------
def test_context_window_edges_and_order(pair):
    go, _ = pair
    c = go.context("cart-a", 3, minutes=5)  # cart-a line 3 is at 09:02
    assert list(c.columns) == ["cart_id", "line", "ts", "offset", "type", "outcome", "error"]
    assert c["cart_id"].unique().tolist() == ["cart-b"]  # the cart's own lines left out
    assert c["line"].tolist() == [1, 6, 3]  # ordered by time; both edges inside
    assert c["offset"].tolist() == [pd.Timedelta(minutes=-5), pd.Timedelta(0),
                                    pd.Timedelta(minutes=5)]
    assert c.loc[c["line"] == 6, "outcome"].item() == "unknown_type"
    assert c.attrs["center"] == pd.Timestamp(T(2))
    assert c.attrs["untimed"] == 3  # cart-b's line without ts and cart-c's two lines
    narrow = go.context("cart-a", 3, minutes=0.5)
    assert narrow["line"].tolist() == [6]
    # the index is the row of each line in outcomes
    assert (go.outcomes.loc[c.index, "line"].to_numpy() == c["line"].to_numpy()).all()


def test_context_of_carts_without_ts(pair):
    go, le = pair
    c = go.context("cart-c", 1)
    assert c.empty and c.attrs["center"] is None
    assert "no line with a readable ts" in c.attrs["reason"]
    # a line without ts is placed at the ts of the line before it
    b5 = go.context("cart-b", 5, minutes=1)
    assert b5.attrs["center"] == pd.Timestamp("2025-11-03T09:07:01Z")
    assert "line 4" in b5.attrs["reason"]
    assert b5["cart_id"].unique().tolist() == ["cart-a"]
    assert b5["line"].tolist() == [8, 9]  # 09:07 and 09:08
    # lenient mode: the numeric-ts line 12 of cart-a is applied and placed at 09:11
    assert le.context("cart-b", 4, minutes=4)["outcome"].tolist()[-1] == "applied"


def test_context_bad_arguments(pair):
    go, _ = pair
    for bad in (0, -1, "5", float("nan"), True):
        with pytest.raises(ValueError):
            go.context("cart-a", 3, minutes=bad)
    with pytest.raises(IndexError):
        go.context("cart-a", 99)
    with pytest.raises(KeyError):
        go.context("nope", 1)


class _StatesOnly:
    """A replay that answers state_at but has no applied_states (as ReplayWithout): the
    blame asks state_at for each applied line."""

    def __init__(self, replay: Any) -> None:
        self._r = replay
        self.mode, self.outcomes, self.cart_ids = replay.mode, replay.outcomes, replay.cart_ids

    def rows_of(self, cart_id: str) -> list[int]:
        return self._r.rows_of(cart_id)

    def state_at(self, cart_id: str, ts: Any = None, line: int | None = None) -> dict:
        return self._r.state_at(cart_id, ts=ts, line=line)


def test_the_forward_pass_blames_as_state_at_does(pair):
    """A blame read from the replay's applied states in one pass has the same changes and
    entries as one that asks state_at for each applied line; state_read answers every
    position whose last applied line was read, with state_at's state there."""
    from cartforensics.model.blame import BlameIndex

    for rp in pair:
        for c in rp.cart_ids:
            fast, slow = BlameIndex(rp, c), BlameIndex(_StatesOnly(rp), c)
            n = len(fast)
            for p in range(n + 1):
                fast.read(p)
                slow.read(p)
                assert fast.changes == slow.changes
                for q in range(-1, n + 2):
                    s = fast.state_read(q)
                    if s is not None:
                        assert 0 <= q <= n and s == rp.state_at(c, line=q), (c, p, q)
                # what a frame at p draws, kept by the read: the states at p and p - 1
                assert fast.state_read(p) == rp.state_at(c, line=p)
                assert p == 0 or fast.state_read(p - 1) == rp.state_at(c, line=p - 1)
                # the leaves of the items a state shares with the one listed before are
                # taken from that listing (the scrubber passes a copy of the state)
                paths, values, where = fast.entries(p, dict(fast.state_read(p)))
                want = slow.entries(p)
                assert (paths, values, where.tolist()) == (want[0], want[1], want[2].tolist())
                assert fast.entries(p)[0] == paths  # a state of state_at's own: listed whole
            assert fast.changes  # the cart has lines that changed fields


def test_a_replays_blame_indexes_go_when_the_replay_goes() -> None:
    import gc
    import weakref

    from cartforensics.model.blame import blame_index

    sample = Path(__file__).resolve().parents[2] / "sample_data" / "cart-1002.events.log"
    r = replay(read_events(sample))
    cart = r.cart_ids[0]
    idx = blame_index(r, cart)
    assert blame_index(r, cart) is idx  # built once per replay and cart
    gone = weakref.ref(r)
    del r, idx
    gc.collect()
    assert gone() is None
