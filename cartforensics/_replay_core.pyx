# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled replay core: the ten default types on a mutable C-level cart.

It is a faster twin of :mod:`cartforensics.cart`'s handlers and of the replay loop in
:mod:`cartforensics.replay`, and must agree with them exactly (tests/test_replay_core.py).
Payloads are parsed by orjson and accepted only when provably what Go builds (the same proof
as ``registry._fast_decode``, stricter where that is simpler); every other payload is decoded
by the registry's reference decoder. Anything the core does not model (a type whose schema or
handler is not the default one, a catalog entry that is not plain ints/strings, a Python
exception anywhere) raises :class:`Fallback`, and the caller replays that whole cart on the
reference core.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from libc.stdint cimport INT64_MAX, INT64_MIN, int64_t, uint64_t

import orjson

from .cart import (
    DEFAULT_HANDLERS,
    CartState,
    Delivery,
    Item,
    PickupPoint,
)
from .gojson import go_quote
from .registry import DEFAULT_SCHEMAS

cdef object _loads = orjson.loads
cdef object _JSONDecodeError = orjson.JSONDecodeError

cdef int64_t DELIVERY_PRICE = 4900
cdef int64_t DEFAULT_TAX_RATE = 2500
cdef int64_t I64_MIN = INT64_MIN
cdef int64_t I64_MAX = INT64_MAX

# outcome codes: the index in replay.OUTCOMES
cdef enum:
    APPLIED = 0
    MALFORMED = 1
    UNKNOWN_TYPE = 2
    PAYLOAD_ERROR = 3
    APPLY_ERROR = 4
    TOO_LONG = 5
    NOT_REACHED = 6

TYPE_NAMES = (
    "AddRequest", "AddItem", "RemoveItem", "ChangeQuantity", "SetDelivery", "SetPickupPoint",
    "RemoveDelivery", "SetCartRequest", "OrderCreated", "InitializeCheckout",
)
cdef enum:
    KIND_UNMODELLED_C = -1
    KIND_UNKNOWN_C = -2
    T_ADD_REQUEST = 0
    T_ADD_ITEM = 1
    T_REMOVE_ITEM = 2
    T_CHANGE_QUANTITY = 3
    T_SET_DELIVERY = 4
    T_SET_PICKUP_POINT = 5
    T_REMOVE_DELIVERY = 6
    T_SET_CART_REQUEST = 7
    T_ORDER_CREATED = 8
    T_INITIALIZE_CHECKOUT = 9

# handler error codes -> docs/model.md's texts
ERROR_TEXTS = (None, "invalid quantity", "item not found", "item already has a delivery",
               "no items", "delivery not found")
cdef tuple _ERRORS = ERROR_TEXTS
TOO_LONG_ERROR = "scanner error: bufio.Scanner: token too long"


class Fallback(Exception):
    """The core cannot replay this cart exactly: replay it on the reference core."""


# ------------------------------------------------------------------------------ int64 math

cdef inline int64_t wadd(int64_t a, int64_t b) nogil:
    return <int64_t>(<uint64_t>a + <uint64_t>b)


cdef inline int64_t wsub(int64_t a, int64_t b) nogil:
    return <int64_t>(<uint64_t>a - <uint64_t>b)


cdef inline int64_t wmul(int64_t a, int64_t b) nogil:
    return <int64_t>(<uint64_t>a * <uint64_t>b)


cdef inline int64_t gdiv(int64_t a, int64_t b) nogil:
    """Go's a / b for b != 0: truncates toward zero; MinInt64 / -1 wraps to MinInt64."""
    if b == -1:
        return <int64_t>(<uint64_t>0 - <uint64_t>a)
    return a / b


# ------------------------------------------------------------------------------ the cart

cdef class CItem:
    cdef public int64_t id, itemId, price, orgPrice, qty, totalPrice, tax, taxRate, stock
    cdef public int64_t discount
    cdef public object sku, name, image, type, brand, category, category2, category3
    cdef public object category4, category5, disclaimer, sellerId, sellerName
    cdef public object outlet, storeId, parentId
    cdef public bint unresolved

    cdef void price_it(self):
        """totalPrice, tax and discount from price, qty, taxRate, orgPrice (cart._priced)."""
        cdef int64_t total = wmul(self.price, self.qty)
        cdef int64_t divisor = wadd(10000, self.taxRate)
        cdef int64_t d = wsub(self.orgPrice, self.price)
        self.totalPrice = total
        self.tax = 0 if divisor == 0 else gdiv(wmul(total, self.taxRate), divisor)
        self.discount = wmul(d if d > 0 else 0, self.qty)


cdef CItem _clone_item(CItem a):
    cdef CItem it = CItem.__new__(CItem)
    it.id = a.id
    it.itemId = a.itemId
    it.price = a.price
    it.orgPrice = a.orgPrice
    it.qty = a.qty
    it.totalPrice = a.totalPrice
    it.tax = a.tax
    it.taxRate = a.taxRate
    it.stock = a.stock
    it.discount = a.discount
    it.sku = a.sku
    it.name = a.name
    it.image = a.image
    it.type = a.type
    it.brand = a.brand
    it.category = a.category
    it.category2 = a.category2
    it.category3 = a.category3
    it.category4 = a.category4
    it.category5 = a.category5
    it.disclaimer = a.disclaimer
    it.sellerId = a.sellerId
    it.sellerName = a.sellerName
    it.outlet = a.outlet
    it.storeId = a.storeId
    it.parentId = a.parentId
    it.unresolved = a.unresolved
    return it


