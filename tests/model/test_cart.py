"""Unit tests of the cart model (cartforensics.model.cart) against docs/model.md."""

from __future__ import annotations

import copy
import ctypes
import dataclasses
import json
import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartforensics.model.cart import (
    DEFAULT_HANDLERS,
    CartState,
    Delivery,
    HandlerError,
    Item,
    PickupPoint,
    empty_cart,
    go_div,
    handle_add_item,
    handle_add_request,
    handle_change_quantity,
    handle_initialize_checkout,
    handle_order_created,
    handle_remove_delivery,
    handle_remove_item,
    handle_set_cart_request,
    handle_set_delivery,
    handle_set_pickup_point,
    i64,
    state_to_json,
)

MAX64 = 2**63 - 1
MIN64 = -(2**63)

# --------------------------------------------------------------------------- message builders
# Every json key present, zero values by default, exactly as the decoder hands them over.


def add_item(**kw: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "item_id": 0,
        "quantity": 0,
        "price": 0,
        "orgPrice": 0,
        "sku": "",
        "name": "",
        "image": "",
        "stock": 0,
        "tax": 0,
        "brand": "",
        "category": "",
        "category2": "",
        "category3": "",
        "category4": "",
        "category5": "",
        "disclaimer": "",
        "articleType": "",
        "sellerId": "",
        "sellerName": "",
        "country": "",
        "outlet": None,
        "storeId": None,
        "parentId": None,
    }
    assert set(kw) <= set(msg), kw
    msg.update(kw)
    return msg


def add_request(**kw: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"quantity": 0, "sku": "", "country": "", "storeId": None}
    assert set(kw) <= set(msg), kw
    msg.update(kw)
    return msg


def set_cart(items: list[dict[str, Any] | None] | None) -> dict[str, Any]:
    return {"items": items}


def remove_item(ident: int) -> dict[str, Any]:
    return {"Id": ident}


def change_qty(ident: int, quantity: int) -> dict[str, Any]:
    return {"Id": ident, "quantity": quantity}


def pickup(**kw: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "id": "",
        "name": None,
        "address": None,
        "city": None,
        "zip": None,
        "country": None,
    }
    msg.update(kw)
    return msg


def set_delivery(
    items: list[int] | None = None, provider: str = "", pp: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "provider": provider,
        "items": items,
        "pickupPoint": pp,
        "country": "",
        "zip": "",
        "address": None,
        "city": None,
    }


def set_pickup(delivery_id: int, **kw: Any) -> dict[str, Any]:
    msg = pickup(**kw)
    msg["deliveryId"] = delivery_id
    return msg


def remove_delivery(ident: int) -> dict[str, Any]:
    return {"id": ident}


def order_created(order_id: str = "", status: str = "") -> dict[str, Any]:
    return {"orderId": order_id, "status": status}


def init_checkout(order_id: str = "", status: str = "", in_progress: bool = False) -> dict:
    return {"orderId": order_id, "status": status, "paymentInProgress": in_progress}


def cart_with(*skus: str, price: int = 100) -> CartState:
    """A cart with one AddItem per sku (qty 1)."""
    s = empty_cart("c")
    for sku in skus:
        s = handle_add_item(s, add_item(sku=sku, quantity=1, price=price))
    return s


def expect_error(handler: Any, state: CartState, msg: dict, text: str, *args: Any) -> None:
    """The handler raises HandlerError with exactly ``text`` and leaves ``state`` intact."""
    before = copy.deepcopy(state)
    before_json = state_to_json(state)
    with pytest.raises(HandlerError) as err:
        handler(state, msg, *args)
    assert str(err.value) == text
    assert state == before
    assert state_to_json(state) == before_json


# --------------------------------------------------------------------------- int64 helpers


def test_i64_wraps_like_go_int64() -> None:
    assert i64(MAX64) == MAX64
    assert i64(MAX64 + 1) == MIN64
    assert i64(MIN64 - 1) == MAX64
    assert i64(2**64) == 0
    assert i64(-5) == -5
    assert i64(3 * 2**62) == -(2**62)


def test_go_div_truncates_toward_zero_and_is_exact_on_big_ints() -> None:
    assert go_div(7, 2) == 3
    assert go_div(-7, 2) == -3
    assert go_div(7, -2) == -3
    assert go_div(-7, -2) == 3
    assert go_div(-1, 12500) == 0
    big = 2**62 + 1
    assert go_div(big, 3) == 1537228672809129301  # int(big / 3) would be off by float rounding
    assert go_div(-big, 3) == -1537228672809129301
    assert go_div(MIN64, -1) == MIN64  # Go: overflow wraps, no panic


# --------------------------------------------------------------------------- empty cart / values


def test_empty_cart() -> None:
    s = empty_cart("cart-1")
    assert state_to_json(s) == {
        "id": "cart-1",
        "items": [],
        "deliveries": [],
        "totalPrice": 0,
        "totalTax": 0,
        "totalDiscount": 0,
        "processing": False,
        "paymentInProgress": False,
        "orderReference": "",
        "paymentStatus": "",
        "lastChange": None,
    }
    assert (s.last_item_id, s.last_delivery_id, s.last_change) == (0, 0, None)


