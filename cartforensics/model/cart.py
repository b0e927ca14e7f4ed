"""The cart model: immutable state values and pure handlers (docs/model.md is the contract).

Every handler has the same shape, ``handler(state, msg, catalog=None) -> CartState``:

- ``state`` is never changed (all values are frozen dataclasses holding tuples), so every point
  of a replay's history can be kept and shared without copying;
- ``msg`` is the decoded message as a dict with every json key present (docs/model.md);
- ``catalog`` (sku -> dict of AddItem fields, missing keys = zero values, None = all zero) is
  only read by AddRequest and SetCartRequest; the other handlers accept and ignore it;
- an error raises :class:`HandlerError` whose ``str()`` is the exact error text, and the caller
  simply keeps the old state.

So the replay calls every handler the same way, and a handler of one's own (say ``AddVoucher``)
is registered by giving it the same three-argument signature::

    handlers = dict(DEFAULT_HANDLERS)
    try:
        state = handlers[type_name](state, msg, catalog)
        state = state.with_last_change("2024-01-02T03:04:05Z")
    except HandlerError as err:
        error_text = str(err)          # state is unchanged
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "same_value",
    "DEFAULT_HANDLERS",
    "DELIVERY_PRICE",
    "DEFAULT_TAX_RATE",
    "Catalog",
    "CartState",
    "Delivery",
    "Handler",
    "HandlerError",
    "Item",
    "PickupPoint",
    "empty_cart",
    "go_div",
    "handle_add_item",
    "handle_add_request",
    "handle_change_quantity",
    "handle_initialize_checkout",
    "handle_order_created",
    "handle_remove_delivery",
    "handle_remove_item",
    "handle_set_cart_request",
    "handle_set_delivery",
    "handle_set_pickup_point",
    "i64",
    "recompute_totals",
    "state_to_json",
]

DELIVERY_PRICE = 4900
DEFAULT_TAX_RATE = 2500

Catalog = Mapping[str, Mapping[str, Any] | None]
Msg = Mapping[str, Any]


# --------------------------------------------------------------------------- Go int64 arithmetic


def i64(x: int) -> int:
    """Wrap ``x`` to a signed 64-bit integer (Go int64 two's-complement overflow)."""
    return ((x + (1 << 63)) & 0xFFFF_FFFF_FFFF_FFFF) - (1 << 63)


def go_div(a: int, b: int) -> int:
    """Go's int64 ``a / b``: truncates toward zero, wraps (MinInt64 / -1 == MinInt64).

    Raises ZeroDivisionError when ``b == 0`` (Go panics; the handlers never divide by zero).
    """
    q = abs(a) // abs(b)
    if (a < 0) != (b < 0):
        q = -q
    return i64(q)


# --------------------------------------------------------------------------- values


class HandlerError(Exception):
    """A handler refused a message; ``str(err)`` is the exact error text of docs/model.md."""


@dataclass(frozen=True, slots=True)
class PickupPoint:
    """A delivery's pickup point; the optional fields are None when absent."""

    id: str = ""
    name: str | None = None
    address: str | None = None
    city: str | None = None
    zip: str | None = None
    country: str | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """One cart line; field names are the state JSON keys, in the state JSON order."""

    id: int
    itemId: int = 0
    sku: str = ""
    name: str = ""
    image: str = ""
    price: int = 0
    orgPrice: int = 0
    qty: int = 0
    totalPrice: int = 0
    tax: int = 0
    taxRate: int = 0
    stock: int = 0
    type: str = ""
    brand: str = ""
    category: str = ""
    category2: str = ""
    category3: str = ""
    category4: str = ""
    category5: str = ""
    disclaimer: str = ""
    sellerId: str = ""
    sellerName: str = ""
    outlet: str | None = None
    storeId: str | None = None
    parentId: int | None = None
    unresolved: bool = False
    # derived, not in the state JSON: max(orgPrice - price, 0) * qty in int64
    discount: int = 0


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery: ``items`` holds item ids, as given (a repeated id stays repeated)."""

    id: int
    provider: str = ""
    price: int = DELIVERY_PRICE
    items: tuple[int, ...] = ()
    pickupPoint: PickupPoint | None = None


@dataclass(frozen=True, slots=True)
class CartState:
    """The whole cart; ``last_*`` are hidden from the state JSON except ``last_change``."""

    id: str
    items: tuple[Item, ...] = ()
    deliveries: tuple[Delivery, ...] = ()
    totalPrice: int = 0
    totalTax: int = 0
    totalDiscount: int = 0
    processing: bool = False
    paymentInProgress: bool = False
    orderReference: str = ""
    paymentStatus: str = ""
    last_item_id: int = 0
    last_delivery_id: int = 0
    last_change: str | None = None

    def with_last_change(self, text: str | None) -> CartState:
        """A copy with ``last_change`` set to ``text`` (the lastChange shown in the JSON)."""
        return _replace(self, last_change=text)


Handler = Callable[[CartState, Msg, Catalog | None], CartState]


def empty_cart(cart_id: str) -> CartState:
    """The state of a cart before any line is applied."""
    return CartState(id=cart_id)


# --------------------------------------------------------------------------- totals


_REPLACERS: dict[type, Callable[..., Any]] = {}


def _replacer(cls: type) -> Callable[..., Any]:
    """A copy-with-changes function written for ``cls``: each slot is filled through its
    descriptor, with no per-field loop (the class's ``__init__`` is not run)."""
    names = [f.name for f in dataclasses.fields(cls)]
    env: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = ["def replace(obj, ch):", "    new = _new(_cls)"]
    for i, name in enumerate(names):
        d = cls.__dict__[name]
        env[f"_s{i}"] = d.__set__
        env[f"_g{i}"] = d.__get__
        lines.append(f"    _s{i}(new, ch[{name!r}] if {name!r} in ch else _g{i}(obj))")
    lines.append("    return new")
    exec("\n".join(lines), env)  # noqa: S102 - generated from the dataclass's own fields
    return env["replace"]


def _replace(obj: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` for these frozen slotted values, several times faster."""
    cls = type(obj)
    fn = _REPLACERS.get(cls)
    if fn is None:
        fn = _REPLACERS[cls] = _replacer(cls)
    return fn(obj, changes)


def _priced(item: Item, **changes: Any) -> Item:
    """The item with ``changes`` applied and its totalPrice, tax and (hidden) discount
    computed (int64 math), in one copy."""
    price = changes.get("price", item.price)
    qty = changes.get("qty", item.qty)
    rate = changes.get("taxRate", item.taxRate)
    org = changes.get("orgPrice", item.orgPrice)
    total = i64(price * qty)
    divisor = i64(10000 + rate)
    tax = 0 if divisor == 0 else go_div(i64(total * rate), divisor)
    discount = i64(max(i64(org - price), 0) * qty)
    if not changes and total == item.totalPrice and tax == item.tax \
            and discount == item.discount:
        return item
    return _replace(item, totalPrice=total, tax=tax, discount=discount, **changes)


def _summed(state: CartState, **changes: Any) -> CartState:
    """Apply ``changes`` and set the cart's totals from its (already priced) items."""
    items = changes.get("items", state.items)
    deliveries = changes.get("deliveries", state.deliveries)
    return _replace(
        state,
        totalPrice=i64(sum(it.totalPrice for it in items) + sum(d.price for d in deliveries)),
        totalTax=i64(sum(it.tax for it in items)),
        totalDiscount=i64(sum(it.discount for it in items)),
        **changes,
    )


def _swap_item(state: CartState, index: int, new: Item, **changes: Any) -> CartState:
    """Replace one (priced) item and move the totals by its difference: int64 sums wrap
    modulo 2**64, so this equals summing all items again."""
    old = state.items[index]
    return _replace(
        state,
        items=state.items[:index] + (new,) + state.items[index + 1 :],
        totalPrice=i64(state.totalPrice - old.totalPrice + new.totalPrice),
        totalTax=i64(state.totalTax - old.tax + new.tax),
        totalDiscount=i64(state.totalDiscount - old.discount + new.discount),
        **changes,
    )


def _push_item(state: CartState, item: Item) -> CartState:
    """Append a (priced) item and add it to the totals."""
    return _replace(
        state,
        items=state.items + (item,),
        last_item_id=item.id,
        totalPrice=i64(state.totalPrice + item.totalPrice),
        totalTax=i64(state.totalTax + item.tax),
        totalDiscount=i64(state.totalDiscount + item.discount),
    )


def recompute_totals(state: CartState) -> CartState:
    """Recompute every item's totalPrice and tax and the cart's three totals (int64 math).

    The default handlers keep totals up to date as they go; a handler of one's own that
    changes items or deliveries can end with this."""
    return _summed(state, items=tuple(_priced(it) for it in state.items))


# --------------------------------------------------------------------------- helpers


def _tax_rate(tax: int) -> int:
    return tax if tax != 0 else DEFAULT_TAX_RATE


def _item_from_fields(
    item_id: int, fields: Mapping[str, Any], quantity: int, store_id: str | None
) -> Item:
    """A new item from AddItem json fields (missing keys = zero values)."""
    g = fields.get
    return Item(
        id=item_id,
        itemId=g("item_id") or 0,
        sku=g("sku") or "",
        name=g("name") or "",
        image=g("image") or "",
        price=g("price") or 0,
        orgPrice=g("orgPrice") or 0,
        qty=quantity,
        taxRate=_tax_rate(g("tax") or 0),
        stock=g("stock") or 0,
        type=g("articleType") or "",
        brand=g("brand") or "",
        category=g("category") or "",
        category2=g("category2") or "",
        category3=g("category3") or "",
        category4=g("category4") or "",
        category5=g("category5") or "",
        disclaimer=g("disclaimer") or "",
        sellerId=g("sellerId") or "",
        sellerName=g("sellerName") or "",
        outlet=g("outlet"),
        storeId=store_id,
        parentId=g("parentId"),
        unresolved=False,
    )


def _add_qty(state: CartState, index: int, quantity: int) -> CartState:
    item = state.items[index]
    return _swap_item(state, index, _priced(item, qty=i64(item.qty + quantity)))


def _replace_at(seq: tuple[Any, ...], index: int, value: Any) -> tuple[Any, ...]:
    return seq[:index] + (value,) + seq[index + 1 :]


def _find(seq: Iterable[Any], ident: int) -> int:
    """Index of the first element whose ``id`` is ``ident``, or -1."""
    for i, x in enumerate(seq):
        if x.id == ident:
            return i
    return -1


def _remove_item(state: CartState, item_id: int) -> CartState:
    """Remove the item and every occurrence of its id from every delivery (no totals)."""
    index = _find(state.items, item_id)
    if index < 0:
        raise HandlerError("item not found")
    deliveries = tuple(
        _replace(d, items=tuple(i for i in d.items if i != item_id))
        if item_id in d.items
        else d
        for d in state.deliveries
    )
    return _summed(
        state, items=state.items[:index] + state.items[index + 1 :], deliveries=deliveries
    )


def _pickup_point(p: Mapping[str, Any]) -> PickupPoint:
    return PickupPoint(
        id=p.get("id") or "",
        name=p.get("name"),
        address=p.get("address"),
        city=p.get("city"),
        zip=p.get("zip"),
        country=p.get("country"),
    )


def _add_request(state: CartState, msg: Msg, catalog: Catalog | None) -> CartState:
    """AddRequest without the final totals."""
    quantity = msg.get("quantity") or 0
    if quantity < 1:
        raise HandlerError("invalid quantity")
    sku = msg.get("sku") or ""
    for i, it in enumerate(state.items):
        if it.sku == sku:
            return _add_qty(state, i, quantity)
    new_id = i64(state.last_item_id + 1)
    store_id = msg.get("storeId")
    if catalog is not None and sku in catalog:
        # The catalog's fields, but sku, quantity and storeId from the request;
        # a None entry (json null) is an empty AddItem.
        fields = catalog[sku] or {}
        item = _replace(_item_from_fields(new_id, fields, quantity, store_id), sku=sku)
    else:
        item = Item(
            id=new_id,
            sku=sku,
            qty=quantity,
            taxRate=DEFAULT_TAX_RATE,
            storeId=store_id,
            unresolved=True,
        )
    return _push_item(state, _priced(item))


# --------------------------------------------------------------------------- handlers


def handle_add_item(state: CartState, msg: Msg, catalog: Catalog | None = None) -> CartState:
    """AddItem: merge into the item with the same sku and storeId, else add a new item."""
    quantity = msg.get("quantity") or 0
    if quantity < 1:
        raise HandlerError("invalid quantity")
    sku = msg.get("sku") or ""
    store_id = msg.get("storeId")
    for i, it in enumerate(state.items):
        if it.sku == sku and it.storeId == store_id:
            return _add_qty(state, i, quantity)
    item = _item_from_fields(i64(state.last_item_id + 1), msg, quantity, store_id)
    return _push_item(state, _priced(item))


def handle_add_request(state: CartState, msg: Msg, catalog: Catalog | None = None) -> CartState:
    """AddRequest: merge by sku only, else add from the catalog, else add an unresolved item.

    A catalog item takes the catalog entry's fields but sku, quantity and storeId from the request.
    """
    return _add_request(state, msg, catalog)


def handle_set_cart_request(
    state: CartState, msg: Msg, catalog: Catalog | None = None
) -> CartState:
    """SetCartRequest: clear the items, then AddRequest each entry; any error fails it all."""
    new = _summed(state, items=())
    for entry in msg.get("items") or ():
        new = _add_request(new, entry if entry is not None else {}, catalog)
    return new


def handle_remove_item(state: CartState, msg: Msg, catalog: Catalog | None = None) -> CartState:
    """RemoveItem: remove the item ``Id`` and its id from every delivery."""
    return _remove_item(state, msg.get("Id") or 0)


def handle_change_quantity(state: CartState, msg: Msg, catalog: Catalog | None = None) -> CartState:
    """ChangeQuantity: set the qty of item ``Id``; a quantity <= 0 removes it."""
    item_id = msg.get("Id") or 0
    quantity = msg.get("quantity") or 0
    index = _find(state.items, item_id)
    if index < 0:
        raise HandlerError("item not found")
    if quantity <= 0:
        return _remove_item(state, item_id)
    return _swap_item(state, index, _priced(state.items[index], qty=quantity))


def handle_set_delivery(state: CartState, msg: Msg, catalog: Catalog | None = None) -> CartState:
    """SetDelivery: a new delivery for the given items, or for every item without one."""
    delivered = {i for d in state.deliveries for i in d.items}
    ids: tuple[int, ...] = tuple(msg.get("items") or ())
    if not ids:
        ids = tuple(it.id for it in state.items if it.id not in delivered)
        if not ids:
            raise HandlerError("no items")
    else:
        item_ids = {it.id for it in state.items}
        for i in ids:
            if i not in item_ids:
                raise HandlerError("item not found")
            if i in delivered:
                raise HandlerError("item already has a delivery")
    pp = msg.get("pickupPoint")
    delivery = Delivery(
        id=i64(state.last_delivery_id + 1),
        provider=msg.get("provider") or "",
        price=DELIVERY_PRICE,
        items=ids,
        pickupPoint=_pickup_point(pp) if pp is not None else None,
    )
    return _summed(
        state, deliveries=state.deliveries + (delivery,), last_delivery_id=delivery.id
    )


def handle_set_pickup_point(
    state: CartState, msg: Msg, catalog: Catalog | None = None
) -> CartState:
    """SetPickupPoint: set the pickup point of delivery ``deliveryId``."""
    index = _find(state.deliveries, msg.get("deliveryId") or 0)
    if index < 0:
        raise HandlerError("delivery not found")
    d = _replace(state.deliveries[index], pickupPoint=_pickup_point(msg))
    return _replace(state, deliveries=_replace_at(state.deliveries, index, d))


def handle_remove_delivery(state: CartState, msg: Msg, catalog: Catalog | None = None) -> CartState:
    """RemoveDelivery: remove delivery ``id``."""
    index = _find(state.deliveries, msg.get("id") or 0)
    if index < 0:
        raise HandlerError("delivery not found")
    deliveries = state.deliveries[:index] + state.deliveries[index + 1 :]
    return _summed(state, deliveries=deliveries)


def handle_order_created(state: CartState, msg: Msg, catalog: Catalog | None = None) -> CartState:
    """OrderCreated: set orderReference and paymentStatus; paymentInProgress = False."""
    return _replace(
        state,
        orderReference=msg.get("orderId") or "",
        paymentStatus=msg.get("status") or "",
        paymentInProgress=False,
    )


def handle_initialize_checkout(
    state: CartState, msg: Msg, catalog: Catalog | None = None
) -> CartState:
    """InitializeCheckout: set orderReference, paymentStatus and paymentInProgress."""
    return _replace(
        state,
        orderReference=msg.get("orderId") or "",
        paymentStatus=msg.get("status") or "",
        paymentInProgress=bool(msg.get("paymentInProgress")),
    )


DEFAULT_HANDLERS: dict[str, Handler] = {
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


# --------------------------------------------------------------------------- state JSON


def _pickup_point_json(p: PickupPoint | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "id": p.id,
        "name": p.name,
        "address": p.address,
        "city": p.city,
        "zip": p.zip,
        "country": p.country,
    }


def _item_json(it: Item) -> dict[str, Any]:
    return {
        "id": it.id,
        "itemId": it.itemId,
        "sku": it.sku,
        "name": it.name,
        "image": it.image,
        "price": it.price,
        "orgPrice": it.orgPrice,
        "qty": it.qty,
        "totalPrice": it.totalPrice,
        "tax": it.tax,
        "taxRate": it.taxRate,
        "stock": it.stock,
        "type": it.type,
        "brand": it.brand,
        "category": it.category,
        "category2": it.category2,
        "category3": it.category3,
        "category4": it.category4,
        "category5": it.category5,
        "disclaimer": it.disclaimer,
        "sellerId": it.sellerId,
        "sellerName": it.sellerName,
        "outlet": it.outlet,
        "storeId": it.storeId,
        "parentId": it.parentId,
        "unresolved": it.unresolved,
    }


def _delivery_json(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "provider": d.provider,
        "price": d.price,
        "items": list(d.items),
        "pickupPoint": _pickup_point_json(d.pickupPoint),
    }


def state_to_json(state: CartState) -> dict[str, Any]:
    """The state JSON of docs/model.md as a fresh dict, keys in the contract's order."""
    return {
        "id": state.id,
        "items": [_item_json(it) for it in state.items],
        "deliveries": [_delivery_json(d) for d in state.deliveries],
        "totalPrice": state.totalPrice,
        "totalTax": state.totalTax,
        "totalDiscount": state.totalDiscount,
        "processing": state.processing,
        "paymentInProgress": state.paymentInProgress,
        "orderReference": state.orderReference,
        "paymentStatus": state.paymentStatus,
        "lastChange": state.last_change,
    }


_JSON_TYPES = frozenset({str, int, float, bool, type(None), dict, list})


def same_value(a: Any, b: Any) -> bool:
    """``a == b`` and of the same type (``1``, ``1.0`` and ``True`` are equal to ``==``, not
    here), at every level of tuples and dataclasses (a CartState); the values of a dict or a
    list are compared by ``==``."""
    t = type(a)
    if t is not type(b):
        return False
    if t in _JSON_TYPES:  # the values of a state JSON: most calls, answered at once
        return a == b
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if dataclasses.is_dataclass(a):
        return all(same_value(getattr(a, f.name), getattr(b, f.name))
                   for f in dataclasses.fields(a))
    return bool(a == b)