cdef CItem _blank_item(int64_t ident):
    cdef CItem it = CItem.__new__(CItem)
    it.id = ident
    it.sku = it.name = it.image = it.type = it.brand = ""
    it.category = it.category2 = it.category3 = it.category4 = it.category5 = ""
    it.disclaimer = it.sellerId = it.sellerName = ""
    it.outlet = it.storeId = it.parentId = None
    return it


cdef class CDelivery:
    cdef public int64_t id, price
    cdef public object provider, items, pickupPoint  # items: tuple of ints


cdef class CCart:
    cdef public object id
    cdef public list items, deliveries
    cdef public int64_t totalPrice, totalTax, totalDiscount, last_item_id, last_delivery_id
    cdef public bint processing, paymentInProgress
    cdef public object orderReference, paymentStatus, last_change

    cdef void summed(self) except *:
        """Totals from the (priced) items and the deliveries (cart._summed)."""
        cdef int64_t tp = 0, tt = 0, td = 0
        cdef CItem it
        cdef CDelivery d
        for it in self.items:
            tp = wadd(tp, it.totalPrice)
            tt = wadd(tt, it.tax)
            td = wadd(td, it.discount)
        for d in self.deliveries:
            tp = wadd(tp, d.price)
        self.totalPrice = tp
        self.totalTax = tt
        self.totalDiscount = td

    cdef void push(self, CItem it) except *:
        self.items.append(it)
        self.last_item_id = it.id
        self.totalPrice = wadd(self.totalPrice, it.totalPrice)
        self.totalTax = wadd(self.totalTax, it.tax)
        self.totalDiscount = wadd(self.totalDiscount, it.discount)

    cdef void set_qty(self, CItem it, int64_t qty) except *:
        """qty changed in place and the totals moved by the item's difference (_swap_item)."""
        cdef int64_t tp = it.totalPrice, tt = it.tax, td = it.discount
        it.qty = qty
        it.price_it()
        self.totalPrice = wadd(wsub(self.totalPrice, tp), it.totalPrice)
        self.totalTax = wadd(wsub(self.totalTax, tt), it.tax)
        self.totalDiscount = wadd(wsub(self.totalDiscount, td), it.discount)


cpdef CCart clone(CCart a):
    """An independent copy (a checkpoint): items and deliveries copied, their immutable
    values shared."""
    cdef CCart c = CCart.__new__(CCart)
    cdef CItem it
    cdef CDelivery d, e
    c.id = a.id
    c.items = [_clone_item(it) for it in a.items]
    c.deliveries = []
    for d in a.deliveries:
        e = CDelivery.__new__(CDelivery)
        e.id = d.id
        e.price = d.price
        e.provider = d.provider
        e.items = d.items
        e.pickupPoint = d.pickupPoint
        c.deliveries.append(e)
    c.totalPrice = a.totalPrice
    c.totalTax = a.totalTax
    c.totalDiscount = a.totalDiscount
    c.last_item_id = a.last_item_id
    c.last_delivery_id = a.last_delivery_id
    c.processing = a.processing
    c.paymentInProgress = a.paymentInProgress
    c.orderReference = a.orderReference
    c.paymentStatus = a.paymentStatus
    c.last_change = a.last_change
    return c


cdef int64_t _as_i64(object v) except? -1:
    if type(v) is not int or not (I64_MIN <= v <= I64_MAX):
        raise Fallback("not an int64")
    return <int64_t>v


cdef CItem _item_from_state(object it):
    cdef CItem c = CItem.__new__(CItem)
    c.id = _as_i64(it.id)
    c.itemId = _as_i64(it.itemId)
    c.price = _as_i64(it.price)
    c.orgPrice = _as_i64(it.orgPrice)
    c.qty = _as_i64(it.qty)
    c.totalPrice = _as_i64(it.totalPrice)
    c.tax = _as_i64(it.tax)
    c.taxRate = _as_i64(it.taxRate)
    c.stock = _as_i64(it.stock)
    c.discount = _as_i64(it.discount)
    c.sku = it.sku
    c.name = it.name
    c.image = it.image
    c.type = it.type
    c.brand = it.brand
    c.category = it.category
    c.category2 = it.category2
    c.category3 = it.category3
    c.category4 = it.category4
    c.category5 = it.category5
    c.disclaimer = it.disclaimer
    c.sellerId = it.sellerId
    c.sellerName = it.sellerName
    c.outlet = it.outlet
    c.storeId = it.storeId
    c.parentId = it.parentId
    if type(it.unresolved) is not bool:
        raise Fallback("unresolved is not a bool")
    c.unresolved = it.unresolved
    return c