def test_values_are_frozen_with_tuples() -> None:
    s = cart_with("a")
    s = handle_set_delivery(s, set_delivery(pp=pickup(id="p")))
    assert isinstance(s.items, tuple) and isinstance(s.deliveries, tuple)
    assert isinstance(s.deliveries[0].items, tuple)
    for obj, field in (
        (s, "items"),
        (s.items[0], "qty"),
        (s.deliveries[0], "items"),
        (s.deliveries[0].pickupPoint, "id"),
    ):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field, None)


def test_with_last_change_returns_a_new_state() -> None:
    s = cart_with("a")
    t = s.with_last_change("2024-01-02T03:04:05.5+01:00")
    assert s.last_change is None
    assert t.last_change == "2024-01-02T03:04:05.5+01:00"
    assert state_to_json(t)["lastChange"] == "2024-01-02T03:04:05.5+01:00"
    assert dataclasses.replace(t, last_change=None) == s


def test_default_handlers_table() -> None:
    assert DEFAULT_HANDLERS == {
        "AddRequest": handle_add_request,
        "AddItem": handle_add_item,
        "RemoveItem": handle_remove_item,
        "ChangeQuantity": handle_change_quantity,
        "SetDelivery": handle_set_delivery,
        "SetPickupPoint": handle_set_pickup_point,
        "RemoveDelivery": handle_remove_delivery,
        "SetCartRequest": handle_set_cart_request,
        "OrderCreated": handle_order_created,
        "InitializeCheckout": handle_initialize_checkout,
    }


def test_every_handler_takes_state_msg_catalog() -> None:
    catalog = {"x": {"sku": "x", "price": 7}}
    s = DEFAULT_HANDLERS["AddRequest"](empty_cart("c"), add_request(sku="x", quantity=1), catalog)
    assert s.items[0].price == 7
    s = DEFAULT_HANDLERS["OrderCreated"](s, order_created("o", "ok"), catalog)
    assert s.orderReference == "o"
    s = DEFAULT_HANDLERS["AddItem"](s, add_item(sku="y", quantity=1), catalog)
    assert [it.sku for it in s.items] == ["x", "y"]


# --------------------------------------------------------------------------- AddItem


@pytest.mark.parametrize("quantity", [0, -1, -(2**31)])
def test_add_item_invalid_quantity(quantity: int) -> None:
    expect_error(
        handle_add_item, cart_with("a"), add_item(sku="a", quantity=quantity), "invalid quantity"
    )


def test_add_item_new_item_takes_every_field() -> None:
    msg = add_item(
        item_id=4000000000,
        quantity=3,
        price=12900,
        orgPrice=15900,
        sku="SKU-1",
        name="Shoe",
        image="/i.png",
        stock=5,
        tax=1200,
        brand="B",
        category="c1",
        category2="c2",
        category3="c3",
        category4="c4",
        category5="c5",
        disclaimer="d",
        articleType="T",
        sellerId="s1",
        sellerName="Seller",
        country="se",
        outlet="",
        storeId="st",
        parentId=0,
    )
    s = handle_add_item(empty_cart("c"), msg)
    assert s.last_item_id == 1
    assert state_to_json(s)["items"] == [
        {
            "id": 1,
            "itemId": 4000000000,
            "sku": "SKU-1",
            "name": "Shoe",
            "image": "/i.png",
            "price": 12900,
            "orgPrice": 15900,
            "qty": 3,
            "totalPrice": 38700,
            "tax": 38700 * 1200 // 11200,
            "taxRate": 1200,
            "stock": 5,
            "type": "T",
            "brand": "B",
            "category": "c1",
            "category2": "c2",
            "category3": "c3",
            "category4": "c4",
            "category5": "c5",
            "disclaimer": "d",
            "sellerId": "s1",
            "sellerName": "Seller",
            "outlet": "",  # a pointer to "" is not nil
            "storeId": "st",
            "parentId": 0,  # a pointer to 0 is not nil
            "unresolved": False,
        }
    ]
    assert s.totalPrice == 38700
    assert s.totalTax == 4146  # 46440000 / 11200 = 4146.4
    assert s.totalDiscount == 3000 * 3


def test_add_item_tax_rate_defaults_to_2500_only_when_zero() -> None:
    s = handle_add_item(empty_cart("c"), add_item(sku="a", quantity=1, price=100))
    assert s.items[0].taxRate == 2500
    s = handle_add_item(s, add_item(sku="b", quantity=1, tax=-3))
    assert s.items[1].taxRate == -3
    s = handle_add_item(s, add_item(sku="c", quantity=1, tax=600))
    assert s.items[2].taxRate == 600


def test_add_item_merges_same_sku_and_both_store_ids_null() -> None:
    s = handle_add_item(empty_cart("c"), add_item(sku="a", quantity=2, price=100, name="first"))
    s = handle_add_item(s, add_item(sku="a", quantity=5, price=999, name="second"))
    assert len(s.items) == 1
    assert (s.items[0].qty, s.items[0].price, s.items[0].name) == (7, 100, "first")
    assert s.last_item_id == 1
    assert s.totalPrice == 700