cpdef CCart from_state(object s):
    """A mutable cart from a :class:`CartState` (Fallback if a field is not as modelled)."""
    cdef CCart c = CCart.__new__(CCart)
    cdef CDelivery d
    if type(s) is not CartState:
        raise Fallback("not a CartState")
    c.id = s.id
    c.items = [_item_from_state(it) for it in s.items]
    c.deliveries = []
    for x in s.deliveries:
        d = CDelivery.__new__(CDelivery)
        d.id = _as_i64(x.id)
        d.price = _as_i64(x.price)
        d.provider = x.provider
        d.items = x.items
        d.pickupPoint = x.pickupPoint
        c.deliveries.append(d)
    c.totalPrice = _as_i64(s.totalPrice)
    c.totalTax = _as_i64(s.totalTax)
    c.totalDiscount = _as_i64(s.totalDiscount)
    c.last_item_id = _as_i64(s.last_item_id)
    c.last_delivery_id = _as_i64(s.last_delivery_id)
    if type(s.processing) is not bool or type(s.paymentInProgress) is not bool:
        raise Fallback("flags are not bools")
    c.processing = s.processing
    c.paymentInProgress = s.paymentInProgress
    c.orderReference = s.orderReference
    c.paymentStatus = s.paymentStatus
    c.last_change = s.last_change
    return c


cpdef object to_state(CCart c):
    """The immutable :class:`CartState` of a mutable cart."""
    cdef CItem it
    cdef CDelivery d
    items = tuple([
        Item(it.id, it.itemId, it.sku, it.name, it.image, it.price, it.orgPrice, it.qty,
             it.totalPrice, it.tax, it.taxRate, it.stock, it.type, it.brand, it.category,
             it.category2, it.category3, it.category4, it.category5, it.disclaimer,
             it.sellerId, it.sellerName, it.outlet, it.storeId, it.parentId,
             bool(it.unresolved), it.discount)
        for it in c.items
    ])
    deliveries = tuple([Delivery(d.id, d.provider, d.price, d.items, d.pickupPoint)
                        for d in c.deliveries])
    return CartState(c.id, items, deliveries, c.totalPrice, c.totalTax, c.totalDiscount,
                     bool(c.processing), bool(c.paymentInProgress), c.orderReference,
                     c.paymentStatus, c.last_item_id, c.last_delivery_id, c.last_change)


cpdef CCart empty(object cart_id):
    cdef CCart c = CCart.__new__(CCart)
    c.id = cart_id
    c.items = []
    c.deliveries = []
    c.orderReference = c.paymentStatus = ""
    c.last_change = None
    return c


# ------------------------------------------------------------------------------ handlers

# equal strings of items (names, brands, categories, ...) are shared across lines and carts:
# one object per distinct text instead of one per line that carried it (memory)
cdef dict _pool = {}


cdef inline object _i(object s):
    if s is None:
        return s
    r = _pool.get(s)
    if r is None:
        _pool[s] = s
        return s
    return r


cdef inline int64_t _int(dict msg, str key) except? -1:
    v = msg.get(key)
    if v is None:
        return 0
    return <int64_t>v


cdef inline object _str(dict msg, str key):
    v = msg.get(key)
    return "" if v is None else v


cdef int _find_item(CCart c, int64_t ident):
    cdef int i = 0
    cdef CItem it
    for it in c.items:
        if it.id == ident:
            return i
        i += 1
    return -1


cdef int _find_delivery(CCart c, int64_t ident):
    cdef int i = 0
    cdef CDelivery d
    for d in c.deliveries:
        if d.id == ident:
            return i
        i += 1
    return -1


cdef CItem _catalog_item(int64_t ident, object fields, object catalog_cache):
    """A new item from a catalog entry (cart._item_from_fields), Fallback unless plain."""
    cdef CItem it = _blank_item(ident)
    cdef int64_t tax
    g = fields.get
    it.itemId = _cat_int(g("item_id"))
    it.name = _cat_str(g("name"))
    it.image = _cat_str(g("image"))
    it.price = _cat_int(g("price"))
    it.orgPrice = _cat_int(g("orgPrice"))
    tax = _cat_int(g("tax"))
    it.taxRate = tax if tax != 0 else DEFAULT_TAX_RATE
    it.stock = _cat_int(g("stock"))
    it.type = _cat_str(g("articleType"))
    it.brand = _cat_str(g("brand"))
    it.category = _cat_str(g("category"))
    it.category2 = _cat_str(g("category2"))
    it.category3 = _cat_str(g("category3"))
    it.category4 = _cat_str(g("category4"))
    it.category5 = _cat_str(g("category5"))
    it.disclaimer = _cat_str(g("disclaimer"))
    it.sellerId = _cat_str(g("sellerId"))
    it.sellerName = _cat_str(g("sellerName"))
    o = g("outlet")
    if o is not None and type(o) is not str:
        raise Fallback("catalog outlet")
    it.outlet = o
    p = g("parentId")
    if p is not None:
        _as_i64(p)
    it.parentId = p
    return it


cdef int64_t _cat_int(object v) except? -1:
    if v is None:
        return 0
    return _as_i64(v)


cdef object _cat_str(object v):
    if v is None:
        return ""
    if type(v) is not str:
        raise Fallback("catalog string")
    return v


cdef int _add_request(CCart c, dict msg, object catalog) except -1:
    cdef int64_t quantity = _int(msg, "quantity")
    cdef CItem it
    if quantity < 1:
        return 1
    sku = _str(msg, "sku")
    for it in c.items:
        if it.sku == sku:
            c.set_qty(it, wadd(it.qty, quantity))
            return 0
    cdef int64_t new_id = wadd(c.last_item_id, 1)
    store_id = msg.get("storeId")
    if catalog is not None and sku in catalog:
        fields = catalog[sku]
        if not fields:
            fields = {}
        elif type(fields) is not dict:
            raise Fallback("catalog entry is not a dict")
        it = _catalog_item(new_id, fields, None)
        it.sku = sku
        it.qty = quantity
        it.storeId = store_id
    else:
        it = _blank_item(new_id)
        it.sku = _i(sku)
        it.qty = quantity
        it.taxRate = DEFAULT_TAX_RATE
        it.storeId = _i(store_id)
        it.unresolved = True
    it.price_it()
    c.push(it)
    return 0


cdef int _add_item(CCart c, dict msg) except -1:
    cdef int64_t quantity = _int(msg, "quantity")
    cdef CItem it
    cdef int64_t tax
    if quantity < 1:
        return 1
    sku = _str(msg, "sku")
    store_id = msg.get("storeId")
    for it in c.items:
        if it.sku == sku and it.storeId == store_id:
            c.set_qty(it, wadd(it.qty, quantity))
            return 0
    it = _blank_item(wadd(c.last_item_id, 1))
    it.itemId = _int(msg, "item_id")
    it.sku = _i(sku)
    it.name = _i(_str(msg, "name"))
    it.image = _i(_str(msg, "image"))
    it.price = _int(msg, "price")
    it.orgPrice = _int(msg, "orgPrice")
    it.qty = quantity
    tax = _int(msg, "tax")
    it.taxRate = tax if tax != 0 else DEFAULT_TAX_RATE
    it.stock = _int(msg, "stock")
    it.type = _i(_str(msg, "articleType"))
    it.brand = _i(_str(msg, "brand"))
    it.category = _i(_str(msg, "category"))
    it.category2 = _i(_str(msg, "category2"))
    it.category3 = _i(_str(msg, "category3"))
    it.category4 = _i(_str(msg, "category4"))
    it.category5 = _i(_str(msg, "category5"))
    it.disclaimer = _i(_str(msg, "disclaimer"))
    it.sellerId = _i(_str(msg, "sellerId"))
    it.sellerName = _i(_str(msg, "sellerName"))
    it.outlet = _i(msg.get("outlet"))
    it.storeId = _i(store_id)
    it.parentId = msg.get("parentId")
    it.price_it()
    c.push(it)
    return 0


cdef int _remove_item(CCart c, int64_t item_id) except -1:
    cdef int index = _find_item(c, item_id)
    cdef CDelivery d
    if index < 0:
        return 2
    for d in c.deliveries:
        if item_id in d.items:
            d.items = tuple([i for i in d.items if i != item_id])
    del c.items[index]
    c.summed()
    return 0


cdef int _set_delivery(CCart c, dict msg) except -1:
    cdef CDelivery d
    cdef CItem it
    delivered = set()
    for d in c.deliveries:
        delivered.update(d.items)
    raw = msg.get("items")
    ids = tuple(raw) if raw else ()
    if not ids:
        ids = tuple([it.id for it in c.items if it.id not in delivered])
        if not ids:
            return 4
    else:
        item_ids = {it.id for it in c.items}
        for i in ids:
            if i not in item_ids:
                return 2
            if i in delivered:
                return 3
    pp = msg.get("pickupPoint")
    d = CDelivery.__new__(CDelivery)
    d.id = wadd(c.last_delivery_id, 1)
    d.provider = _str(msg, "provider")
    d.price = DELIVERY_PRICE
    d.items = ids
    d.pickupPoint = _pickup_point(pp) if pp is not None else None
    c.deliveries.append(d)
    c.last_delivery_id = d.id
    c.summed()
    return 0


cdef object _pickup_point(dict p):
    v = p.get("id")
    return PickupPoint("" if v is None else v, p.get("name"), p.get("address"), p.get("city"),
                       p.get("zip"), p.get("country"))


cdef int _set_cart_request(CCart c, dict msg, object catalog) except -1:
    cdef list old_items = c.items
    cdef int64_t tp = c.totalPrice, tt = c.totalTax, td = c.totalDiscount
    cdef int64_t last = c.last_item_id
    cdef int err
    c.items = []
    c.summed()
    entries = msg.get("items")
    if entries:
        for entry in entries:
            err = _add_request(c, entry if entry is not None else {}, catalog)
            if err:
                c.items = old_items
                c.totalPrice = tp
                c.totalTax = tt
                c.totalDiscount = td
                c.last_item_id = last
                return err
    return 0


cdef int apply(CCart c, int kind, dict msg, object catalog) except -1:
    """Apply one decoded message; 0, or the code of the handler's error (state unchanged)."""
    cdef int index
    cdef int64_t quantity
    if kind == T_ADD_REQUEST:
        return _add_request(c, msg, catalog)
    if kind == T_ADD_ITEM:
        return _add_item(c, msg)
    if kind == T_REMOVE_ITEM:
        return _remove_item(c, _int(msg, "Id"))
    if kind == T_CHANGE_QUANTITY:
        index = _find_item(c, _int(msg, "Id"))
        if index < 0:
            return 2
        quantity = _int(msg, "quantity")
        if quantity <= 0:
            return _remove_item(c, _int(msg, "Id"))
        c.set_qty(<CItem>c.items[index], quantity)
        return 0
    if kind == T_SET_DELIVERY:
        return _set_delivery(c, msg)
    if kind == T_SET_PICKUP_POINT:
        index = _find_delivery(c, _int(msg, "deliveryId"))
        if index < 0:
            return 5
        (<CDelivery>c.deliveries[index]).pickupPoint = _pickup_point(msg)
        return 0
    if kind == T_REMOVE_DELIVERY:
        index = _find_delivery(c, _int(msg, "id"))
        if index < 0:
            return 5
        del c.deliveries[index]
        c.summed()
        return 0
    if kind == T_SET_CART_REQUEST:
        return _set_cart_request(c, msg, catalog)
    if kind == T_ORDER_CREATED:
        c.orderReference = _str(msg, "orderId")
        c.paymentStatus = _str(msg, "status")
        c.paymentInProgress = False
        return 0
    if kind == T_INITIALIZE_CHECKOUT:
        c.orderReference = _str(msg, "orderId")
        c.paymentStatus = _str(msg, "status")
        c.paymentInProgress = bool(msg.get("paymentInProgress"))
        return 0
    raise Fallback("unknown kind")