def test_add_item_merges_same_sku_and_equal_store_ids() -> None:
    s = handle_add_item(empty_cart("c"), add_item(sku="a", quantity=1, storeId="s1"))
    s = handle_add_item(s, add_item(sku="a", quantity=1, storeId="s1"))
    assert [(it.id, it.qty) for it in s.items] == [(1, 2)]


@pytest.mark.parametrize(
    ("first", "second"), [(None, "s1"), ("s1", None), ("s1", "s2"), ("", None), (None, "")]
)
def test_add_item_different_store_id_is_a_new_item(first: str | None, second: str | None) -> None:
    s = handle_add_item(empty_cart("c"), add_item(sku="a", quantity=1, storeId=first))
    s = handle_add_item(s, add_item(sku="a", quantity=1, storeId=second))
    assert [(it.id, it.storeId, it.qty) for it in s.items] == [(1, first, 1), (2, second, 1)]


def test_add_item_different_sku_same_store_is_a_new_item() -> None:
    s = handle_add_item(empty_cart("c"), add_item(sku="a", quantity=1, storeId="s"))
    s = handle_add_item(s, add_item(sku="b", quantity=1, storeId="s"))
    assert [it.sku for it in s.items] == ["a", "b"]


def test_item_ids_are_never_reused() -> None:
    s = cart_with("a", "b")
    s = handle_remove_item(s, remove_item(2))
    s = handle_add_item(s, add_item(sku="c", quantity=1))
    assert [it.id for it in s.items] == [1, 3]
    assert s.last_item_id == 3


def test_add_item_qty_sum_wraps_int64() -> None:
    base = empty_cart("c")
    s = dataclasses.replace(
        base, items=(Item(id=1, sku="a", qty=MAX64, taxRate=2500),), last_item_id=1
    )
    s = handle_add_item(s, add_item(sku="a", quantity=1))
    assert s.items[0].qty == MIN64


# --------------------------------------------------------------------------- AddRequest


@pytest.mark.parametrize("quantity", [0, -7])
def test_add_request_invalid_quantity(quantity: int) -> None:
    expect_error(
        handle_add_request,
        cart_with("a"),
        add_request(sku="a", quantity=quantity),
        "invalid quantity",
    )


def test_add_request_unresolved_without_catalog() -> None:
    s = handle_add_request(empty_cart("c"), add_request(sku="X", quantity=2, storeId="st"))
    assert state_to_json(s)["items"] == [
        {
            "id": 1,
            "itemId": 0,
            "sku": "X",
            "name": "",
            "image": "",
            "price": 0,
            "orgPrice": 0,
            "qty": 2,
            "totalPrice": 0,
            "tax": 0,
            "taxRate": 2500,
            "stock": 0,
            "type": "",
            "brand": "",
            "category": "",
            "category2": "",
            "category3": "",
            "category4": "",
            "category5": "",
            "disclaimer": "",
            "sellerId": "",
            "sellerName": "",
            "outlet": None,
            "storeId": "st",
            "parentId": None,
            "unresolved": True,
        }
    ]
    assert s.last_item_id == 1


def test_add_request_merges_by_sku_ignoring_store_id() -> None:
    s = handle_add_item(empty_cart("c"), add_item(sku="a", quantity=1, storeId="s1", price=10))
    s = handle_add_request(s, add_request(sku="a", quantity=4, storeId="s2"))
    assert [(it.id, it.qty, it.storeId) for it in s.items] == [(1, 5, "s1")]
    assert s.totalPrice == 50


def test_add_request_merges_into_the_first_item_with_that_sku() -> None:
    s = handle_add_item(empty_cart("c"), add_item(sku="a", quantity=1, storeId="s1"))
    s = handle_add_item(s, add_item(sku="a", quantity=1, storeId="s2"))
    s = handle_add_request(s, add_request(sku="a", quantity=3, storeId="s2"))
    assert [(it.storeId, it.qty) for it in s.items] == [("s1", 4), ("s2", 1)]