# ------------------------------------------------------------------------------ decoding
# field kinds of the default schemas
cdef enum:
    K_STR = 0
    K_I32 = 1
    K_U32 = 2
    K_I64 = 3
    K_BOOL = 4
    K_PSTR = 5      # *string
    K_PU32 = 6      # *uint32
    K_LU32 = 7      # []uint32
    K_PPICKUP = 8   # *PickupPoint
    K_LADDREQ = 9   # []*AddRequest


def _kinds_of(struct):
    from .gojson import Ptr, Slice, Struct  # noqa: F401
    out = {}
    for key, ft in struct.fields:
        k = ft.kind
        if k == "string":
            out[key] = K_STR
        elif k == "bool":
            out[key] = K_BOOL
        elif k == "int" and ft.bits == 32:
            out[key] = K_I32
        elif k == "int" and ft.bits == 64:
            out[key] = K_I64
        elif k == "uint" and ft.bits == 32:
            out[key] = K_U32
        elif k == "ptr" and ft.elem.kind == "string":
            out[key] = K_PSTR
        elif k == "ptr" and ft.elem.kind == "uint" and ft.elem.bits == 32:
            out[key] = K_PU32
        elif k == "slice" and ft.elem.kind == "uint" and ft.elem.bits == 32:
            out[key] = K_LU32
        elif k == "ptr" and ft.elem.kind == "struct" and ft.elem.name == "messages.PickupPoint":
            out[key] = K_PPICKUP
        elif k == "slice" and ft.elem.kind == "ptr" and ft.elem.elem.name == "messages.AddRequest":
            out[key] = K_LADDREQ
        else:
            raise ValueError(f"no kind for {key}")
    return out


cdef list _KINDS = [_kinds_of(DEFAULT_SCHEMAS[name]) for name in TYPE_NAMES]
cdef dict _PICKUP_KINDS = _kinds_of(DEFAULT_SCHEMAS["SetDelivery"].fields[2][1].elem)
cdef dict _ADDREQ_KINDS = _KINDS[T_ADD_REQUEST]


cdef inline bint _int_in(object v, long long lo, long long hi) except -1:
    """v is a Python int (not a bool) in [lo, hi]."""
    cdef int overflow = 0
    cdef long long x
    if type(v) is not int:
        return False
    x = PyLong_AsLongLongAndOverflow(v, &overflow)
    return overflow == 0 and lo <= x <= hi


cdef inline bint _u32(object v, bint neg_zero) except -1:
    if not _int_in(v, 0, 4294967295):
        return False
    return not (neg_zero and v == 0)


cdef Py_ssize_t _check(dict obj, dict kinds, bint neg_zero) except? -2:
    """Keys counted if every key is a field and every value provably Go's; -1 otherwise."""
    cdef Py_ssize_t n = len(obj), m
    cdef int k
    for key, v in obj.items():
        kk = kinds.get(key)
        if kk is None:
            return -1
        k = kk
        tv = type(v)
        if k == K_STR:
            if tv is not str:
                return -1
        elif k == K_I32:
            if not _int_in(v, -2147483648, 2147483647):
                return -1
        elif k == K_U32:
            if not _u32(v, neg_zero):
                return -1
        elif k == K_I64:
            if not _int_in(v, I64_MIN, I64_MAX):
                return -1
        elif k == K_BOOL:
            if tv is not bool:
                return -1
        elif k == K_PSTR:
            if v is not None and tv is not str:
                return -1
        elif k == K_PU32:
            if v is not None and not _u32(v, neg_zero):
                return -1
        elif k == K_LU32:
            if v is not None:
                if tv is not list:
                    return -1
                for x in v:
                    if not _u32(x, neg_zero):
                        return -1
        elif k == K_PPICKUP:
            if v is not None:
                if tv is not dict:
                    return -1
                m = _check(v, _PICKUP_KINDS, neg_zero)
                if m < 0:
                    return -1
                n += m
        elif k == K_LADDREQ:
            if v is not None:
                if tv is not list:
                    return -1
                for x in v:
                    if x is None:
                        continue
                    if type(x) is not dict:
                        return -1
                    m = _check(x, _ADDREQ_KINDS, neg_zero)
                    if m < 0:
                        return -1
                    n += m
        else:
            return -1
    return n


cdef Py_ssize_t _count_keys(bytes text, bint* neg_zero):
    """How many keys a valid JSON text has: strings followed (after optional whitespace) by a
    colon, escapes honoured; ``neg_zero``: the text has "-0" anywhere (as
    ``b"-0" in text``)."""
    cdef Py_ssize_t n = 0, i, size = PyBytes_GET_SIZE(text)
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(text)
    cdef unsigned char ch, prev = 0
    cdef bint in_str = False, esc = False, after_str = False
    neg_zero[0] = False
    for i in range(size):
        ch = p[i]
        if ch == 0x30 and prev == 0x2D:
            neg_zero[0] = True
        prev = ch
        if in_str:
            if esc:
                esc = False
            elif ch == 0x5C:  # backslash
                esc = True
            elif ch == 0x22:
                in_str = False
                after_str = True
        elif ch == 0x22:
            in_str = True
        elif after_str:
            if ch == 0x3A:
                n += 1
                after_str = False
            elif ch != 0x20 and ch != 0x09 and ch != 0x0A and ch != 0x0D:
                after_str = False
    return n


cdef object fast_decode(bytes payload, int kind):
    """The message as orjson parses it when that is provably what Go decodes (absent keys are
    zero values, read with .get), else None: every key a field of the type, every value of
    the field's kind and range, and no key repeated (orjson keeps the last of repeated keys,
    so the keys it kept must be all the keys the text has)."""
    try:
        obj = _loads(payload)
    except _JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    cdef bint neg_zero
    cdef Py_ssize_t keys = _count_keys(payload, &neg_zero)
    cdef Py_ssize_t n = _check(obj, _KINDS[kind], neg_zero)
    if n < 0 or keys != n:
        return None
    return obj


KIND_UNMODELLED = -1
KIND_UNKNOWN = -2


def kind_of(registry, name):
    """The core's kind for a ``type`` value: the default type's index, KIND_UNMODELLED for a
    registered type whose schema or handler is not the default one, KIND_UNKNOWN for one not
    in the registry (or not a string)."""
    if type(name) is not str or name not in registry:
        return KIND_UNKNOWN
    mt = registry[name]
    if name in TYPE_NAMES and mt.schema is DEFAULT_SCHEMAS[name] \
            and mt.handler is DEFAULT_HANDLERS[name]:
        return TYPE_NAMES.index(name)
    return KIND_UNMODELLED


cdef object _decode(object payload, int kind, object registry, object t):
    """(msg, None) or (None, error text) for a payload's UTF-8 bytes (None: no payload)."""
    if payload is None:
        return None, "unexpected end of JSON input"
    msg = fast_decode(<bytes>payload, kind)
    if msg is not None:
        return msg, None
    msg, err = registry[t].decode(payload)
    if err is not None:
        return None, err
    if type(msg) is not dict:
        raise Fallback("decoded message is not a dict")
    return msg, None


# ------------------------------------------------------------------------------ the loop

cdef inline object _payload_at(const unsigned char[:] data, const int64_t[:] offsets,
                               const unsigned char[:] valid, Py_ssize_t r):
    cdef int64_t a
    cdef int64_t b
    if not valid[r]:
        return None
    a = offsets[r]
    b = offsets[r + 1]
    if b == a:
        return b""
    return PyBytes_FromStringAndSize(<const char*>&data[a], b - a)


cdef inline object _as_bytes(object p):
    return p.encode() if type(p) is str else None


def run_cart(object cart_id, list rows, const signed char[:] row_kind, list types,
             object payloads, list err_col, const unsigned char[:] too_long,
             const int64_t[:] lines, object registry, object catalog, signed char[:] codes,
             list errors, int64_t[:] last_applied, unsigned char[:] changed, int every,
             dict pool):
    """Replay one cart's rows; fill codes/errors/last_applied/changed at those rows and return
    (checkpoint_lines, checkpoints, final): checkpoints[j] is the cart after its first
    checkpoint_lines[j] lines, as a CCart snapshot (to_state() makes it a CartState); see
    ``checkpoint_due`` for where they are taken. ``row_kind``: per row, the default type's
    kind, KIND_UNMODELLED (a registered type the core does not model) or KIND_UNKNOWN (not in
    the registry); ``payloads``: (UTF-8 data, offsets, valid) of an Arrow string column;
    ``pool``: shared strings. Raises Fallback when a line needs the reference core."""
    global _pool
    _pool = pool
    cdef CCart c = empty(cart_id)
    cdef const unsigned char[:] p_data = payloads[0]
    cdef const int64_t[:] p_off = payloads[1]
    cdef const unsigned char[:] p_valid = payloads[2]
    cdef Py_ssize_t r, pos = 0, last_cp = 0, n_rows = len(rows)
    cdef long long last = -1, stop_line = -1
    cdef int kind, err
    cdef list checkpoints = [], cp_lines = []
    for ro in rows:
        r = ro
        changed[r] = 0
        if stop_line >= 0:
            codes[r] = NOT_REACHED
            errors[r] = f"not reached: the scanner stopped at line {stop_line}"
        elif too_long[r]:
            codes[r] = TOO_LONG
            errors[r] = TOO_LONG_ERROR
            stop_line = lines[r]
        elif type(err_col[r]) is str:
            codes[r] = MALFORMED
            errors[r] = err_col[r]
        else:
            kind = row_kind[r]
            if kind == KIND_UNKNOWN_C:
                t = types[r]
                codes[r] = UNKNOWN_TYPE
                errors[r] = f"unknown mutation type: {go_quote(t or '')}"
            elif kind == KIND_UNMODELLED_C:
                raise Fallback("a type the core does not model")
            else:
                msg, perr = _decode(_payload_at(p_data, p_off, p_valid, r), kind, registry,
                                    TYPE_NAMES[kind])
                if perr is not None:
                    codes[r] = PAYLOAD_ERROR
                    errors[r] = perr
                else:
                    err = apply(c, kind, msg, catalog)
                    if err:
                        codes[r] = APPLY_ERROR
                        errors[r] = _ERRORS[err]
                    else:
                        codes[r] = APPLIED
                        changed[r] = 1
                        last = r
        last_applied[r] = last
        pos += 1
        if checkpoint_due(pos - last_cp, n_rows - pos, len(c.items), every):
            checkpoints.append(clone(c))
            cp_lines.append(pos)
            last_cp = pos
    return cp_lines, checkpoints, c