def test_add_request_resolves_from_catalog() -> None:
    catalog = {
        "A": {
            "item_id": 77,
            "quantity": 99,
            "price": 1000,
            "orgPrice": 1500,
            "sku": "A",
            "name": "Alpha",
            "tax": 1200,
            "articleType": "kind",
            "category3": "c3",
            "sellerName": "S",
            "outlet": "out",
            "storeId": "catalog-store",
            "parentId": 5,
        }
    }
    s = handle_add_request(
        empty_cart("c"), add_request(sku="A", quantity=2, storeId="req"), catalog
    )
    it = s.items[0]
    assert (it.id, it.itemId, it.sku, it.name, it.price, it.orgPrice) == (
        1,
        77,
        "A",
        "Alpha",
        1000,
        1500,
    )
    assert (it.qty, it.storeId, it.taxRate, it.type, it.category3) == (2, "req", 1200, "kind", "c3")
    assert (it.sellerName, it.outlet, it.parentId, it.unresolved) == ("S", "out", 5, False)
    assert (it.totalPrice, it.tax) == (2000, 2000 * 1200 // 11200)
    assert s.totalDiscount == 1000


def test_add_request_catalog_missing_keys_are_zero_values() -> None:
    catalog = {"A": {"sku": "A", "price": 300}}
    s = handle_add_request(empty_cart("c"), add_request(sku="A", quantity=1), catalog)
    it = s.items[0]
    assert (it.price, it.taxRate, it.tax, it.name, it.outlet, it.parentId) == (
        300,
        2500,
        60,
        "",
        None,
        None,
    )
    assert (it.storeId, it.unresolved) == (None, False)


def test_add_request_catalog_item_takes_sku_from_request() -> None:
    catalog: dict[str, Any] = {"A": {"sku": "other", "price": 300}, "B": {"price": 5}, "N": None}
    s = handle_add_request(empty_cart("c"), add_request(sku="A", quantity=1), catalog)
    s = handle_add_request(s, add_request(sku="B", quantity=1), catalog)
    s = handle_add_request(s, add_request(sku="N", quantity=2, storeId="st"), catalog)
    assert [
        (it.sku, it.price, it.qty, it.storeId, it.taxRate, it.unresolved) for it in s.items
    ] == [
        ("A", 300, 1, None, 2500, False),
        ("B", 5, 1, None, 2500, False),
        ("N", 0, 2, "st", 2500, False),  # a null entry is an empty AddItem, not unresolved
    ]
    # the next AddRequest for "A" finds the item by the request's sku and merges
    s = handle_add_request(s, add_request(sku="A", quantity=4), catalog)
    assert (len(s.items), s.items[0].qty) == (3, 5)


def test_add_request_sku_not_in_catalog_is_unresolved() -> None:
    catalog = {"A": {"sku": "A", "price": 300}}
    s = handle_add_request(empty_cart("c"), add_request(sku="B", quantity=1), catalog)
    assert (s.items[0].sku, s.items[0].price, s.items[0].unresolved) == ("B", 0, True)


def test_add_request_does_not_mutate_catalog() -> None:
    catalog = {"A": {"sku": "A", "price": 300, "quantity": 9, "storeId": "x"}}
    before = copy.deepcopy(catalog)
    handle_add_request(empty_cart("c"), add_request(sku="A", quantity=1, storeId="y"), catalog)
    assert catalog == before


# --------------------------------------------------------------------------- SetCartRequest


def test_set_cart_request_replaces_items_keeps_deliveries_and_counters() -> None:
    s = cart_with("a", "b")
    s = handle_set_delivery(s, set_delivery([1]))
    s = handle_set_cart_request(
        s,
        set_cart(
            [
                add_request(sku="x", quantity=1),
                add_request(sku="y", quantity=2, storeId="s"),
                add_request(sku="x", quantity=3),  # merges with the x added just above
            ]
        ),
    )
    assert [(it.id, it.sku, it.qty, it.storeId) for it in s.items] == [
        (3, "x", 4, None),
        (4, "y", 2, "s"),
    ]
    assert s.last_item_id == 4
    assert [(d.id, d.items) for d in s.deliveries] == [(1, (1,))]
    assert s.totalPrice == 4900  # unresolved items cost 0, the delivery stays


@pytest.mark.parametrize("items", [None, []])
def test_set_cart_request_without_entries_clears_items(items: list | None) -> None:
    s = handle_set_cart_request(cart_with("a", "b"), set_cart(items))
    assert s.items == ()
    assert (s.totalPrice, s.last_item_id) == (0, 2)


def test_set_cart_request_failing_midway_leaves_state_unchanged() -> None:
    s = cart_with("a", "b")
    msg = set_cart(
        [add_request(sku="x", quantity=1), add_request(sku="y", quantity=0), add_request(sku="z")]
    )
    expect_error(handle_set_cart_request, s, msg, "invalid quantity")


def test_set_cart_request_null_entry_is_an_empty_add_request() -> None:
    expect_error(
        handle_set_cart_request,
        cart_with("a"),
        set_cart([add_request(sku="x", quantity=1), None]),
        "invalid quantity",
    )


def test_set_cart_request_uses_the_catalog() -> None:
    catalog = {"x": {"sku": "x", "price": 250, "name": "Ex"}}
    s = handle_set_cart_request(
        empty_cart("c"),
        set_cart([add_request(sku="x", quantity=2), add_request(sku="q", quantity=1)]),
        catalog,
    )
    assert [(it.sku, it.name, it.price, it.unresolved) for it in s.items] == [
        ("x", "Ex", 250, False),
        ("q", "", 0, True),
    ]
    assert s.totalPrice == 500


def test_set_cart_request_does_not_mutate_message() -> None:
    msg = set_cart([add_request(sku="x", quantity=1), None])
    before = copy.deepcopy(msg)
    with pytest.raises(HandlerError):
        handle_set_cart_request(empty_cart("c"), msg)
    assert msg == before


# --------------------------------------------------------------------------- RemoveItem


def test_remove_item_not_found() -> None:
    expect_error(handle_remove_item, cart_with("a"), remove_item(2), "item not found")
    expect_error(handle_remove_item, empty_cart("c"), remove_item(0), "item not found")


def test_remove_item_removes_it_and_its_id_from_every_delivery() -> None:
    s = cart_with("a", "b", "c")
    s = handle_set_delivery(s, set_delivery([2, 2, 1]))
    s = handle_set_delivery(s, set_delivery([3]))
    s = handle_remove_item(s, remove_item(2))
    assert [it.id for it in s.items] == [1, 3]
    assert [(d.id, d.items) for d in s.deliveries] == [(1, (1,)), (2, (3,))]
    s = handle_remove_item(s, remove_item(3))
    assert [(d.id, d.items) for d in s.deliveries] == [(1, (1,)), (2, ())]  # stays, even empty
    assert s.totalPrice == 100 + 2 * 4900
    assert state_to_json(s)["deliveries"][1]["items"] == []


# --------------------------------------------------------------------------- ChangeQuantity


def test_change_quantity_not_found() -> None:
    expect_error(handle_change_quantity, cart_with("a"), change_qty(9, 2), "item not found")
    expect_error(handle_change_quantity, cart_with("a"), change_qty(9, 0), "item not found")


def test_change_quantity_sets_qty() -> None:
    s = handle_change_quantity(cart_with("a", "b"), change_qty(2, 7))
    assert [it.qty for it in s.items] == [1, 7]
    assert s.totalPrice == 800


@pytest.mark.parametrize("quantity", [0, -1])
def test_change_quantity_to_zero_or_less_removes(quantity: int) -> None:
    s = cart_with("a", "b")
    s = handle_set_delivery(s, set_delivery([1, 2]))
    s = handle_change_quantity(s, change_qty(1, quantity))
    assert [it.id for it in s.items] == [2]
    assert s.deliveries[0].items == (2,)
    assert s.totalPrice == 100 + 4900


# --------------------------------------------------------------------------- SetDelivery


@pytest.mark.parametrize("items", [None, []])
def test_set_delivery_empty_list_takes_undelivered_items_in_item_order(items: list | None) -> None:
    s = cart_with("a", "b", "c", "d")
    s = handle_set_delivery(s, set_delivery([3]))
    s = handle_set_delivery(s, set_delivery(items, provider="postnord"))
    d = s.deliveries[1]
    assert (d.id, d.provider, d.price, d.items, d.pickupPoint) == (
        2,
        "postnord",
        4900,
        (1, 2, 4),
        None,
    )
    assert s.last_delivery_id == 2
    assert s.totalPrice == 400 + 2 * 4900


@pytest.mark.parametrize("items", [None, []])
def test_set_delivery_no_items(items: list | None) -> None:
    expect_error(handle_set_delivery, empty_cart("c"), set_delivery(items), "no items")
    s = handle_set_delivery(cart_with("a", "b"), set_delivery([2, 1]))
    expect_error(handle_set_delivery, s, set_delivery(items), "no items")


def test_set_delivery_unknown_id() -> None:
    expect_error(handle_set_delivery, cart_with("a"), set_delivery([1, 5]), "item not found")


def test_set_delivery_already_delivered() -> None:
    s = handle_set_delivery(cart_with("a", "b"), set_delivery([1]))
    expect_error(handle_set_delivery, s, set_delivery([2, 1]), "item already has a delivery")


def test_set_delivery_checks_each_id_in_order() -> None:
    s = handle_set_delivery(cart_with("a", "b"), set_delivery([1]))
    expect_error(handle_set_delivery, s, set_delivery([9, 1]), "item not found")
    expect_error(handle_set_delivery, s, set_delivery([1, 9]), "item already has a delivery")


def test_set_delivery_keeps_repeated_ids_and_given_order() -> None:
    s = handle_set_delivery(cart_with("a", "b"), set_delivery([2, 1, 2]))
    assert s.deliveries[0].items == (2, 1, 2)
    assert state_to_json(s)["deliveries"][0]["items"] == [2, 1, 2]


def test_set_delivery_copies_pickup_point() -> None:
    pp = pickup(id="P1", name="Kiosk", city=None, zip="12345", country="SE")
    msg = set_delivery([1], provider="dhl", pp=pp)
    s = handle_set_delivery(cart_with("a"), msg)
    pp["name"] = "changed"
    msg["items"].append(99)
    assert s.deliveries[0].pickupPoint == PickupPoint(
        id="P1", name="Kiosk", address=None, city=None, zip="12345", country="SE"
    )
    assert s.deliveries[0].items == (1,)
    assert state_to_json(s)["deliveries"] == [
        {
            "id": 1,
            "provider": "dhl",
            "price": 4900,
            "items": [1],
            "pickupPoint": {
                "id": "P1",
                "name": "Kiosk",
                "address": None,
                "city": None,
                "zip": "12345",
                "country": "SE",
            },
        }
    ]


def test_delivery_ids_are_never_reused() -> None:
    s = handle_set_delivery(cart_with("a", "b"), set_delivery([1]))
    s = handle_remove_delivery(s, remove_delivery(1))
    s = handle_set_delivery(s, set_delivery([2]))
    assert [d.id for d in s.deliveries] == [2]


def test_delivery_keeps_the_stale_id_of_a_cleared_item() -> None:
    # SetCartRequest keeps deliveries that now name vanished ids; new items get new ids.
    s = handle_set_delivery(cart_with("a"), set_delivery([1]))
    s = handle_set_cart_request(s, set_cart([add_request(sku="b", quantity=1)]))
    expect_error(handle_set_delivery, s, set_delivery([1]), "item not found")
    s = handle_set_delivery(s, set_delivery([]))
    assert [d.items for d in s.deliveries] == [(1,), (2,)]


# --------------------------------------------------------------------------- SetPickupPoint


def test_set_pickup_point_not_found() -> None:
    expect_error(
        handle_set_pickup_point, cart_with("a"), set_pickup(1, id="p"), "delivery not found"
    )


def test_set_pickup_point_sets_that_delivery_only() -> None:
    s = cart_with("a", "b")
    s = handle_set_delivery(s, set_delivery([1], pp=pickup(id="old", name="n")))
    s = handle_set_delivery(s, set_delivery([2]))
    s = handle_set_pickup_point(s, set_pickup(1, id="new", address="Street 1", country="NO"))
    assert s.deliveries[0].pickupPoint == PickupPoint(id="new", address="Street 1", country="NO")
    assert s.deliveries[1].pickupPoint is None
    s = handle_set_pickup_point(s, set_pickup(2, id=""))
    assert state_to_json(s)["deliveries"][1]["pickupPoint"] == {
        "id": "",
        "name": None,
        "address": None,
        "city": None,
        "zip": None,
        "country": None,
    }
    assert s.totalPrice == 200 + 2 * 4900


# --------------------------------------------------------------------------- RemoveDelivery


def test_remove_delivery_not_found() -> None:
    s = handle_set_delivery(cart_with("a"), set_delivery([1]))
    expect_error(handle_remove_delivery, s, remove_delivery(2), "delivery not found")
    expect_error(handle_remove_delivery, empty_cart("c"), remove_delivery(0), "delivery not found")


def test_remove_delivery_removes_it_and_its_price() -> None:
    s = cart_with("a", "b")
    s = handle_set_delivery(s, set_delivery([1]))
    s = handle_set_delivery(s, set_delivery([2]))
    assert s.totalPrice == 200 + 2 * 4900
    s = handle_remove_delivery(s, remove_delivery(1))
    assert [d.id for d in s.deliveries] == [2]
    assert s.totalPrice == 200 + 4900
    assert s.last_delivery_id == 2
    # item 1 has no delivery any more, so it can get one again
    s = handle_set_delivery(s, set_delivery([]))
    assert s.deliveries[-1].items == (1,)


# --------------------------------------------------------------------------- checkout


def test_initialize_checkout_sets_fields() -> None:
    s = handle_initialize_checkout(cart_with("a"), init_checkout("ord-1", "pending", True))
    assert (s.orderReference, s.paymentStatus, s.paymentInProgress) == ("ord-1", "pending", True)
    s = handle_initialize_checkout(s, init_checkout("ord-2", "", False))
    assert (s.orderReference, s.paymentStatus, s.paymentInProgress) == ("ord-2", "", False)
    assert s.processing is False
    assert s.totalPrice == 100


def test_order_created_sets_fields_and_clears_payment_in_progress() -> None:
    s = handle_initialize_checkout(cart_with("a"), init_checkout("ord-1", "pending", True))
    s = handle_order_created(s, order_created("ord-9", "paid"))
    assert (s.orderReference, s.paymentStatus, s.paymentInProgress) == ("ord-9", "paid", False)
    assert s.processing is False
    j = state_to_json(s)
    assert (j["orderReference"], j["paymentStatus"], j["paymentInProgress"]) == (
        "ord-9",
        "paid",
        False,
    )


# --------------------------------------------------------------------------- totals math


def one_item(price: int, qty: int = 1, tax: int = 0, org: int = 0) -> CartState:
    return handle_add_item(
        empty_cart("c"), add_item(sku="a", quantity=qty, price=price, tax=tax, orgPrice=org)
    )


@pytest.mark.parametrize(
    ("price", "qty", "tax", "expected"),
    [
        (1000, 1, 0, 200),  # 1000*2500/12500
        (999, 1, 0, 199),  # 199.8 truncated
        (-999, 1, 0, -199),  # -199.8 truncated toward zero (floor would be -200)
        (-1, 1, 0, 0),  # -0.2 -> 0
        (333, 3, 1200, 107),  # 999*1200/11200 = 107.03
        (-333, 3, 1200, -107),
        (100, 1, -10000, 0),  # divisor 0 -> tax 0
        (100, 1, -20000, 200),  # 100*-20000 / -10000
        (7, 1, -10001, 70007),  # divisor -1
    ],
)
def test_item_tax(price: int, qty: int, tax: int, expected: int) -> None:
    s = one_item(price, qty, tax)
    assert s.items[0].tax == expected
    assert s.totalTax == expected
    assert s.items[0].totalPrice == price * qty


def test_tax_product_wraps_before_division() -> None:
    # 2**60 * 2500 = 2**62 (mod 2**64): the wrapped product is divided, not the exact one.
    s = one_item(2**60)
    assert s.items[0].totalPrice == 2**60
    assert s.items[0].tax == 368934881474191  # 2**62 // 12500
    assert s.totalTax == 368934881474191


def test_tax_min_int64_divided_by_minus_one_wraps() -> None:
    s = one_item(MIN64, tax=-10001)
    assert s.items[0].tax == MIN64


def test_total_price_wraps_on_huge_prices() -> None:
    assert one_item(2**62, qty=2).items[0].totalPrice == MIN64
    assert one_item(2**62, qty=3).items[0].totalPrice == -(2**62)
    assert one_item(2**62, qty=4).items[0].totalPrice == 0
    assert one_item(MAX64, qty=2).totalPrice == -2


def test_cart_total_price_sum_wraps() -> None:
    s = handle_add_item(empty_cart("c"), add_item(sku="a", quantity=1, price=MAX64))
    assert s.totalPrice == MAX64
    s = handle_set_delivery(s, set_delivery([1]))
    assert s.totalPrice == MIN64 + 4899
    s = handle_add_item(s, add_item(sku="b", quantity=1, price=1))
    assert s.totalPrice == MIN64 + 4900


def test_total_tax_sum_wraps() -> None:
    s = handle_add_item(empty_cart("c"), add_item(sku="a", quantity=1, price=MIN64, tax=-10001))
    s = handle_add_item(s, add_item(sku="b", quantity=1, price=-5, tax=-20000))  # tax -10
    assert s.totalTax == MAX64 - 9


def test_total_discount() -> None:
    s = handle_add_item(empty_cart("c"), add_item(sku="a", quantity=3, price=80, orgPrice=100))
    s = handle_add_item(s, add_item(sku="b", quantity=2, price=100, orgPrice=50))  # no negative
    s = handle_add_item(s, add_item(sku="c", quantity=5, price=100))  # orgPrice 0
    s = handle_add_item(s, add_item(sku="d", quantity=1, price=-10, orgPrice=-4))
    assert s.totalDiscount == 20 * 3 + 0 + 0 + 6
    s = handle_change_quantity(s, change_qty(1, 10))
    assert s.totalDiscount == 20 * 10 + 6


def test_total_discount_difference_and_product_wrap() -> None:
    # orgPrice - price = 2**63 wraps to MinInt64, so max(.., 0) is 0.
    assert one_item(-1, org=MAX64).totalDiscount == 0
    # (2**62) * 2 wraps to MinInt64.
    assert one_item(0, qty=2, org=2**62).totalDiscount == MIN64


# --------------------------------------------------------------------------- state JSON order

ITEM_KEYS = [
    "id", "itemId", "sku", "name", "image", "price", "orgPrice", "qty", "totalPrice", "tax",
    "taxRate", "stock", "type", "brand", "category", "category2", "category3", "category4",
    "category5", "disclaimer", "sellerId", "sellerName", "outlet", "storeId", "parentId",
    "unresolved",
]  # fmt: skip
STATE_KEYS = [
    "id", "items", "deliveries", "totalPrice", "totalTax", "totalDiscount", "processing",
    "paymentInProgress", "orderReference", "paymentStatus", "lastChange",
]  # fmt: skip


def test_state_json_key_order() -> None:
    s = cart_with("a")
    s = handle_set_delivery(s, set_delivery([1], pp=pickup(id="p")))
    s = s.with_last_change("0001-01-01T00:00:00Z")
    j = state_to_json(s)
    assert list(j) == STATE_KEYS
    assert list(j["items"][0]) == ITEM_KEYS
    assert list(j["deliveries"][0]) == ["id", "provider", "price", "items", "pickupPoint"]
    assert list(j["deliveries"][0]["pickupPoint"]) == [
        "id", "name", "address", "city", "zip", "country",
    ]  # fmt: skip
    text = json.dumps(j, separators=(",", ":"))
    assert text.startswith('{"id":"c","items":[{"id":1,"itemId":0,"sku":"a",')
    assert text.endswith(
        '"totalPrice":5000,"totalTax":20,"totalDiscount":0,"processing":false,'
        '"paymentInProgress":false,"orderReference":"","paymentStatus":"",'
        '"lastChange":"0001-01-01T00:00:00Z"}'
    )


def test_state_json_is_a_fresh_structure() -> None:
    s = handle_set_delivery(cart_with("a"), set_delivery([1]))
    j = state_to_json(s)
    j["items"].clear()
    j["deliveries"][0]["items"].append(5)
    assert state_to_json(s)["items"][0]["sku"] == "a"
    assert state_to_json(s)["deliveries"][0]["items"] == [1]


# --------------------------------------------------------------------------- property tests

SKUS = st.sampled_from(["a", "b", "c", ""])
STORES = st.one_of(st.none(), st.sampled_from(["s1", "s2", ""]))
SMALL_ID = st.integers(0, 6)
QTY = st.integers(-2, 4) | st.sampled_from([2**31 - 1, -(2**31)])
PRICE = st.integers(-1000, 100000) | st.sampled_from([MAX64, MIN64, 2**62, -(2**40)])
TAX = st.sampled_from([0, 600, 1200, 2500, -10000, -10001, -20000, 2**31 - 1])
OPT = st.one_of(st.none(), st.text(max_size=3))

PICKUP = st.builds(pickup, id=st.text(max_size=3), name=OPT, city=OPT, zip=OPT, country=OPT)
ADD_REQUEST = st.builds(add_request, quantity=QTY, sku=SKUS, storeId=STORES)
MESSAGES = st.one_of(
    st.tuples(
        st.just("AddItem"),
        st.builds(
            add_item,
            quantity=QTY,
            price=PRICE,
            orgPrice=PRICE,
            sku=SKUS,
            tax=TAX,
            storeId=STORES,
            outlet=OPT,
            parentId=st.none() | st.integers(0, 2**32 - 1),
        ),
    ),
    st.tuples(st.just("AddRequest"), ADD_REQUEST),
    st.tuples(
        st.just("SetCartRequest"),
        st.builds(set_cart, st.none() | st.lists(st.none() | ADD_REQUEST, max_size=4)),
    ),
    st.tuples(st.just("RemoveItem"), st.builds(remove_item, SMALL_ID)),
    st.tuples(st.just("ChangeQuantity"), st.builds(change_qty, SMALL_ID, QTY)),
    st.tuples(
        st.just("SetDelivery"),
        st.builds(
            set_delivery,
            st.none() | st.lists(SMALL_ID, max_size=3),
            st.text(max_size=3),
            st.none() | PICKUP,
        ),
    ),
    st.tuples(
        st.just("SetPickupPoint"),
        st.builds(set_pickup, SMALL_ID, id=st.text(max_size=3), name=OPT, zip=OPT),
    ),
    st.tuples(st.just("RemoveDelivery"), st.builds(remove_delivery, SMALL_ID)),
    st.tuples(st.just("OrderCreated"), st.builds(order_created, st.text(max_size=3), SKUS)),
    st.tuples(
        st.just("InitializeCheckout"),
        st.builds(init_checkout, st.text(max_size=3), SKUS, st.booleans()),
    ),
)
CATALOG = st.none() | st.just({"a": {"sku": "a", "price": 500, "orgPrice": 900, "tax": 1200}})


def _wrap(x: int) -> int:
    return ctypes.c_int64(x & 0xFFFF_FFFF_FFFF_FFFF).value


def _oracle_totals(s: CartState) -> tuple[list[tuple[int, int]], int, int, int]:
    """Totals recomputed independently (ctypes wrap, exact Fraction truncation)."""
    per_item = []
    price_sum = tax_sum = disc_sum = 0
    for it in s.items:
        total = _wrap(it.price * it.qty)
        div = _wrap(10000 + it.taxRate)
        tax = 0 if div == 0 else _wrap(math.trunc(Fraction(_wrap(total * it.taxRate), div)))
        per_item.append((total, tax))
        price_sum = _wrap(price_sum + total)
        tax_sum = _wrap(tax_sum + tax)
        disc_sum = _wrap(disc_sum + _wrap(max(_wrap(it.orgPrice - it.price), 0) * it.qty))
    price_sum = _wrap(price_sum + sum(d.price for d in s.deliveries))
    return per_item, price_sum, tax_sum, disc_sum


@settings(max_examples=300, deadline=None)
@given(st.lists(MESSAGES, max_size=25), CATALOG)
def test_random_sequences_never_mutate_and_keep_totals(
    seq: list[tuple[str, dict[str, Any]]], catalog: dict | None
) -> None:
    state = empty_cart("c")
    history: list[tuple[CartState, CartState, dict[str, Any]]] = []
    msgs_before = copy.deepcopy(seq)
    catalog_before = copy.deepcopy(catalog)
    for n, (kind, msg) in enumerate(seq):
        history.append((state, copy.deepcopy(state), state_to_json(state)))
        try:
            new = DEFAULT_HANDLERS[kind](state, msg, catalog)
        except HandlerError as err:
            assert str(err) in {
                "invalid quantity",
                "item not found",
                "no items",
                "item already has a delivery",
                "delivery not found",
            }
            continue
        state = new.with_last_change(f"line {n}")
        per_item, price, tax, disc = _oracle_totals(state)
        assert [(it.totalPrice, it.tax) for it in state.items] == per_item
        assert (state.totalPrice, state.totalTax, state.totalDiscount) == (price, tax, disc)
        assert all(it.id <= state.last_item_id for it in state.items)
        assert len({it.id for it in state.items}) == len(state.items)
        assert all(d.id <= state.last_delivery_id for d in state.deliveries)
        assert all(d.price == 4900 for d in state.deliveries)
    for kept, snapshot, kept_json in history:
        assert kept == snapshot
        assert state_to_json(kept) == kept_json
    assert seq == msgs_before
    assert catalog == catalog_before


def test_handlers_leave_input_unchanged_on_success() -> None:
    s = handle_set_delivery(cart_with("a", "b"), set_delivery([1], pp=pickup(id="p")))
    snap = copy.deepcopy(s)
    outs = [
        handle_add_item(s, add_item(sku="a", quantity=2)),
        handle_add_request(s, add_request(sku="b", quantity=2)),
        handle_set_cart_request(s, set_cart([add_request(sku="z", quantity=1)])),
        handle_remove_item(s, remove_item(1)),
        handle_change_quantity(s, change_qty(2, 9)),
        handle_change_quantity(s, change_qty(1, 0)),
        handle_set_delivery(s, set_delivery([2])),
        handle_set_pickup_point(s, set_pickup(1, id="q")),
        handle_remove_delivery(s, remove_delivery(1)),
        handle_order_created(s, order_created("o", "x")),
        handle_initialize_checkout(s, init_checkout("o", "x", True)),
    ]
    assert s == snap
    assert all(o != s for o in outs)
    assert isinstance(s.deliveries[0], Delivery)