cpdef bint checkpoint_due(Py_ssize_t since, Py_ssize_t left, Py_ssize_t items, int every):
    """Whether to keep a snapshot after this line: ``since`` lines after the last one (or the
    start), ``left`` lines before the end (the final state is always kept), ``items`` in the
    cart. The gap grows with the cart (a snapshot copies every item) so that snapshots cost
    a bounded number of bytes per line (about one item's size), and a point is never more
    than 2 * max(every, items) lines from a kept state."""
    cdef Py_ssize_t gap = every if every > items else items
    return since >= gap and left >= gap


def advance(object snapshot, list rows, const signed char[:] row_kind, object payloads,
            object registry, object catalog, dict pool):
    """The CartState after also applying ``rows`` (all known to be applied) to a snapshot
    (a CCart, left unchanged, or a CartState)."""
    global _pool
    _pool = pool
    cdef CCart c = clone(snapshot) if type(snapshot) is CCart else from_state(snapshot)
    cdef const unsigned char[:] p_data = payloads[0]
    cdef const int64_t[:] p_off = payloads[1]
    cdef const unsigned char[:] p_valid = payloads[2]
    cdef Py_ssize_t r
    cdef int kind
    for ro in rows:
        r = ro
        kind = row_kind[r]
        msg, perr = _decode(_payload_at(p_data, p_off, p_valid, r), kind, registry,
                            TYPE_NAMES[kind])
        apply(c, kind, msg, catalog)
    return to_state(c)


cdef object _qty_sum(CCart c):
    """Σ qty as Python's unbounded sum (history's "quantity" is not wrapped): in C while no
    overflow is possible (every |qty| < 2**40, fewer than 2**22 items), else in Python ints."""
    cdef CItem it
    cdef int64_t q = 0
    cdef bint small = len(c.items) < (1 << 22)
    if small:
        for it in c.items:
            if it.qty >= (1LL << 40) or it.qty <= -(1LL << 40):
                small = False
                break
            q += it.qty
    if small:
        return q
    total = 0
    for it in c.items:
        total += it.qty
    return total


def summaries(object cart_id, list rows, const signed char[:] row_kind, object payloads,
              const signed char[:] codes, object registry, object catalog, dict pool):
    """After each of the cart's rows: (items, quantity, deliveries, total_price) lists."""
    global _pool
    _pool = pool
    cdef CCart c = empty(cart_id)
    cdef const unsigned char[:] p_data = payloads[0]
    cdef const int64_t[:] p_off = payloads[1]
    cdef const unsigned char[:] p_valid = payloads[2]
    cdef CItem it
    cdef Py_ssize_t r
    cdef int kind
    n_items, qty, n_del, total = [], [], [], []
    for ro in rows:
        r = ro
        if codes[r] == APPLIED:
            kind = row_kind[r]
            msg, perr = _decode(_payload_at(p_data, p_off, p_valid, r), kind, registry,
                                TYPE_NAMES[kind])
            apply(c, kind, msg, catalog)
        n_items.append(len(c.items))
        qty.append(_qty_sum(c))
        n_del.append(len(c.deliveries))
        total.append(c.totalPrice)
    return n_items, qty, n_del, total


def decode_payload(object payload, object type_name, object registry):
    """(msg, error) for one payload of a default type, as the core decodes it (tests)."""
    return _decode(_as_bytes(payload), TYPE_NAMES.index(type_name), registry, type_name)


def fast_only(list payloads, list kinds):
    """How many payloads the orjson route proves (benchmarks/profiling)."""
    cdef Py_ssize_t ok = 0
    for p, k in zip(payloads, kinds):
        if fast_decode(p.encode(), k) is not None:
            ok += 1
    return ok


def count_keys_only(list payloads):
    cdef Py_ssize_t n = 0
    cdef bint neg_zero
    for p in payloads:
        n += _count_keys(p.encode(), &neg_zero)
    return n


# ------------------------------------------------------------------------------ replay from a state

def run_from(object snapshot, object cart_id, list rows, const signed char[:] kinds,
             list types, object payloads, list errs, const unsigned char[:] too_long,
             const int64_t[:] lines, object registry, object catalog, signed char[:] codes,
             list errors, int64_t[:] last_applied, unsigned char[:] changed,
             long long stop_line, long long last, Py_ssize_t done, Py_ssize_t total,
             int every, dict pool, list decoded=None):
    """Replay a cart's ``rows`` (events rows, in order) on from ``snapshot`` (a CCart, left
    unchanged, a CartState, or None for the empty cart), as ``run_cart`` does from the
    start: what the service does with those lines when the cart is in that state.

    Unlike ``run_cart``, every per-line input and output is indexed by the position ``j`` in
    ``rows`` (``kinds``, ``types``, ``errs``, ``too_long``, ``lines``; ``codes``, ``errors``,
    ``last_applied``, ``changed``); only the payload buffers are indexed by the events row.
    ``stop_line``: the too-long line that already stopped the scanner (-1: none);
    ``last``: the row of the last applied line so far (-1: none); ``done``: how many lines
    of the cart come before ``rows`` and ``total`` how many lines it has in all (for the
    checkpoint spacing); ``decoded``: per position, the (msg, error) its payload decodes to,
    or None where not known yet (filled in; the messages are only read, never changed).
    Returns (checkpoint_lines, checkpoints, final) with checkpoint lines counted from the
    cart's first line. Raises Fallback as run_cart does."""
    global _pool
    _pool = pool
    cdef CCart c
    if snapshot is None:
        c = empty(cart_id)
    elif type(snapshot) is CCart:
        c = clone(snapshot)
    else:
        c = from_state(snapshot)
    cdef const unsigned char[:] p_data = payloads[0]
    cdef const int64_t[:] p_off = payloads[1]
    cdef const unsigned char[:] p_valid = payloads[2]
    cdef Py_ssize_t j, r, pos = done, last_cp = done, n_rows = len(rows)
    cdef int kind, err
    cdef list checkpoints = [], cp_lines = []
    for j in range(n_rows):
        r = rows[j]
        changed[j] = 0
        if stop_line >= 0:
            codes[j] = NOT_REACHED
            errors[j] = f"not reached: the scanner stopped at line {stop_line}"
        elif too_long[j]:
            codes[j] = TOO_LONG
            errors[j] = TOO_LONG_ERROR
            stop_line = lines[j]
        elif type(errs[j]) is str:
            codes[j] = MALFORMED
            errors[j] = errs[j]
        else:
            kind = kinds[j]
            if kind == KIND_UNKNOWN_C:
                t = types[j]
                codes[j] = UNKNOWN_TYPE
                errors[j] = f"unknown mutation type: {go_quote(t or '')}"
            elif kind == KIND_UNMODELLED_C:
                raise Fallback("a type the core does not model")
            else:
                known = decoded[j] if decoded is not None else None
                if known is None:
                    known = _decode(_payload_at(p_data, p_off, p_valid, r), kind, registry,
                                    TYPE_NAMES[kind])
                    if decoded is not None:
                        decoded[j] = known
                msg, perr = known
                if perr is not None:
                    codes[j] = PAYLOAD_ERROR
                    errors[j] = perr
                else:
                    err = apply(c, kind, msg, catalog)
                    if err:
                        codes[j] = APPLY_ERROR
                        errors[j] = _ERRORS[err]
                    else:
                        codes[j] = APPLIED
                        changed[j] = 1
                        last = r
        last_applied[j] = last
        pos += 1
        if checkpoint_due(pos - last_cp, total - pos, len(c.items), every):
            checkpoints.append(clone(c))
            cp_lines.append(pos)
            last_cp = pos
    return cp_lines, checkpoints, c


cdef inline bint _same_obj(object a, object b):
    return type(a) is type(b) and a == b


def same_cart(CCart a, CCart b):
    """Whether two carts are the same in everything a later line can see or the state JSON
    shows (values and their types): then every later line does the same to both."""
    cdef CItem x, y
    cdef CDelivery d, e
    cdef Py_ssize_t k
    if (a.totalPrice != b.totalPrice or a.totalTax != b.totalTax
            or a.totalDiscount != b.totalDiscount or a.last_item_id != b.last_item_id
            or a.last_delivery_id != b.last_delivery_id or a.processing != b.processing
            or a.paymentInProgress != b.paymentInProgress
            or len(a.items) != len(b.items) or len(a.deliveries) != len(b.deliveries)):
        return False
    if not (_same_obj(a.id, b.id) and _same_obj(a.orderReference, b.orderReference)
            and _same_obj(a.paymentStatus, b.paymentStatus)
            and _same_obj(a.last_change, b.last_change)):
        return False
    for k in range(len(a.items)):
        x = a.items[k]
        y = b.items[k]
        if (x.id != y.id or x.itemId != y.itemId or x.price != y.price
                or x.orgPrice != y.orgPrice or x.qty != y.qty or x.totalPrice != y.totalPrice
                or x.tax != y.tax or x.taxRate != y.taxRate or x.stock != y.stock
                or x.discount != y.discount or x.unresolved != y.unresolved):
            return False
        if not (_same_obj(x.sku, y.sku) and _same_obj(x.name, y.name)
                and _same_obj(x.image, y.image) and _same_obj(x.type, y.type)
                and _same_obj(x.brand, y.brand) and _same_obj(x.category, y.category)
                and _same_obj(x.category2, y.category2) and _same_obj(x.category3, y.category3)
                and _same_obj(x.category4, y.category4) and _same_obj(x.category5, y.category5)
                and _same_obj(x.disclaimer, y.disclaimer)
                and _same_obj(x.sellerId, y.sellerId) and _same_obj(x.sellerName, y.sellerName)
                and _same_obj(x.outlet, y.outlet) and _same_obj(x.storeId, y.storeId)
                and _same_obj(x.parentId, y.parentId)):
            return False
    for k in range(len(a.deliveries)):
        d = a.deliveries[k]
        e = b.deliveries[k]
        if d.id != e.id or d.price != e.price:
            return False
        if not (_same_obj(d.provider, e.provider) and _same_obj(d.items, e.items)
                and _same_obj(d.pickupPoint, e.pickupPoint)):
            return False
    return True
