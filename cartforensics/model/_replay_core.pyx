# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""The compiled replay core: the ten default types on a C-level cart, the GIL released.

It is a faster twin of :mod:`cartforensics.model.cart`'s handlers and of the replay loop in
:mod:`cartforensics.model.replay`, and must agree with them exactly (tests/model/test_replay_core.py).

- **Decoding.** A small scanner reads a payload's bytes straight into typed C fields and
  accepts it only when it can prove the result equals Go's ``json.Unmarshal``: valid JSON, an
  object whose every key is a field of the type written exactly (no escape, exact case) and
  not repeated, every value of the field's kind and range (integers without a fraction or an
  exponent, no ``-`` in an unsigned field, no ``null`` where Go would keep a zero value),
  strings unescaped as Go does (``\\uXXXX`` surrogate pairs joined, a lone surrogate and
  every byte of invalid UTF-8 becoming U+FFFD). Anything else is decoded by the registry's
  reference decoder (``MutationType.decode``: orjson's proof, then :mod:`cartforensics.go.json`),
  with the GIL.
- **Strings** live in a per-replay :class:`Pool` (one copy of each distinct decoded text,
  identified by an int32 id): equal strings compare as equal ids, and a Python ``str`` is
  made once per distinct text, when a state is shown.
- **Handlers** run on a mutable C cart (int64 fields with two's-complement wrap-around in
  unsigned arithmetic, Go's truncating division with ``MinInt64 / -1 == MinInt64``, the
  same incremental-versus-recomputed totals as :mod:`cartforensics.model.cart`), error codes mapped to
  docs/model.md's texts once per distinct code.
- **The GIL** is released over a whole cart's lines: decoding, handlers, checkpoints and the
  per-line arrays. It is taken back only for a payload the scanner cannot prove (the
  reference decoder is Python) and after the cart, to hand its checkpoints to Python.

Anything the core does not model (a type whose schema or handler is not the default one, a
catalog entry that is not plain ints/strings, a catalog that is not a ``dict`` with ``str``
keys, a Python exception anywhere) raises :class:`Fallback`, and the caller replays that
whole cart on the reference core.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_RawFree, PyMem_RawMalloc, PyMem_RawRealloc
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport INT64_MAX, INT64_MIN, int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memmove, strlen
from cartforensics.go._gotext cimport hex4, skip_ws, utf8_width

from cartforensics.model.cart import (
    DEFAULT_HANDLERS,
    CartState,
    Delivery,
    Item,
    PickupPoint,
)
from cartforensics.go.json import go_quote
from cartforensics.model.registry import DEFAULT_SCHEMAS
from cartforensics import vocab as _vocab
from cartforensics.vocab import TOO_LONG_ERROR

cdef int64_t DELIVERY_PRICE = 4900
cdef int64_t DEFAULT_TAX_RATE = 2500
cdef int64_t I64_MIN = INT64_MIN
cdef int64_t I64_MAX = INT64_MAX

# outcome codes, vocab's numbering: C globals set once at import, read without the GIL
cdef signed char APPLIED = _vocab.APPLIED
cdef signed char MALFORMED = _vocab.MALFORMED
cdef signed char UNKNOWN_TYPE = _vocab.UNKNOWN_TYPE
cdef signed char PAYLOAD_ERROR = _vocab.PAYLOAD_ERROR
cdef signed char APPLY_ERROR = _vocab.APPLY_ERROR
cdef signed char TOO_LONG = _vocab.TOO_LONG
cdef signed char NOT_REACHED = _vocab.NOT_REACHED

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
    N_TYPES = 10

# handler error codes -> docs/model.md's texts
ERROR_TEXTS = (None, "invalid quantity", "item not found", "item already has a delivery",
               "no items", "delivery not found")

# what the C functions return besides 0 (done) and the handler error codes 1..5
cdef enum:
    R_NOMEM = -1      # an allocation failed (MemoryError with the GIL)
    R_FALLBACK = -2   # the core does not model this: the cart goes to the reference


class Fallback(Exception):
    """The core cannot replay this cart exactly: replay it on the reference core."""


# ------------------------------------------------------------------------------ int64 math

cdef inline int64_t wadd(int64_t a, int64_t b) noexcept nogil:
    return <int64_t>(<uint64_t>a + <uint64_t>b)


cdef inline int64_t wsub(int64_t a, int64_t b) noexcept nogil:
    return <int64_t>(<uint64_t>a - <uint64_t>b)


cdef inline int64_t wmul(int64_t a, int64_t b) noexcept nogil:
    return <int64_t>(<uint64_t>a * <uint64_t>b)


cdef inline int64_t gdiv(int64_t a, int64_t b) noexcept nogil:
    """Go's a / b for b != 0: truncates toward zero; MinInt64 / -1 wraps to MinInt64."""
    if b == -1:
        return <int64_t>(<uint64_t>0 - <uint64_t>a)
    return a / b


cdef int grow(void** buf, Py_ssize_t* cap, Py_ssize_t need, size_t size) noexcept nogil:
    """Make ``*buf`` hold at least ``need`` elements of ``size`` bytes (0, or R_NOMEM)."""
    cdef Py_ssize_t c = cap[0]
    cdef void* p
    if need <= c:
        return 0
    if c < 8:
        c = 8
    while c < need:
        c *= 2
    p = PyMem_RawRealloc(buf[0], <size_t>c * size)
    if p == NULL:
        return R_NOMEM
    buf[0] = p
    cap[0] = c
    return 0


# ------------------------------------------------------------------------------ strings

cdef struct StrEntry:
    Py_ssize_t off
    Py_ssize_t length
    uint64_t hash


cdef struct PoolC:
    # the distinct texts: bytes in ``arena``, id -> entry, open addressing on the hash
    char* arena
    Py_ssize_t arena_len, arena_cap
    StrEntry* entries
    Py_ssize_t n, entries_cap
    int32_t* slots
    Py_ssize_t n_slots
    # scratch space for one payload: an unescaped string, a []uint32, a []*AddRequest
    char* sbuf
    Py_ssize_t sbuf_cap
    int64_t* ubuf
    Py_ssize_t ubuf_cap
    AddReqC* abuf
    Py_ssize_t abuf_cap
    # the catalog: 0 none, 1 modelled (below), 2 not modelled (a cart that asks it falls back)
    int catalog_mode
    Py_ssize_t n_cat_ids       # the catalog's skus have the ids below this
    int32_t* cat_entry         # per such id: the entry, or -1
    ItemC* cat_items
    unsigned char* cat_plain   # per entry: its fields are plain (else: Fallback when hit)


cdef inline uint64_t fnv1a(const char* s, Py_ssize_t n) noexcept nogil:
    cdef uint64_t h = 1469598103934665603ULL
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ <unsigned char>s[i]) * 1099511628211ULL
    return h


cdef int rehash(PoolC* p) noexcept nogil:
    cdef Py_ssize_t size = 64 if p.n_slots == 0 else p.n_slots * 2
    cdef int32_t* slots = <int32_t*>PyMem_RawMalloc(<size_t>size * sizeof(int32_t))
    cdef Py_ssize_t i, j, mask = size - 1
    if slots == NULL:
        return R_NOMEM
    for i in range(size):
        slots[i] = -1
    for i in range(p.n):
        j = <Py_ssize_t>(p.entries[i].hash & <uint64_t>mask)
        while slots[j] >= 0:
            j = (j + 1) & mask
        slots[j] = <int32_t>i
    PyMem_RawFree(p.slots)
    p.slots = slots
    p.n_slots = size
    return 0


cdef int32_t intern(PoolC* p, const char* s, Py_ssize_t n) noexcept nogil:
    """The id of the text s[:n] (added if new), or R_NOMEM."""
    cdef uint64_t h = fnv1a(s, n)
    cdef Py_ssize_t mask, j, ident
    cdef StrEntry* e
    if (p.n + 1) * 2 > p.n_slots:
        if rehash(p) < 0:
            return R_NOMEM
    mask = p.n_slots - 1
    j = <Py_ssize_t>(h & <uint64_t>mask)
    while p.slots[j] >= 0:
        e = &p.entries[p.slots[j]]
        if e.hash == h and e.length == n and memcmp(p.arena + e.off, s, <size_t>n) == 0:
            return p.slots[j]
        j = (j + 1) & mask
    if p.n >= 2147483647:
        return R_NOMEM
    if grow(<void**>&p.arena, &p.arena_cap, p.arena_len + n + 1, 1) < 0:
        return R_NOMEM
    if grow(<void**>&p.entries, &p.entries_cap, p.n + 1, sizeof(StrEntry)) < 0:
        return R_NOMEM
    if n:
        memcpy(p.arena + p.arena_len, s, <size_t>n)
    ident = p.n
    p.entries[ident].off = p.arena_len
    p.entries[ident].length = n
    p.entries[ident].hash = h
    p.arena_len += n
    p.n += 1
    p.slots[j] = <int32_t>ident
    return <int32_t>ident


cdef class Pool:
    """A replay's strings (decoded texts by id, shared by all its carts) and its catalog in
    C form. Not for use from two threads at once (each replay has its own)."""
    cdef PoolC* c
    cdef list objs             # id -> the Python str, made on first use
    cdef list perr_texts       # payload error texts (by error id)
    cdef dict perr_ids
    cdef readonly object catalog

    def __cinit__(self, catalog=None):
        self.c = <PoolC*>PyMem_RawMalloc(sizeof(PoolC))
        if self.c == NULL:
            raise MemoryError()
        memset_pool(self.c)
        self.objs = []
        self.perr_texts = [None]
        self.perr_ids = {}
        self.catalog = catalog
        if self.intern_str("") != 0:
            raise RuntimeError("the empty string must have id 0")
        self._load_catalog(catalog)

    def __dealloc__(self):
        cdef PoolC* p = self.c
        if p == NULL:
            return
        PyMem_RawFree(p.arena)
        PyMem_RawFree(p.entries)
        PyMem_RawFree(p.slots)
        PyMem_RawFree(p.sbuf)
        PyMem_RawFree(p.ubuf)
        PyMem_RawFree(p.abuf)
        PyMem_RawFree(p.cat_entry)
        PyMem_RawFree(p.cat_items)
        PyMem_RawFree(p.cat_plain)
        PyMem_RawFree(p)
        self.c = NULL

    def __len__(self):
        return self.c.n

    cdef int32_t intern_str(self, object s) except R_NOMEM:
        """The id of a Python str (Fallback if it is not exactly a str)."""
        cdef bytes b
        cdef int32_t ident
        if type(s) is not str:
            raise Fallback("not a str")
        b = (<str>s).encode("utf-8", "surrogatepass")
        ident = intern(self.c, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))
        if ident < 0:
            raise MemoryError()
        return ident

    cdef object text(self, int32_t ident):
        """The Python str of an id (None for -1: a nil pointer)."""
        cdef StrEntry* e
        cdef Py_ssize_t k
        if ident < 0:
            return None
        if ident < len(self.objs):
            s = self.objs[ident]
            if s is not None:
                return s
        else:
            self.objs.extend([None] * (self.c.n - len(self.objs)))
        e = &self.c.entries[ident]
        s = PyUnicode_DecodeUTF8(self.c.arena + e.off, e.length, "surrogatepass")
        self.objs[ident] = s
        return s

    cdef int64_t payload_error(self, object text) except -1:
        """The id (>= 1) of a payload error text."""
        ident = self.perr_ids.get(text)
        if ident is None:
            ident = len(self.perr_texts)
            self.perr_texts.append(text)
            self.perr_ids[text] = ident
        return ident

    @property
    def payload_errors(self):
        """Payload error texts by error id (id 0: None)."""
        return self.perr_texts

    def _load_catalog(self, catalog):
        """sku -> AddItem fields as C items; an entry that is not plain is kept as such (a
        cart that needs it falls back), a catalog that is not a dict of str keys as a whole."""
        cdef PoolC* p = self.c
        cdef Py_ssize_t n, i
        cdef int32_t sid
        cdef ItemC it
        if catalog is None:
            p.catalog_mode = 0
            return
        if type(catalog) is not dict or any(type(k) is not str for k in catalog):
            p.catalog_mode = 2
            return
        keys = list(catalog)
        n = len(keys)
        for k in keys:
            self.intern_str(k)  # the skus take the first ids (after "")
        p.n_cat_ids = self.c.n
        p.cat_entry = <int32_t*>PyMem_RawMalloc(<size_t>(p.n_cat_ids + 1) * sizeof(int32_t))
        p.cat_items = <ItemC*>PyMem_RawMalloc(<size_t>(n + 1) * sizeof(ItemC))
        p.cat_plain = <unsigned char*>PyMem_RawMalloc(<size_t>(n + 1))
        if p.cat_entry == NULL or p.cat_items == NULL or p.cat_plain == NULL:
            raise MemoryError()
        for i in range(p.n_cat_ids):
            p.cat_entry[i] = -1
        for i in range(n):
            k = keys[i]
            sid = self.intern_str(k)
            p.cat_entry[sid] = <int32_t>i
            blank_item(&it, 0)
            try:
                catalog_item(self, &it, catalog[k])
                p.cat_plain[i] = 1
            except Exception:  # noqa - not modelled: the reference decides if it is used
                p.cat_plain[i] = 0
            p.cat_items[i] = it
        p.catalog_mode = 1


cdef void memset_pool(PoolC* p) noexcept nogil:
    p.arena = NULL
    p.arena_len = p.arena_cap = 0
    p.entries = NULL
    p.n = p.entries_cap = 0
    p.slots = NULL
    p.n_slots = 0
    p.sbuf = NULL
    p.sbuf_cap = 0
    p.ubuf = NULL
    p.ubuf_cap = 0
    p.abuf = NULL
    p.abuf_cap = 0
    p.catalog_mode = 0
    p.n_cat_ids = 0
    p.cat_entry = NULL
    p.cat_items = NULL
    p.cat_plain = NULL


# ------------------------------------------------------------------------------ the cart

# an item's strings, by slot
cdef enum:
    S_SKU = 0
    S_NAME = 1
    S_IMAGE = 2
    S_TYPE = 3
    S_BRAND = 4
    S_CATEGORY = 5
    S_CATEGORY2 = 6
    S_CATEGORY3 = 7
    S_CATEGORY4 = 8
    S_CATEGORY5 = 9
    S_DISCLAIMER = 10
    S_SELLER_ID = 11
    S_SELLER_NAME = 12
    S_OUTLET = 13      # -1: nil
    S_STORE_ID = 14    # -1: nil
    N_ITEM_STRS = 15


cdef struct ItemC:
    int64_t id, itemId, price, orgPrice, qty, totalPrice, tax, taxRate, stock, discount
    int64_t parentId
    int32_t s[15]
    unsigned char has_parent, unresolved


cdef struct DelivC:
    int64_t id, price
    int32_t provider
    int64_t* items
    Py_ssize_t n_items
    unsigned char has_pp
    int32_t pp[6]      # id, name, address, city, zip, country (-1: nil; id never)


cdef struct CartC:
    ItemC* items
    Py_ssize_t n_items, cap_items
    DelivC* dels
    Py_ssize_t n_dels, cap_dels
    int64_t totalPrice, totalTax, totalDiscount, last_item_id, last_delivery_id
    unsigned char processing, paymentInProgress
    int32_t orderReference, paymentStatus


cdef struct AddReqC:
    int64_t quantity
    int32_t sku, country, storeId
    unsigned char nil


cdef inline void price_it(ItemC* it) noexcept nogil:
    """totalPrice, tax and discount from price, qty, taxRate, orgPrice (cart._priced)."""
    cdef int64_t total = wmul(it.price, it.qty)
    cdef int64_t divisor = wadd(10000, it.taxRate)
    cdef int64_t d = wsub(it.orgPrice, it.price)
    it.totalPrice = total
    it.tax = 0 if divisor == 0 else gdiv(wmul(total, it.taxRate), divisor)
    it.discount = wmul(d if d > 0 else 0, it.qty)


cdef inline void blank_item(ItemC* it, int64_t ident) noexcept nogil:
    cdef int k
    it.id = ident
    it.itemId = it.price = it.orgPrice = it.qty = it.totalPrice = it.tax = 0
    it.taxRate = it.stock = it.discount = it.parentId = 0
    for k in range(N_ITEM_STRS):
        it.s[k] = 0
    it.s[S_OUTLET] = -1
    it.s[S_STORE_ID] = -1
    it.has_parent = 0
    it.unresolved = 0


cdef CartC* cart_new() noexcept nogil:
    cdef CartC* c = <CartC*>PyMem_RawMalloc(sizeof(CartC))
    if c == NULL:
        return NULL
    c.items = NULL
    c.n_items = c.cap_items = 0
    c.dels = NULL
    c.n_dels = c.cap_dels = 0
    c.totalPrice = c.totalTax = c.totalDiscount = c.last_item_id = c.last_delivery_id = 0
    c.processing = c.paymentInProgress = 0
    c.orderReference = c.paymentStatus = 0
    return c


cdef void cart_free(CartC* c) noexcept nogil:
    cdef Py_ssize_t i
    if c == NULL:
        return
    for i in range(c.n_dels):
        PyMem_RawFree(c.dels[i].items)
    PyMem_RawFree(c.dels)
    PyMem_RawFree(c.items)
    PyMem_RawFree(c)


cdef int64_t* copy_ids(const int64_t* ids, Py_ssize_t n) noexcept nogil:
    """A copy (never NULL unless out of memory: n == 0 gets one slot)."""
    cdef int64_t* out = <int64_t*>PyMem_RawMalloc(<size_t>(n if n > 0 else 1) * sizeof(int64_t))
    if out != NULL and n > 0:
        memcpy(out, ids, <size_t>n * sizeof(int64_t))
    return out


cdef CartC* cart_clone(const CartC* a) noexcept nogil:
    """An independent copy (a checkpoint), or NULL when out of memory."""
    cdef CartC* c = cart_new()
    cdef Py_ssize_t i
    if c == NULL:
        return NULL
    c.totalPrice = a.totalPrice
    c.totalTax = a.totalTax
    c.totalDiscount = a.totalDiscount
    c.last_item_id = a.last_item_id
    c.last_delivery_id = a.last_delivery_id
    c.processing = a.processing
    c.paymentInProgress = a.paymentInProgress
    c.orderReference = a.orderReference
    c.paymentStatus = a.paymentStatus
    if a.n_items:
        c.items = <ItemC*>PyMem_RawMalloc(<size_t>a.n_items * sizeof(ItemC))
        if c.items == NULL:
            cart_free(c)
            return NULL
        memcpy(c.items, a.items, <size_t>a.n_items * sizeof(ItemC))
        c.n_items = c.cap_items = a.n_items
    if a.n_dels:
        c.dels = <DelivC*>PyMem_RawMalloc(<size_t>a.n_dels * sizeof(DelivC))
        if c.dels == NULL:
            cart_free(c)
            return NULL
        c.cap_dels = a.n_dels
        for i in range(a.n_dels):
            c.dels[i] = a.dels[i]
            c.dels[i].items = copy_ids(a.dels[i].items, a.dels[i].n_items)
            c.n_dels = i + 1
            if c.dels[i].items == NULL:
                cart_free(c)
                return NULL
    return c


cdef void summed(CartC* c) noexcept nogil:
    """Totals from the (priced) items and the deliveries (cart._summed)."""
    cdef int64_t tp = 0, tt = 0, td = 0
    cdef Py_ssize_t i
    for i in range(c.n_items):
        tp = wadd(tp, c.items[i].totalPrice)
        tt = wadd(tt, c.items[i].tax)
        td = wadd(td, c.items[i].discount)
    for i in range(c.n_dels):
        tp = wadd(tp, c.dels[i].price)
    c.totalPrice = tp
    c.totalTax = tt
    c.totalDiscount = td


cdef int push(CartC* c, const ItemC* it) noexcept nogil:
    if grow(<void**>&c.items, &c.cap_items, c.n_items + 1, sizeof(ItemC)) < 0:
        return R_NOMEM
    c.items[c.n_items] = it[0]
    c.n_items += 1
    c.last_item_id = it.id
    c.totalPrice = wadd(c.totalPrice, it.totalPrice)
    c.totalTax = wadd(c.totalTax, it.tax)
    c.totalDiscount = wadd(c.totalDiscount, it.discount)
    return 0


cdef void set_qty(CartC* c, ItemC* it, int64_t qty) noexcept nogil:
    """qty changed in place and the totals moved by the item's difference (_swap_item)."""
    cdef int64_t tp = it.totalPrice, tt = it.tax, td = it.discount
    it.qty = qty
    price_it(it)
    c.totalPrice = wadd(wsub(c.totalPrice, tp), it.totalPrice)
    c.totalTax = wadd(wsub(c.totalTax, tt), it.tax)
    c.totalDiscount = wadd(wsub(c.totalDiscount, td), it.discount)


cdef inline Py_ssize_t find_item(const CartC* c, int64_t ident) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(c.n_items):
        if c.items[i].id == ident:
            return i
    return -1


cdef inline Py_ssize_t find_delivery(const CartC* c, int64_t ident) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(c.n_dels):
        if c.dels[i].id == ident:
            return i
    return -1


cdef inline bint delivered(const CartC* c, int64_t ident) noexcept nogil:
    cdef Py_ssize_t i, j
    for i in range(c.n_dels):
        for j in range(c.dels[i].n_items):
            if c.dels[i].items[j] == ident:
                return True
    return False


# ------------------------------------------------------------------------------ messages
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

cdef enum:
    MAX_FIELDS = 24


cdef struct MsgC:
    # by the field's index in the type's schema: integers and bools in num, string ids in
    # str (-1: a nil *string; for a *uint32, str is 1 when set and -1 when nil)
    int64_t num[24]
    int32_t str[24]
    # the nested values (SetDelivery.pickupPoint, SetDelivery.items, SetCartRequest.items)
    unsigned char pp_present
    int32_t pp[6]
    unsigned char list_nil    # the []uint32 / []*AddRequest is nil
    Py_ssize_t n_list         # its elements, in the pool's ubuf / abuf


cdef struct FieldC:
    const char* key
    int keylen
    int kind


cdef FieldC FIELDS[10][24]
cdef int NFIELDS[10]
cdef FieldC PICKUP_FIELDS[6]
cdef FieldC ADDREQ_FIELDS[4]
cdef list _KEY_BYTES = []    # keeps the keys' bytes alive
cdef list _KEYS = []         # per type: its json keys (str), in schema order


def _kind_of_field(ft):
    k = ft.kind
    if k == "string":
        return K_STR
    if k == "bool":
        return K_BOOL
    if k == "int" and ft.bits == 32:
        return K_I32
    if k == "int" and ft.bits == 64:
        return K_I64
    if k == "uint" and ft.bits == 32:
        return K_U32
    if k == "ptr" and ft.elem.kind == "string":
        return K_PSTR
    if k == "ptr" and ft.elem.kind == "uint" and ft.elem.bits == 32:
        return K_PU32
    if k == "slice" and ft.elem.kind == "uint" and ft.elem.bits == 32:
        return K_LU32
    if k == "ptr" and ft.elem.kind == "struct" and ft.elem.name == "messages.PickupPoint":
        return K_PPICKUP
    if k == "slice" and ft.elem.kind == "ptr" and ft.elem.elem.name == "messages.AddRequest":
        return K_LADDREQ
    raise ValueError(f"no kind for {ft}")


cdef void _fill_fields(FieldC* out, object struct):
    cdef int i = 0
    cdef bytes b
    for key, ft in struct.fields:
        b = key.encode("ascii")
        _KEY_BYTES.append(b)
        out[i].key = PyBytes_AS_STRING(b)
        out[i].keylen = <int>len(b)
        out[i].kind = _kind_of_field(ft)
        i += 1


def _index(type_name, key):
    return _KEYS[TYPE_NAMES.index(type_name)].index(key)


cdef int _init_fields() except -1:
    cdef int t
    for t in range(N_TYPES):
        schema = DEFAULT_SCHEMAS[TYPE_NAMES[t]]
        if len(schema.fields) > MAX_FIELDS:
            raise ValueError("too many fields")
        _fill_fields(FIELDS[t], schema)
        NFIELDS[t] = len(schema.fields)
        _KEYS.append([k for k, _ft in schema.fields])
    _fill_fields(PICKUP_FIELDS, DEFAULT_SCHEMAS["SetDelivery"].fields[2][1].elem)
    _fill_fields(ADDREQ_FIELDS, DEFAULT_SCHEMAS["AddRequest"])
    if [k for k, _ in DEFAULT_SCHEMAS["SetDelivery"].fields[2][1].elem.fields] != [
            "id", "name", "address", "city", "zip", "country"] or \
            [k for k, _ in DEFAULT_SCHEMAS["SetPickupPoint"].fields[1:]] != [
            "id", "name", "address", "city", "zip", "country"] or \
            _KEYS[T_ADD_REQUEST] != ["quantity", "sku", "country", "storeId"]:
        raise ValueError("the pickup point / AddRequest fields are not as the core reads them")
    return 0


_init_fields()

# the fields the handlers read, by index
cdef int AR_QUANTITY = _index("AddRequest", "quantity")
cdef int AR_SKU = _index("AddRequest", "sku")
cdef int AR_STORE = _index("AddRequest", "storeId")
cdef int AI_ITEM_ID = _index("AddItem", "item_id")
cdef int AI_QUANTITY = _index("AddItem", "quantity")
cdef int AI_PRICE = _index("AddItem", "price")
cdef int AI_ORG_PRICE = _index("AddItem", "orgPrice")
cdef int AI_SKU = _index("AddItem", "sku")
cdef int AI_STOCK = _index("AddItem", "stock")
cdef int AI_TAX = _index("AddItem", "tax")
cdef int AI_OUTLET = _index("AddItem", "outlet")
cdef int AI_STORE = _index("AddItem", "storeId")
cdef int AI_PARENT = _index("AddItem", "parentId")
cdef int AI_STR[13]   # AddItem field of each item string slot S_SKU .. S_SELLER_NAME
for _slot, _key in enumerate(("sku", "name", "image", "articleType", "brand", "category",
                              "category2", "category3", "category4", "category5",
                              "disclaimer", "sellerId", "sellerName")):
    AI_STR[_slot] = _index("AddItem", _key)
cdef int RI_ID = _index("RemoveItem", "Id")
cdef int CQ_ID = _index("ChangeQuantity", "Id")
cdef int CQ_QUANTITY = _index("ChangeQuantity", "quantity")
cdef int SD_PROVIDER = _index("SetDelivery", "provider")
cdef int SPP_DELIVERY = _index("SetPickupPoint", "deliveryId")
cdef int SPP_ID = _index("SetPickupPoint", "id")
cdef int RD_ID = _index("RemoveDelivery", "id")
cdef int OC_ORDER = _index("OrderCreated", "orderId")
cdef int OC_STATUS = _index("OrderCreated", "status")
cdef int IC_ORDER = _index("InitializeCheckout", "orderId")
cdef int IC_STATUS = _index("InitializeCheckout", "status")
cdef int IC_PIP = _index("InitializeCheckout", "paymentInProgress")


cdef void msg_zero(MsgC* m, int kind) noexcept nogil:
    """Every field at Go's zero value."""
    cdef int i, k
    for i in range(NFIELDS[kind]):
        m.num[i] = 0
        k = FIELDS[kind][i].kind
        m.str[i] = -1 if (k == K_PSTR or k == K_PU32) else 0
    m.pp_present = 0
    m.list_nil = 1
    m.n_list = 0
    m.pp[0] = 0
    for i in range(1, 6):
        m.pp[i] = -1


# ------------------------------------------------------------------------------ the scanner
# Returns 1: accepted (the message is Go's), 0: not proven (the reference decides), R_NOMEM.

cdef inline Py_ssize_t put_rune(char* out, Py_ssize_t o, uint32_t r) noexcept nogil:
    """UTF-8 of a code point that is not a surrogate."""
    if r < 0x80:
        out[o] = <char>r
        return o + 1
    if r < 0x800:
        out[o] = <char>(0xC0 | (r >> 6))
        out[o + 1] = <char>(0x80 | (r & 0x3F))
        return o + 2
    if r < 0x10000:
        out[o] = <char>(0xE0 | (r >> 12))
        out[o + 1] = <char>(0x80 | ((r >> 6) & 0x3F))
        out[o + 2] = <char>(0x80 | (r & 0x3F))
        return o + 3
    out[o] = <char>(0xF0 | (r >> 18))
    out[o + 1] = <char>(0x80 | ((r >> 12) & 0x3F))
    out[o + 2] = <char>(0x80 | ((r >> 6) & 0x3F))
    out[o + 3] = <char>(0x80 | (r & 0x3F))
    return o + 4


cdef int scan_string(PoolC* pool, const unsigned char* p, Py_ssize_t* pi, Py_ssize_t n,
                     int32_t* out) noexcept nogil:
    """A JSON string at p[*pi] (its opening quote) unescaped as Go's unquote does, interned."""
    cdef Py_ssize_t i = pi[0] + 1, start = pi[0] + 1, o = 0, w
    cdef unsigned char c
    cdef int r, r2
    cdef char* buf
    cdef int32_t ident
    # the common case: no escape, valid UTF-8: the bytes themselves
    while i < n:
        c = p[i]
        if c == 0x22:
            ident = intern(pool, <const char*>p + start, i - start)
            if ident < 0:
                return R_NOMEM
            out[0] = ident
            pi[0] = i + 1
            return 1
        if c == 0x5C:
            break
        if c < 0x20:
            return 0
        if c < 0x80:
            i += 1
            continue
        w = utf8_width(p, i, n)
        if w == 0:
            break
        i += w
    if i >= n:
        return 0
    # escapes or invalid UTF-8: decode into the scratch buffer; an escape is at most 6 bytes
    # giving at most 4, an invalid byte 1 giving 3: 3 * the rest is always enough
    if grow(<void**>&pool.sbuf, &pool.sbuf_cap, (i - start) + 3 * (n - i) + 4, 1) < 0:
        return R_NOMEM
    buf = pool.sbuf
    o = i - start
    if o:
        memcpy(buf, p + start, <size_t>o)
    while i < n:
        c = p[i]
        if c == 0x22:
            ident = intern(pool, buf, o)
            if ident < 0:
                return R_NOMEM
            out[0] = ident
            pi[0] = i + 1
            return 1
        if c < 0x20:
            return 0
        if c == 0x5C:
            if i + 1 >= n:
                return 0
            c = p[i + 1]
            if c == 0x22 or c == 0x5C or c == 0x2F:
                buf[o] = <char>c
                o += 1
                i += 2
            elif c == 0x62:
                buf[o] = b'\b'
                o += 1
                i += 2
            elif c == 0x66:
                buf[o] = b'\f'
                o += 1
                i += 2
            elif c == 0x6E:
                buf[o] = b'\n'
                o += 1
                i += 2
            elif c == 0x72:
                buf[o] = b'\r'
                o += 1
                i += 2
            elif c == 0x74:
                buf[o] = b'\t'
                o += 1
                i += 2
            elif c == 0x75:
                r = hex4(p, i + 2, n)
                if r < 0:
                    return 0
                i += 6
                if 0xD800 <= r < 0xE000:
                    # a high half followed by an escaped low half is one rune; anything else
                    # is U+FFFD for this escape alone (the next one is read on its own)
                    if r < 0xDC00 and i + 1 < n and p[i] == 0x5C and p[i + 1] == 0x75:
                        r2 = hex4(p, i + 2, n)
                        if 0xDC00 <= r2 < 0xE000:
                            o = put_rune(buf, o, 0x10000 + ((<uint32_t>(r - 0xD800)) << 10)
                                         + <uint32_t>(r2 - 0xDC00))
                            i += 6
                            continue
                    o = put_rune(buf, o, 0xFFFD)
                else:
                    o = put_rune(buf, o, <uint32_t>r)
            else:
                return 0
            continue
        if c < 0x80:
            buf[o] = <char>c
            o += 1
            i += 1
            continue
        w = utf8_width(p, i, n)
        if w == 0:
            o = put_rune(buf, o, 0xFFFD)
            i += 1
        else:
            memcpy(buf + o, p + i, <size_t>w)
            o += w
            i += w
    return 0


cdef int scan_int(const unsigned char* p, Py_ssize_t* pi, Py_ssize_t n, int kind,
                  int64_t* out) noexcept nogil:
    """A JSON integer of the field's kind and range: -?(0|[1-9][0-9]*) with no fraction or
    exponent after it (Go's type error: the reference decides), no '-' in an unsigned one."""
    cdef Py_ssize_t i = pi[0]
    cdef bint neg = False
    cdef uint64_t v = 0, limit
    cdef int digits = 0
    cdef unsigned char c
    if i < n and p[i] == 0x2D:
        if kind == K_U32 or kind == K_PU32 or kind == K_LU32:
            return 0
        neg = True
        i += 1
    if i >= n or not (0x30 <= p[i] <= 0x39):
        return 0
    if p[i] == 0x30:
        i += 1
    else:
        while i < n and 0x30 <= p[i] <= 0x39:
            digits += 1
            if digits > 19:
                return 0
            v = v * 10 + (p[i] - 0x30)
            i += 1
    if i < n:
        c = p[i]
        if c == 0x2E or c == 0x65 or c == 0x45 or (0x30 <= c <= 0x39):
            return 0
    if kind == K_I32:
        limit = 2147483648ULL if neg else 2147483647ULL
    elif kind == K_I64:
        limit = 9223372036854775808ULL if neg else 9223372036854775807ULL
    else:
        limit = 4294967295ULL
    if v > limit:
        return 0
    if neg:
        out[0] = <int64_t>(<uint64_t>0 - v)
    else:
        out[0] = <int64_t>v
    pi[0] = i
    return 1


cdef inline bint lit(const unsigned char* p, Py_ssize_t i, Py_ssize_t n, const char* word,
                     Py_ssize_t w) noexcept nogil:
    return i + w <= n and memcmp(p + i, word, <size_t>w) == 0


cdef int scan_object(PoolC* pool, const unsigned char* p, Py_ssize_t* pi, Py_ssize_t n,
                     const FieldC* fields, int nf, int64_t* num, int32_t* strs,
                     MsgC* m) noexcept nogil:
    """An object at p[*pi] ('{') into the fields' slots; ``m`` takes the nested values (only
    a top-level message has them)."""
    cdef Py_ssize_t i = pi[0] + 1, ks, kl, j
    cdef uint32_t seen = 0
    cdef int f, kind, rc
    cdef int32_t sid
    cdef int64_t v
    cdef AddReqC* ar
    cdef int64_t anum[4]
    cdef int32_t astr[4]
    i = skip_ws(p, i, n)
    if i < n and p[i] == 0x7D:
        pi[0] = i + 1
        return 1
    while True:
        if i >= n or p[i] != 0x22:
            return 0
        ks = i + 1
        i = ks
        while i < n and p[i] != 0x22:
            if p[i] == 0x5C or p[i] < 0x20 or p[i] >= 0x80:
                return 0  # an escaped or non-ASCII key: not written as a field is
            i += 1
        if i >= n:
            return 0
        kl = i - ks
        f = -1
        for j in range(nf):
            if fields[j].keylen == kl and memcmp(fields[j].key, p + ks, <size_t>kl) == 0:
                f = <int>j
                break
        if f < 0 or (seen >> f) & 1:
            return 0  # an unknown (or case-folded) key, or a repeated one
        seen |= (<uint32_t>1) << f
        i = skip_ws(p, i + 1, n)
        if i >= n or p[i] != 0x3A:
            return 0
        i = skip_ws(p, i + 1, n)
        if i >= n:
            return 0
        kind = fields[f].kind
        if kind == K_STR or kind == K_PSTR:
            if p[i] == 0x22:
                rc = scan_string(pool, p, &i, n, &sid)
                if rc != 1:
                    return rc
                strs[f] = sid
            elif kind == K_PSTR and lit(p, i, n, b"null", 4):
                strs[f] = -1
                i += 4
            else:
                return 0
        elif kind == K_I32 or kind == K_U32 or kind == K_I64:
            if scan_int(p, &i, n, kind, &v) != 1:
                return 0
            num[f] = v
        elif kind == K_PU32:
            if lit(p, i, n, b"null", 4):
                strs[f] = -1
                num[f] = 0
                i += 4
            else:
                if scan_int(p, &i, n, kind, &v) != 1:
                    return 0
                num[f] = v
                strs[f] = 1
        elif kind == K_BOOL:
            if lit(p, i, n, b"true", 4):
                num[f] = 1
                i += 4
            elif lit(p, i, n, b"false", 5):
                num[f] = 0
                i += 5
            else:
                return 0
        elif kind == K_PPICKUP:
            if m == NULL:
                return 0
            if lit(p, i, n, b"null", 4):
                m.pp_present = 0
                i += 4
            elif p[i] == 0x7B:
                astr[0] = 0
                for j in range(1, 6):
                    m.pp[j] = -1
                m.pp[0] = 0
                rc = scan_object(pool, p, &i, n, PICKUP_FIELDS, 6, anum, m.pp, NULL)
                if rc != 1:
                    return rc
                m.pp_present = 1
            else:
                return 0
        elif kind == K_LU32 or kind == K_LADDREQ:
            if m == NULL:
                return 0
            m.n_list = 0
            if lit(p, i, n, b"null", 4):
                m.list_nil = 1
                i += 4
            elif p[i] == 0x5B:
                m.list_nil = 0
                i = skip_ws(p, i + 1, n)
                if i < n and p[i] == 0x5D:
                    i += 1
                else:
                    while True:
                        if i >= n:
                            return 0
                        if kind == K_LU32:
                            if scan_int(p, &i, n, K_LU32, &v) != 1:
                                return 0
                            if grow(<void**>&pool.ubuf, &pool.ubuf_cap, m.n_list + 1,
                                    sizeof(int64_t)) < 0:
                                return R_NOMEM
                            pool.ubuf[m.n_list] = v
                        else:
                            if grow(<void**>&pool.abuf, &pool.abuf_cap, m.n_list + 1,
                                    sizeof(AddReqC)) < 0:
                                return R_NOMEM
                            if lit(p, i, n, b"null", 4):
                                anum[0] = 0
                                astr[0] = astr[1] = astr[2] = 0
                                astr[3] = -1
                                i += 4
                                ar = &pool.abuf[m.n_list]
                                ar.nil = 1
                            elif p[i] == 0x7B:
                                anum[0] = anum[1] = anum[2] = anum[3] = 0
                                astr[0] = astr[1] = astr[2] = 0
                                astr[3] = -1
                                rc = scan_object(pool, p, &i, n, ADDREQ_FIELDS, 4, anum, astr,
                                                 NULL)
                                if rc != 1:
                                    return rc
                                ar = &pool.abuf[m.n_list]
                                ar.nil = 0
                            else:
                                return 0
                            ar.quantity = anum[AR_QUANTITY]
                            ar.sku = astr[AR_SKU]
                            ar.country = astr[2]
                            ar.storeId = astr[AR_STORE]
                        m.n_list += 1
                        i = skip_ws(p, i, n)
                        if i < n and p[i] == 0x2C:
                            i = skip_ws(p, i + 1, n)
                            continue
                        if i < n and p[i] == 0x5D:
                            i += 1
                            break
                        return 0
            else:
                return 0
        else:
            return 0
        i = skip_ws(p, i, n)
        if i < n and p[i] == 0x2C:
            i = skip_ws(p, i + 1, n)
            continue
        if i < n and p[i] == 0x7D:
            pi[0] = i + 1
            return 1
        return 0


cdef int scan_payload(PoolC* pool, const unsigned char* p, Py_ssize_t n, int kind,
                      MsgC* m) noexcept nogil:
    """The whole payload: whitespace, one object of the type, whitespace."""
    cdef Py_ssize_t i = skip_ws(p, 0, n)
    cdef int rc
    msg_zero(m, kind)
    if i >= n or p[i] != 0x7B:
        return 0
    rc = scan_object(pool, p, &i, n, FIELDS[kind], NFIELDS[kind], m.num, m.str, m)
    if rc != 1:
        return rc
    i = skip_ws(p, i, n)
    return 1 if i == n else 0


# ------------------------------------------------------------------------------ a decoded dict

cdef int64_t _dict_int(object v, int kind) except? -1:
    cdef int64_t lo, hi
    if v is None:
        return 0
    if type(v) is not int:
        raise Fallback("not an int")
    if kind == K_I32:
        lo, hi = -2147483648, 2147483647
    elif kind == K_I64:
        lo, hi = I64_MIN, I64_MAX
    else:
        lo, hi = 0, 4294967295
    if not (lo <= v <= hi):
        raise Fallback("out of range")
    return <int64_t>v


cdef int _fields_from_dict(Pool pool, dict d, const FieldC* fields, int nf, int64_t* num,
                           int32_t* strs, MsgC* m) except -1:
    cdef int f, kind
    cdef Py_ssize_t j
    cdef AddReqC* ar
    cdef int64_t anum[4]
    cdef int32_t astr[4]
    cdef PoolC* pc = pool.c
    for f in range(nf):
        key = fields[f].key[:fields[f].keylen].decode("ascii")
        v = d.get(key)
        kind = fields[f].kind
        if kind == K_STR:
            strs[f] = 0 if v is None else pool.intern_str(v)
        elif kind == K_PSTR:
            strs[f] = -1 if v is None else pool.intern_str(v)
        elif kind == K_I32 or kind == K_U32 or kind == K_I64:
            num[f] = _dict_int(v, kind)
        elif kind == K_PU32:
            strs[f] = -1 if v is None else 1
            num[f] = _dict_int(v, K_U32)
        elif kind == K_BOOL:
            if v is not None and type(v) is not bool:
                raise Fallback("not a bool")
            num[f] = 1 if v else 0
        elif kind == K_PPICKUP:
            if m == NULL:
                raise Fallback("nested")
            if v is None:
                m.pp_present = 0
            else:
                if type(v) is not dict:
                    raise Fallback("not a dict")
                _fields_from_dict(pool, v, PICKUP_FIELDS, 6, anum, m.pp, NULL)
                m.pp_present = 1
        elif kind == K_LU32 or kind == K_LADDREQ:
            if m == NULL:
                raise Fallback("nested")
            m.n_list = 0
            if v is None:
                m.list_nil = 1
                continue
            if type(v) is not list:
                raise Fallback("not a list")
            m.list_nil = 0
            for x in v:
                if kind == K_LU32:
                    if grow(<void**>&pc.ubuf, &pc.ubuf_cap, m.n_list + 1, sizeof(int64_t)) < 0:
                        raise MemoryError()
                    if x is None:
                        raise Fallback("null element")
                    pc.ubuf[m.n_list] = _dict_int(x, K_U32)
                else:
                    if grow(<void**>&pc.abuf, &pc.abuf_cap, m.n_list + 1, sizeof(AddReqC)) < 0:
                        raise MemoryError()
                    anum[0] = 0
                    astr[0] = astr[1] = astr[2] = 0
                    astr[3] = -1
                    if x is None:
                        nil = 1
                    elif type(x) is dict:
                        _fields_from_dict(pool, x, ADDREQ_FIELDS, 4, anum, astr, NULL)
                        nil = 0
                    else:
                        raise Fallback("not a dict")
                    ar = &pc.abuf[m.n_list]
                    ar.nil = nil
                    ar.quantity = anum[AR_QUANTITY]
                    ar.sku = astr[AR_SKU]
                    ar.country = astr[2]
                    ar.storeId = astr[AR_STORE]
                m.n_list += 1
        else:
            raise Fallback("a field kind the core does not know")
    return 0


cdef object _fields_to_dict(Pool pool, const FieldC* fields, int nf, const int64_t* num,
                            const int32_t* strs, const MsgC* m):
    """The message as the reference decoder builds it (every key, Go's zero values)."""
    cdef int f, kind
    cdef Py_ssize_t j
    cdef const AddReqC* ar
    cdef PoolC* pc = pool.c
    out = {}
    for f in range(nf):
        key = fields[f].key[:fields[f].keylen].decode("ascii")
        kind = fields[f].kind
        if kind == K_STR or kind == K_PSTR:
            v = pool.text(strs[f])
        elif kind == K_I32 or kind == K_U32 or kind == K_I64:
            v = num[f]
        elif kind == K_PU32:
            v = None if strs[f] < 0 else num[f]
        elif kind == K_BOOL:
            v = num[f] != 0
        elif kind == K_PPICKUP:
            v = None
            if m.pp_present:
                v = {}
                for j, k in enumerate(("id", "name", "address", "city", "zip", "country")):
                    v[k] = pool.text(m.pp[j])
        elif kind == K_LU32:
            v = None if m.list_nil else [pc.ubuf[j] for j in range(m.n_list)]
        else:  # K_LADDREQ
            v = None
            if not m.list_nil:
                v = []
                for j in range(m.n_list):
                    ar = &pc.abuf[j]
                    if ar.nil:
                        v.append(None)
                    else:
                        v.append({"quantity": ar.quantity, "sku": pool.text(ar.sku),
                                  "country": pool.text(ar.country),
                                  "storeId": pool.text(ar.storeId)})
        out[key] = v
    return out


# ------------------------------------------------------------------------------ handlers
# 0: applied; 1..5: the handler's error (state unchanged); R_NOMEM; R_FALLBACK

cdef int catalog_item(Pool pool, ItemC* it, object fields) except -1:
    """A catalog entry's AddItem fields into a blank item (cart._item_from_fields), Fallback
    unless plain: ints exactly ints in int64, strings exactly strs, outlet a str or None."""
    cdef int64_t tax
    cdef int slot
    if not fields:
        fields = {}
    elif type(fields) is not dict:
        raise Fallback("catalog entry is not a dict")
    g = fields.get
    it.itemId = _cat_int(g("item_id"))
    it.price = _cat_int(g("price"))
    it.orgPrice = _cat_int(g("orgPrice"))
    tax = _cat_int(g("tax"))
    it.taxRate = tax if tax != 0 else DEFAULT_TAX_RATE
    it.stock = _cat_int(g("stock"))
    for slot, key in ((S_NAME, "name"), (S_IMAGE, "image"), (S_TYPE, "articleType"),
                      (S_BRAND, "brand"), (S_CATEGORY, "category"),
                      (S_CATEGORY2, "category2"), (S_CATEGORY3, "category3"),
                      (S_CATEGORY4, "category4"), (S_CATEGORY5, "category5"),
                      (S_DISCLAIMER, "disclaimer"), (S_SELLER_ID, "sellerId"),
                      (S_SELLER_NAME, "sellerName")):
        v = g(key)
        it.s[slot] = 0 if v is None else pool.intern_str(v)
    o = g("outlet")
    it.s[S_OUTLET] = -1 if o is None else pool.intern_str(o)
    p = g("parentId")
    if p is not None:
        it.parentId = _cat_int(p)
        it.has_parent = 1
    return 0


cdef int64_t _cat_int(object v) except? -1:
    if v is None:
        return 0
    if type(v) is not int or not (I64_MIN <= v <= I64_MAX):
        raise Fallback("not an int64")
    return <int64_t>v


cdef int add_request(CartC* c, int64_t quantity, int32_t sku, int32_t store_id,
                     const PoolC* pool) noexcept nogil:
    cdef Py_ssize_t i
    cdef ItemC it
    cdef int32_t e
    if quantity < 1:
        return 1
    for i in range(c.n_items):
        if c.items[i].s[S_SKU] == sku:
            set_qty(c, &c.items[i], wadd(c.items[i].qty, quantity))
            return 0
    if pool.catalog_mode == 2:
        return R_FALLBACK
    e = -1
    if pool.catalog_mode == 1 and sku < pool.n_cat_ids:
        e = pool.cat_entry[sku]
    if e >= 0:
        if not pool.cat_plain[e]:
            return R_FALLBACK
        it = pool.cat_items[e]
        it.id = wadd(c.last_item_id, 1)
        it.s[S_SKU] = sku
        it.qty = quantity
        it.s[S_STORE_ID] = store_id
        it.unresolved = 0
    else:
        blank_item(&it, wadd(c.last_item_id, 1))
        it.s[S_SKU] = sku
        it.qty = quantity
        it.taxRate = DEFAULT_TAX_RATE
        it.s[S_STORE_ID] = store_id
        it.unresolved = 1
    price_it(&it)
    return push(c, &it)


cdef int add_item(CartC* c, const MsgC* m) noexcept nogil:
    cdef int64_t quantity = m.num[AI_QUANTITY], tax
    cdef int32_t sku = m.str[AI_SKU], store_id = m.str[AI_STORE]
    cdef Py_ssize_t i
    cdef int slot
    cdef ItemC it
    if quantity < 1:
        return 1
    for i in range(c.n_items):
        if c.items[i].s[S_SKU] == sku and c.items[i].s[S_STORE_ID] == store_id:
            set_qty(c, &c.items[i], wadd(c.items[i].qty, quantity))
            return 0
    blank_item(&it, wadd(c.last_item_id, 1))
    it.itemId = m.num[AI_ITEM_ID]
    for slot in range(13):
        it.s[slot] = m.str[AI_STR[slot]]
    it.price = m.num[AI_PRICE]
    it.orgPrice = m.num[AI_ORG_PRICE]
    it.qty = quantity
    tax = m.num[AI_TAX]
    it.taxRate = tax if tax != 0 else DEFAULT_TAX_RATE
    it.stock = m.num[AI_STOCK]
    it.s[S_OUTLET] = m.str[AI_OUTLET]
    it.s[S_STORE_ID] = store_id
    if m.str[AI_PARENT] >= 0:
        it.has_parent = 1
        it.parentId = m.num[AI_PARENT]
    price_it(&it)
    return push(c, &it)


cdef int remove_item(CartC* c, int64_t item_id) noexcept nogil:
    cdef Py_ssize_t index = find_item(c, item_id), i, j, k
    cdef DelivC* d
    if index < 0:
        return 2
    for i in range(c.n_dels):
        d = &c.dels[i]
        k = 0
        for j in range(d.n_items):
            if d.items[j] != item_id:
                d.items[k] = d.items[j]
                k += 1
        d.n_items = k
    memmove(&c.items[index], &c.items[index + 1],
            <size_t>(c.n_items - index - 1) * sizeof(ItemC))
    c.n_items -= 1
    summed(c)
    return 0


cdef int set_delivery(CartC* c, const MsgC* m, const PoolC* pool) noexcept nogil:
    cdef Py_ssize_t i, n = 0
    cdef int64_t* ids
    cdef DelivC* d
    cdef int k
    if m.list_nil or m.n_list == 0:
        ids = <int64_t*>PyMem_RawMalloc(<size_t>(c.n_items if c.n_items else 1)
                                        * sizeof(int64_t))
        if ids == NULL:
            return R_NOMEM
        for i in range(c.n_items):
            if not delivered(c, c.items[i].id):
                ids[n] = c.items[i].id
                n += 1
        if n == 0:
            PyMem_RawFree(ids)
            return 4
    else:
        for i in range(m.n_list):
            if find_item(c, pool.ubuf[i]) < 0:
                return 2
            if delivered(c, pool.ubuf[i]):
                return 3
        n = m.n_list
        ids = copy_ids(pool.ubuf, n)
        if ids == NULL:
            return R_NOMEM
    if grow(<void**>&c.dels, &c.cap_dels, c.n_dels + 1, sizeof(DelivC)) < 0:
        PyMem_RawFree(ids)
        return R_NOMEM
    d = &c.dels[c.n_dels]
    c.n_dels += 1
    d.id = wadd(c.last_delivery_id, 1)
    d.provider = m.str[SD_PROVIDER]
    d.price = DELIVERY_PRICE
    d.items = ids
    d.n_items = n
    d.has_pp = m.pp_present
    for k in range(6):
        d.pp[k] = m.pp[k]
    c.last_delivery_id = d.id
    summed(c)
    return 0


cdef int set_cart_request(CartC* c, const MsgC* m, const PoolC* pool) noexcept nogil:
    cdef ItemC* old_items = c.items
    cdef Py_ssize_t old_n = c.n_items, old_cap = c.cap_items, j
    cdef int64_t tp = c.totalPrice, tt = c.totalTax, td = c.totalDiscount
    cdef int64_t last = c.last_item_id
    cdef int err = 0
    cdef const AddReqC* ar
    c.items = NULL
    c.n_items = c.cap_items = 0
    summed(c)
    if not m.list_nil:
        for j in range(m.n_list):
            ar = &pool.abuf[j]
            err = add_request(c, ar.quantity, ar.sku, ar.storeId, pool)
            if err:
                break
    if err:
        PyMem_RawFree(c.items)
        c.items = old_items
        c.n_items = old_n
        c.cap_items = old_cap
        c.totalPrice = tp
        c.totalTax = tt
        c.totalDiscount = td
        c.last_item_id = last
        return err
    PyMem_RawFree(old_items)
    return 0


cdef int apply(CartC* c, int kind, const MsgC* m, const PoolC* pool) noexcept nogil:
    """Apply one decoded message (state unchanged on an error)."""
    cdef Py_ssize_t index
    cdef int64_t quantity
    cdef int k
    cdef DelivC* d
    if kind == T_ADD_REQUEST:
        return add_request(c, m.num[AR_QUANTITY], m.str[AR_SKU], m.str[AR_STORE], pool)
    if kind == T_ADD_ITEM:
        return add_item(c, m)
    if kind == T_REMOVE_ITEM:
        return remove_item(c, m.num[RI_ID])
    if kind == T_CHANGE_QUANTITY:
        index = find_item(c, m.num[CQ_ID])
        if index < 0:
            return 2
        quantity = m.num[CQ_QUANTITY]
        if quantity <= 0:
            return remove_item(c, m.num[CQ_ID])
        set_qty(c, &c.items[index], quantity)
        return 0
    if kind == T_SET_DELIVERY:
        return set_delivery(c, m, pool)
    if kind == T_SET_PICKUP_POINT:
        index = find_delivery(c, m.num[SPP_DELIVERY])
        if index < 0:
            return 5
        d = &c.dels[index]
        d.has_pp = 1
        for k in range(6):
            d.pp[k] = m.str[SPP_ID + k]
        return 0
    if kind == T_REMOVE_DELIVERY:
        index = find_delivery(c, m.num[RD_ID])
        if index < 0:
            return 5
        PyMem_RawFree(c.dels[index].items)
        memmove(&c.dels[index], &c.dels[index + 1],
                <size_t>(c.n_dels - index - 1) * sizeof(DelivC))
        c.n_dels -= 1
        summed(c)
        return 0
    if kind == T_SET_CART_REQUEST:
        return set_cart_request(c, m, pool)
    if kind == T_ORDER_CREATED:
        c.orderReference = m.str[OC_ORDER]
        c.paymentStatus = m.str[OC_STATUS]
        c.paymentInProgress = 0
        return 0
    if kind == T_INITIALIZE_CHECKOUT:
        c.orderReference = m.str[IC_ORDER]
        c.paymentStatus = m.str[IC_STATUS]
        c.paymentInProgress = 1 if m.num[IC_PIP] else 0
        return 0
    return R_FALLBACK


# ------------------------------------------------------------------------------ snapshots

cdef class CCart:
    """A cart held by the compiled core (a checkpoint or a final state); ``to_state()``
    makes it a :class:`CartState`. Never changed once made."""
    cdef CartC* c
    cdef readonly Pool pool
    cdef readonly object id
    cdef public object last_change

    def __dealloc__(self):
        cart_free(self.c)
        self.c = NULL

    @property
    def n_items(self):
        return self.c.n_items

    @property
    def totalPrice(self):
        return self.c.totalPrice


cdef CCart wrap(CartC* c, Pool pool, object cart_id, object last_change=None):
    cdef CCart w
    if c == NULL:
        raise MemoryError()
    w = CCart.__new__(CCart)
    w.c = c
    w.pool = pool
    w.id = cart_id
    w.last_change = last_change
    return w


cpdef CCart clone(CCart a):
    """An independent copy."""
    return wrap(cart_clone(a.c), a.pool, a.id, a.last_change)


cpdef CCart empty(object cart_id, Pool pool=None):
    """The cart before any line."""
    return wrap(cart_new(), pool if pool is not None else Pool(), cart_id)


cdef int64_t _as_i64(object v) except? -1:
    if type(v) is not int or not (I64_MIN <= v <= I64_MAX):
        raise Fallback("not an int64")
    return <int64_t>v


cdef int32_t _opt_str(Pool pool, object v) except -2:
    return -1 if v is None else pool.intern_str(v)


cpdef CCart from_state(object s, Pool pool=None):
    """A C cart from a :class:`CartState` (Fallback if a field is not as modelled)."""
    cdef CartC* c
    cdef CCart w
    cdef ItemC it
    cdef DelivC* d
    cdef Py_ssize_t j
    if pool is None:
        pool = Pool()
    if type(s) is not CartState:
        raise Fallback("not a CartState")
    w = wrap(cart_new(), pool, s.id, s.last_change)
    c = w.c
    for x in s.items:
        it.id = _as_i64(x.id)
        it.itemId = _as_i64(x.itemId)
        it.price = _as_i64(x.price)
        it.orgPrice = _as_i64(x.orgPrice)
        it.qty = _as_i64(x.qty)
        it.totalPrice = _as_i64(x.totalPrice)
        it.tax = _as_i64(x.tax)
        it.taxRate = _as_i64(x.taxRate)
        it.stock = _as_i64(x.stock)
        it.discount = _as_i64(x.discount)
        for slot, v in enumerate((x.sku, x.name, x.image, x.type, x.brand, x.category,
                                  x.category2, x.category3, x.category4, x.category5,
                                  x.disclaimer, x.sellerId, x.sellerName)):
            it.s[slot] = pool.intern_str(v)
        it.s[S_OUTLET] = _opt_str(pool, x.outlet)
        it.s[S_STORE_ID] = _opt_str(pool, x.storeId)
        it.has_parent = x.parentId is not None
        it.parentId = _as_i64(x.parentId) if x.parentId is not None else 0
        if type(x.unresolved) is not bool:
            raise Fallback("unresolved is not a bool")
        it.unresolved = x.unresolved
        if push(c, &it) < 0:
            raise MemoryError()
    for x in s.deliveries:
        if grow(<void**>&c.dels, &c.cap_dels, c.n_dels + 1, sizeof(DelivC)) < 0:
            raise MemoryError()
        d = &c.dels[c.n_dels]
        d.items = NULL
        d.n_items = 0
        c.n_dels += 1
        d.id = _as_i64(x.id)
        d.price = _as_i64(x.price)
        d.provider = pool.intern_str(x.provider)
        ids = tuple(x.items)
        d.items = <int64_t*>PyMem_RawMalloc(<size_t>(len(ids) or 1) * sizeof(int64_t))
        if d.items == NULL:
            raise MemoryError()
        for j in range(len(ids)):
            d.items[j] = _as_i64(ids[j])
        d.n_items = len(ids)
        pp = x.pickupPoint
        d.has_pp = pp is not None
        d.pp[0] = 0
        for j in range(1, 6):
            d.pp[j] = -1
        if pp is not None:
            if type(pp) is not PickupPoint:
                raise Fallback("not a PickupPoint")
            d.pp[0] = pool.intern_str(pp.id)
            for j, v in enumerate((pp.name, pp.address, pp.city, pp.zip, pp.country), 1):
                d.pp[j] = _opt_str(pool, v)
    c.totalPrice = _as_i64(s.totalPrice)
    c.totalTax = _as_i64(s.totalTax)
    c.totalDiscount = _as_i64(s.totalDiscount)
    c.last_item_id = _as_i64(s.last_item_id)
    c.last_delivery_id = _as_i64(s.last_delivery_id)
    if type(s.processing) is not bool or type(s.paymentInProgress) is not bool:
        raise Fallback("flags are not bools")
    c.processing = s.processing
    c.paymentInProgress = s.paymentInProgress
    c.orderReference = pool.intern_str(s.orderReference)
    c.paymentStatus = pool.intern_str(s.paymentStatus)
    return w


cpdef object to_state(CCart w):
    """The immutable :class:`CartState` of a C cart."""
    cdef CartC* c = w.c
    cdef Pool pool = w.pool
    cdef ItemC* it
    cdef DelivC* d
    cdef Py_ssize_t i, j
    t = pool.text
    items = []
    for i in range(c.n_items):
        it = &c.items[i]
        items.append(Item(
            it.id, it.itemId, pool.text(it.s[S_SKU]), pool.text(it.s[S_NAME]),
            pool.text(it.s[S_IMAGE]), it.price, it.orgPrice, it.qty, it.totalPrice, it.tax,
            it.taxRate, it.stock, pool.text(it.s[S_TYPE]), pool.text(it.s[S_BRAND]),
            pool.text(it.s[S_CATEGORY]), pool.text(it.s[S_CATEGORY2]),
            pool.text(it.s[S_CATEGORY3]), pool.text(it.s[S_CATEGORY4]),
            pool.text(it.s[S_CATEGORY5]), pool.text(it.s[S_DISCLAIMER]),
            pool.text(it.s[S_SELLER_ID]), pool.text(it.s[S_SELLER_NAME]),
            pool.text(it.s[S_OUTLET]), pool.text(it.s[S_STORE_ID]),
            it.parentId if it.has_parent else None, bool(it.unresolved), it.discount))
    deliveries = []
    for i in range(c.n_dels):
        d = &c.dels[i]
        pp = None
        if d.has_pp:
            pp = PickupPoint(pool.text(d.pp[0]), pool.text(d.pp[1]), pool.text(d.pp[2]),
                             pool.text(d.pp[3]), pool.text(d.pp[4]), pool.text(d.pp[5]))
        deliveries.append(Delivery(d.id, pool.text(d.provider), d.price,
                                   tuple([d.items[j] for j in range(d.n_items)]), pp))
    return CartState(w.id, tuple(items), tuple(deliveries), c.totalPrice, c.totalTax,
                     c.totalDiscount, bool(c.processing), bool(c.paymentInProgress),
                     pool.text(c.orderReference), pool.text(c.paymentStatus),
                     c.last_item_id, c.last_delivery_id, w.last_change)


cpdef dict to_json(CCart w):
    """``state_to_json(to_state(w))`` built straight from the C cart: the state JSON of
    docs/model.md, keys in the contract's order, without the frozen dataclasses between."""
    cdef CartC* c = w.c
    cdef Pool pool = w.pool
    cdef ItemC* it
    cdef DelivC* d
    cdef Py_ssize_t i, j
    items = []
    for i in range(c.n_items):
        it = &c.items[i]
        items.append({
            "id": it.id, "itemId": it.itemId, "sku": pool.text(it.s[S_SKU]),
            "name": pool.text(it.s[S_NAME]), "image": pool.text(it.s[S_IMAGE]),
            "price": it.price, "orgPrice": it.orgPrice, "qty": it.qty,
            "totalPrice": it.totalPrice, "tax": it.tax, "taxRate": it.taxRate,
            "stock": it.stock, "type": pool.text(it.s[S_TYPE]),
            "brand": pool.text(it.s[S_BRAND]), "category": pool.text(it.s[S_CATEGORY]),
            "category2": pool.text(it.s[S_CATEGORY2]),
            "category3": pool.text(it.s[S_CATEGORY3]),
            "category4": pool.text(it.s[S_CATEGORY4]),
            "category5": pool.text(it.s[S_CATEGORY5]),
            "disclaimer": pool.text(it.s[S_DISCLAIMER]),
            "sellerId": pool.text(it.s[S_SELLER_ID]),
            "sellerName": pool.text(it.s[S_SELLER_NAME]),
            "outlet": pool.text(it.s[S_OUTLET]), "storeId": pool.text(it.s[S_STORE_ID]),
            "parentId": it.parentId if it.has_parent else None,
            "unresolved": bool(it.unresolved),
        })
    deliveries = []
    for i in range(c.n_dels):
        d = &c.dels[i]
        pp = None
        if d.has_pp:
            pp = {"id": pool.text(d.pp[0]), "name": pool.text(d.pp[1]),
                  "address": pool.text(d.pp[2]), "city": pool.text(d.pp[3]),
                  "zip": pool.text(d.pp[4]), "country": pool.text(d.pp[5])}
        deliveries.append({"id": d.id, "provider": pool.text(d.provider), "price": d.price,
                           "items": [d.items[j] for j in range(d.n_items)],
                           "pickupPoint": pp})
    return {
        "id": w.id, "items": items, "deliveries": deliveries, "totalPrice": c.totalPrice,
        "totalTax": c.totalTax, "totalDiscount": c.totalDiscount,
        "processing": bool(c.processing), "paymentInProgress": bool(c.paymentInProgress),
        "orderReference": pool.text(c.orderReference),
        "paymentStatus": pool.text(c.paymentStatus), "lastChange": w.last_change,
    }


# ------------------------------------------------------------- state JSON as Go writes it
# What convert stores per cart: marshal(to_json(w) with its lastChange) (go/json.py: orjson's
# compact text, then ``<>&`` and U+2028/9 escaped as Go's json.Marshal does), written here in
# one pass over the C carts with the GIL released, no dict or str per field in between.

cdef struct OutBuf:
    char* buf
    Py_ssize_t n, cap
    int bad        # a text that is not valid UTF-8 (orjson refuses it): the caller falls back


cdef int out_need(OutBuf* o, Py_ssize_t more) noexcept nogil:
    cdef Py_ssize_t cap
    cdef char* b
    if o.n + more <= o.cap:
        return 0
    cap = o.cap * 2 if o.cap else 4096
    while cap < o.n + more:
        cap *= 2
    b = <char*>PyMem_RawRealloc(o.buf, <size_t>cap)
    if b == NULL:
        return -1
    o.buf = b
    o.cap = cap
    return 0


cdef inline int out_raw(OutBuf* o, const char* s, Py_ssize_t n) noexcept nogil:
    if out_need(o, n) < 0:
        return -1
    memcpy(o.buf + o.n, s, <size_t>n)
    o.n += n
    return 0


cdef inline int out_lit(OutBuf* o, const char* s) noexcept nogil:
    return out_raw(o, s, <Py_ssize_t>strlen(s))


cdef int out_int(OutBuf* o, int64_t v) noexcept nogil:
    cdef char tmp[24]
    cdef Py_ssize_t k = 24
    cdef uint64_t u = <uint64_t>v
    if v < 0:
        u = (~u) + 1  # |v| as unsigned (INT64_MIN too)
    while True:
        k -= 1
        tmp[k] = <char>(0x30 + <int>(u % 10))
        u //= 10
        if u == 0:
            break
    if v < 0:
        k -= 1
        tmp[k] = b'-'
    return out_raw(o, tmp + k, 24 - k)


cdef char* _HEX = b"0123456789abcdef"


cdef int out_str(OutBuf* o, const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """``p[:n]`` as a JSON string: orjson's escapes (\\" \\\\ \\b \\t \\n \\f \\r, other control
    characters as lowercase \\u00XX) and Go's (``<>&``, U+2028, U+2029 as \\u003c etc.);
    ``o.bad`` set on bytes that are not valid UTF-8."""
    cdef Py_ssize_t i = 0, w
    cdef unsigned char c
    cdef char* q
    if out_need(o, 6 * n + 2) < 0:  # room for the longest escape of every byte
        return -1
    q = o.buf + o.n
    q[0] = b'"'
    q += 1
    while i < n:
        c = p[i]
        if c >= 0x80:
            w = utf8_width(p, i, n)
            if w == 0:
                o.bad = 1
                return 0
            if w == 3 and c == 0xE2 and p[i + 1] == 0x80 and (p[i + 2] == 0xA8 or p[i + 2] == 0xA9):
                memcpy(q, b"\\u202", 5)
                q[5] = b'8' if p[i + 2] == 0xA8 else b'9'
                q += 6
            else:
                memcpy(q, p + i, <size_t>w)
                q += w
            i += w
            continue
        i += 1
        if c >= 0x20 and c != b'"' and c != b'\\' and c != b'<' and c != b'>' and c != b'&':
            q[0] = <char>c
            q += 1
            continue
        q[0] = b'\\'
        if c == b'"' or c == b'\\':
            q[1] = <char>c
        elif c == 0x08:
            q[1] = b'b'
        elif c == 0x09:
            q[1] = b't'
        elif c == 0x0A:
            q[1] = b'n'
        elif c == 0x0C:
            q[1] = b'f'
        elif c == 0x0D:
            q[1] = b'r'
        else:  # another control character, or < > &
            q[1] = b'u'
            q[2] = b'0'
            q[3] = b'0'
            q[4] = _HEX[c >> 4]
            q[5] = _HEX[c & 15]
            q += 4
        q += 2
    q[0] = b'"'
    o.n = (q + 1) - o.buf
    return 0


cdef inline int out_text(OutBuf* o, const PoolC* pool, int32_t ident) noexcept nogil:
    """A pool text as a JSON string; ``null`` for -1 (a nil pointer)."""
    cdef StrEntry* e
    if ident < 0:
        return out_raw(o, b"null", 4)
    e = &pool.entries[ident]
    return out_str(o, <const unsigned char*>pool.arena + e.off, e.length)


cdef inline int out_key_int(OutBuf* o, const char* key, int64_t v) noexcept nogil:
    if out_lit(o, key) < 0:
        return -1
    return out_int(o, v)


cdef inline int out_key_text(OutBuf* o, const char* key, const PoolC* pool,
                             int32_t ident) noexcept nogil:
    if out_lit(o, key) < 0:
        return -1
    return out_text(o, pool, ident)


# the keys of an item's texts S_TYPE .. S_STORE_ID (their slots' order is the keys' order)
cdef const char* _ITEM_TEXT_KEYS[N_ITEM_STRS - S_TYPE]
_ITEM_TEXT_KEYS[:] = [b',"type":', b',"brand":', b',"category":', b',"category2":',
                      b',"category3":', b',"category4":', b',"category5":', b',"disclaimer":',
                      b',"sellerId":', b',"sellerName":', b',"outlet":', b',"storeId":']


cdef int out_item(OutBuf* o, const ItemC* it, const PoolC* pool) noexcept nogil:
    """An item of to_json's dict as marshal writes it."""
    cdef int k
    if (out_key_int(o, b'{"id":', it.id) < 0
            or out_key_int(o, b',"itemId":', it.itemId) < 0
            or out_key_text(o, b',"sku":', pool, it.s[S_SKU]) < 0
            or out_key_text(o, b',"name":', pool, it.s[S_NAME]) < 0
            or out_key_text(o, b',"image":', pool, it.s[S_IMAGE]) < 0
            or out_key_int(o, b',"price":', it.price) < 0
            or out_key_int(o, b',"orgPrice":', it.orgPrice) < 0
            or out_key_int(o, b',"qty":', it.qty) < 0
            or out_key_int(o, b',"totalPrice":', it.totalPrice) < 0
            or out_key_int(o, b',"tax":', it.tax) < 0
            or out_key_int(o, b',"taxRate":', it.taxRate) < 0
            or out_key_int(o, b',"stock":', it.stock) < 0):
        return -1
    for k in range(S_TYPE, N_ITEM_STRS):  # the texts from type to storeId, in key order
        if out_key_text(o, _ITEM_TEXT_KEYS[k - S_TYPE], pool, it.s[k]) < 0:
            return -1
    if out_lit(o, b',"parentId":') < 0:
        return -1
    if (it.has_parent and out_int(o, it.parentId) < 0) or (
            not it.has_parent and out_lit(o, b"null") < 0):
        return -1
    return out_lit(o, b',"unresolved":true}' if it.unresolved else b',"unresolved":false}')


cdef int out_delivery(OutBuf* o, const DelivC* d, const PoolC* pool) noexcept nogil:
    """A delivery of to_json's dict as marshal writes it."""
    cdef Py_ssize_t j
    if (out_key_int(o, b'{"id":', d.id) < 0
            or out_key_text(o, b',"provider":', pool, d.provider) < 0
            or out_key_int(o, b',"price":', d.price) < 0
            or out_lit(o, b',"items":[') < 0):
        return -1
    for j in range(d.n_items):
        if (j > 0 and out_raw(o, b",", 1) < 0) or out_int(o, d.items[j]) < 0:
            return -1
    if out_lit(o, b'],"pickupPoint":') < 0:
        return -1
    if not d.has_pp:
        return out_lit(o, b"null}")
    if (out_key_text(o, b'{"id":', pool, d.pp[0]) < 0
            or out_key_text(o, b',"name":', pool, d.pp[1]) < 0
            or out_key_text(o, b',"address":', pool, d.pp[2]) < 0
            or out_key_text(o, b',"city":', pool, d.pp[3]) < 0
            or out_key_text(o, b',"zip":', pool, d.pp[4]) < 0
            or out_key_text(o, b',"country":', pool, d.pp[5]) < 0):
        return -1
    return out_lit(o, b"}}")


cdef int out_cart(OutBuf* o, const CartC* c, const PoolC* pool, const char* id_text,
                  Py_ssize_t id_len, const char* lc_text, Py_ssize_t lc_len) noexcept nogil:
    """to_json's dict of ``c`` as marshal writes it (keys in to_json's order, compact), its
    id and lastChange given as UTF-8 texts (lastChange NULL: null)."""
    cdef Py_ssize_t i
    if (out_lit(o, b'{"id":') < 0
            or out_str(o, <const unsigned char*>id_text, id_len) < 0
            or out_lit(o, b',"items":[') < 0):
        return -1
    for i in range(c.n_items):
        if (i > 0 and out_raw(o, b",", 1) < 0) or out_item(o, &c.items[i], pool) < 0:
            return -1
    if out_lit(o, b'],"deliveries":[') < 0:
        return -1
    for i in range(c.n_dels):
        if (i > 0 and out_raw(o, b",", 1) < 0) or out_delivery(o, &c.dels[i], pool) < 0:
            return -1
    if (out_key_int(o, b'],"totalPrice":', c.totalPrice) < 0
            or out_key_int(o, b',"totalTax":', c.totalTax) < 0
            or out_key_int(o, b',"totalDiscount":', c.totalDiscount) < 0
            or out_lit(o, b',"processing":true' if c.processing
                       else b',"processing":false') < 0
            or out_lit(o, b',"paymentInProgress":true' if c.paymentInProgress
                       else b',"paymentInProgress":false') < 0
            or out_key_text(o, b',"orderReference":', pool, c.orderReference) < 0
            or out_key_text(o, b',"paymentStatus":', pool, c.paymentStatus) < 0
            or out_lit(o, b',"lastChange":') < 0
            or (lc_text == NULL and out_lit(o, b"null") < 0)
            or (lc_text != NULL and out_str(o, <const unsigned char*>lc_text, lc_len) < 0)
            or out_raw(o, b"}", 1) < 0):
        return -1
    return 0


cdef bytes _utf8(object s):
    """A str's UTF-8 bytes; Fallback for anything else, or a str that is not valid UTF-8
    (a lone surrogate: orjson, and so marshal, refuses it)."""
    if type(s) is not str:
        raise Fallback("not a str")
    try:
        return (<str>s).encode("utf-8")
    except UnicodeEncodeError:
        raise Fallback("not valid UTF-8") from None


def go_json_states(list states, list last_changes):
    """Each state as :func:`~cartforensics.go.json.marshal` writes ``to_json(state)`` with
    ``lastChange`` set to its entry of ``last_changes`` (a str or None): the compiled
    core's carts (:class:`CCart`) written with the GIL released; an entry that is already
    bytes (a state the caller marshalled itself) is taken as it is. Returns (all the texts
    back to back as bytes, their int64 offsets: len(states) + 1); raises :class:`Fallback`
    when a text is not valid UTF-8 (orjson, and so ``marshal``, refuses it: the caller
    marshals those states itself).

    >>> data, offsets = go_json_states([empty("c<1>"), b"{}"], ["2024-01-01T00:00:00Z", None])
    >>> data[: offsets[1]][:30], data[offsets[1]:]
    (b'{"id":"c\\\\u003c1\\\\u003e","items"', b'{}')
    """
    cdef Py_ssize_t n = len(states), k
    cdef OutBuf o
    cdef CCart w
    cdef bytes b
    cdef int r = 0
    cdef CartC** carts
    cdef PoolC** pools
    cdef char** texts
    cdef Py_ssize_t* lens
    cdef int64_t* off
    import numpy as np
    if len(last_changes) != n:
        raise ValueError("one lastChange per state")
    # what the nogil pass reads, held here: per state its cart (or NULL: pre-written bytes)
    # and the id's and lastChange's UTF-8 texts (or the bytes)
    keep = []
    carts = <CartC**>PyMem_RawMalloc(<size_t>(n + 1) * sizeof(CartC*))
    pools = <PoolC**>PyMem_RawMalloc(<size_t>(n + 1) * sizeof(PoolC*))
    texts = <char**>PyMem_RawMalloc(<size_t>(2 * n + 1) * sizeof(char*))
    lens = <Py_ssize_t*>PyMem_RawMalloc(<size_t>(2 * n + 1) * sizeof(Py_ssize_t))
    off = <int64_t*>PyMem_RawMalloc(<size_t>(n + 1) * sizeof(int64_t))
    o.buf = NULL
    o.n = o.cap = 0
    o.bad = 0
    try:
        if carts == NULL or pools == NULL or texts == NULL or lens == NULL or off == NULL:
            raise MemoryError()
        off[0] = 0
        for k in range(n):
            s = states[k]
            if type(s) is bytes:
                carts[k] = NULL
                pools[k] = NULL
                b = <bytes>s
                keep.append(b)
                texts[2 * k] = PyBytes_AS_STRING(b)
                lens[2 * k] = PyBytes_GET_SIZE(b)
                texts[2 * k + 1] = NULL
                lens[2 * k + 1] = 0
                continue
            w = <CCart?>s
            carts[k] = w.c
            pools[k] = w.pool.c
            b = _utf8(w.id)
            keep.append(b)
            texts[2 * k] = PyBytes_AS_STRING(b)
            lens[2 * k] = PyBytes_GET_SIZE(b)
            if last_changes[k] is None:
                texts[2 * k + 1] = NULL
                lens[2 * k + 1] = 0
            else:
                b = _utf8(last_changes[k])
                keep.append(b)
                texts[2 * k + 1] = PyBytes_AS_STRING(b)
                lens[2 * k + 1] = PyBytes_GET_SIZE(b)
        with nogil:
            for k in range(n):
                if carts[k] == NULL:
                    r = out_raw(&o, texts[2 * k], lens[2 * k])
                else:
                    r = out_cart(&o, carts[k], pools[k], texts[2 * k], lens[2 * k],
                                 texts[2 * k + 1], lens[2 * k + 1])
                if r < 0 or o.bad:
                    break
                off[k + 1] = o.n
        if r < 0:
            raise MemoryError()
        if o.bad:
            raise Fallback("a text that is not valid UTF-8")
        offsets = np.frombuffer(PyBytes_FromStringAndSize(<char*>off, (n + 1) * 8),
                                dtype=np.int64)
        return PyBytes_FromStringAndSize(o.buf, o.n), offsets
    finally:
        PyMem_RawFree(off)
        PyMem_RawFree(o.buf)
        PyMem_RawFree(carts)
        PyMem_RawFree(pools)
        PyMem_RawFree(texts)
        PyMem_RawFree(lens)


# ------------------------------------------------------------------------------ the loop

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


cpdef bint checkpoint_due(Py_ssize_t since, Py_ssize_t left, Py_ssize_t items, int every):
    """Whether to keep a snapshot after this line: ``since`` lines after the last one (or the
    start), ``left`` lines before the end (the final state is always kept), ``items``: what
    a snapshot of the cart copies (:func:`snapshot_size`: items, deliveries and their item
    ids). The gap grows with the cart so that snapshots cost a bounded number of bytes per
    line (about one element's size), and a point is never more than 2 * max(every, items)
    lines from a kept state."""
    return _due(since, left, items, every)


cdef inline bint _due(Py_ssize_t since, Py_ssize_t left, Py_ssize_t items,
                      int every) noexcept nogil:
    cdef Py_ssize_t gap = every if every > items else items
    return since >= gap and left >= gap


cdef Py_ssize_t _snapshot_size(const CartC* c) noexcept nogil:
    """What a snapshot (``cart_clone``) of ``c`` copies: its items, its deliveries and their
    item ids (a cart of thousands of deliveries holding few items copies them all)."""
    cdef Py_ssize_t i, n = c.n_items + c.n_dels
    for i in range(c.n_dels):
        n += c.dels[i].n_items
    return n


def snapshot_size(CCart w):
    """What a snapshot of the cart copies, the size ``checkpoint_due`` spaces snapshots by:
    items + deliveries + the deliveries' item ids.

    >>> snapshot_size(empty("c"))
    0
    """
    return _snapshot_size(w.c)


cdef char _NOTHING[1]


cdef class Replayer:
    """One replay's inputs and per-row outputs, for the compiled core.

    ``payloads``: (UTF-8 data, int64 offsets, valid as uint8) of the events' Arrow payload
    column; ``row_kind``: per row the default type's kind, KIND_UNMODELLED or KIND_UNKNOWN;
    ``has_error``: per row the envelope did not decode in this mode; ``too_long``, ``lines``;
    ``decoders``: ``decoders[type].decode(payload)`` is the reference decoder; ``pool``: the
    replay's :class:`Pool` (strings and catalog). Per row it fills ``codes`` (the outcome),
    ``error_ids`` (an apply error's code 1..5, a payload error's id in
    ``pool.payload_errors``, a not-reached line's too-long line number), ``last_applied``
    (the row of the cart's last applied line so far, -1 none) and ``changed``."""
    cdef const unsigned char* p_data
    cdef const int64_t* p_start
    cdef const int64_t* p_end
    cdef const unsigned char* p_valid
    cdef const signed char* row_kind
    cdef const unsigned char* has_error
    cdef const unsigned char* too_long
    cdef const int64_t* lines
    cdef signed char* codes
    cdef int64_t* error_ids
    cdef int64_t* last_applied
    cdef unsigned char* changed
    cdef Py_ssize_t n_rows
    cdef int every
    cdef bint runnable
    cdef readonly Pool pool
    cdef object decoders
    cdef tuple _keep
    cdef MsgC msg
    #: payloads the scanner could not prove (decoded by the reference decoder, with the GIL)
    cdef readonly Py_ssize_t slow_decodes

    def __init__(self, payloads, row_kind, has_error, too_long, lines, decoders, Pool pool,
                 codes, error_ids, last_applied, changed, int every=64):
        """``payloads``: (data, offsets, valid) of an Arrow string column, or (data, starts,
        ends, valid) per row. The per-row inputs and outputs other than ``row_kind`` may be
        None when only ``advance`` is used (``summaries`` also needs ``codes``)."""
        cdef const unsigned char[::1] data = payloads[0]
        cdef const int64_t[::1] start, end
        cdef const unsigned char[::1] valid = payloads[len(payloads) - 1]
        cdef const signed char[::1] kinds = row_kind
        cdef const unsigned char[::1] he, tl
        cdef const int64_t[::1] ln
        cdef signed char[::1] co
        cdef int64_t[::1] ei, la
        cdef unsigned char[::1] ch
        n = kinds.shape[0]
        if len(payloads) == 3:
            offsets = payloads[1]
            start = offsets[: len(offsets) - 1]
            end = offsets[1:]
        else:
            start = payloads[1]
            end = payloads[2]
        if start.shape[0] != n or end.shape[0] != n or valid.shape[0] != n:
            raise ValueError("the payload buffers do not have one element per row")
        self._keep = (payloads, row_kind, has_error, too_long, lines, codes, error_ids,
                      last_applied, changed, data, start, end, valid, kinds)
        self.n_rows = n
        self.p_data = &data[0] if data.shape[0] else <const unsigned char*>_NOTHING
        self.runnable = all(x is not None for x in (has_error, too_long, lines, codes,
                                                    error_ids, last_applied, changed))
        for x in (has_error, too_long, lines, codes, error_ids, last_applied, changed):
            if x is not None and len(x) != n:
                raise ValueError("the per-row arrays do not have one element per row")
        if n:
            self.p_start = &start[0]
            self.p_end = &end[0]
            self.p_valid = &valid[0]
            self.row_kind = &kinds[0]
            if has_error is not None:
                he = has_error
                self.has_error = &he[0]
            if too_long is not None:
                tl = too_long
                self.too_long = &tl[0]
            if lines is not None:
                ln = lines
                self.lines = &ln[0]
            if codes is not None:
                co = codes
                self.codes = &co[0]
            if error_ids is not None:
                ei = error_ids
                self.error_ids = &ei[0]
            if last_applied is not None:
                la = last_applied
                self.last_applied = &la[0]
            if changed is not None:
                ch = changed
                self.changed = &ch[0]
        self.every = every
        self.pool = pool
        self.decoders = decoders

    # -- decoding ----------------------------------------------------------------------------
    cdef int decode(self, Py_ssize_t r, int kind) except -3 nogil:
        """The row's payload into self.msg: 1 decoded, 0 a payload error (its id in
        error_ids[r]); the scanner first, the reference decoder (with the GIL) if it cannot
        prove the payload."""
        cdef int64_t a, b
        cdef int rc
        if self.p_valid[r]:
            a = self.p_start[r]
            b = self.p_end[r]
            rc = scan_payload(self.pool.c, self.p_data + a, b - a, kind, &self.msg)
            if rc == 1:
                return 1
            if rc == R_NOMEM:
                with gil:
                    raise MemoryError()
        return self.decode_slow(r, kind)

    cdef int decode_slow(self, Py_ssize_t r, int kind) except -3 with gil:
        cdef int64_t a, b
        self.slow_decodes += 1
        if self.p_valid[r]:
            a = self.p_start[r]
            b = self.p_end[r]
            payload = PyBytes_FromStringAndSize(<const char*>self.p_data + a, b - a)
        else:
            payload = None
        if payload is None:
            msg, err = None, "unexpected end of JSON input"
        else:
            msg, err = self.decoders[TYPE_NAMES[kind]].decode(payload)
        if err is not None:
            ident = self.pool.payload_error(err)
            if self.error_ids != NULL:
                self.error_ids[r] = ident
            return 0
        if type(msg) is not dict:
            raise Fallback("decoded message is not a dict")
        msg_zero(&self.msg, kind)
        _fields_from_dict(self.pool, msg, FIELDS[kind], NFIELDS[kind], self.msg.num,
                          self.msg.str, &self.msg)
        return 1

    cdef int apply_row(self, CartC* c, Py_ssize_t r, int kind) except -3 nogil:
        """Apply an (already decoded) row: 0 or the handler error's code."""
        cdef int rc = apply(c, kind, &self.msg, self.pool.c)
        if rc == R_NOMEM:
            with gil:
                raise MemoryError()
        if rc == R_FALLBACK:
            with gil:
                raise Fallback("a catalog entry the core does not model")
        return rc

    # -- a cart ------------------------------------------------------------------------------
    cdef int run_rows(self, CartC* c, const int64_t* rows, Py_ssize_t n, const int64_t* row_ids,
                      int64_t stop_line, int64_t last, Py_ssize_t done, Py_ssize_t total,
                      CartC*** cps, int64_t** cp_pos, Py_ssize_t* n_cps) except -3 nogil:
        """The loop: ``rows`` index every per-row array; ``row_ids`` (NULL: the rows
        themselves) is what last_applied records; ``done`` lines of the cart come before
        these, ``total`` in all (checkpoint spacing); ``stop_line``/``last`` carry on."""
        cdef Py_ssize_t j, r, pos, last_cp = done, cap = 0, cap_pos = 0
        cdef int kind, rc
        cdef CartC* snap
        for j in range(n):
            r = rows[j]
            if r < 0 or r >= self.n_rows:
                with gil:
                    raise IndexError("row out of range")
            self.changed[r] = 0
            self.error_ids[r] = 0
            if stop_line >= 0:
                self.codes[r] = NOT_REACHED
                self.error_ids[r] = stop_line
            elif self.too_long[r]:
                self.codes[r] = TOO_LONG
                stop_line = self.lines[r]
            elif self.has_error[r]:
                self.codes[r] = MALFORMED
            else:
                kind = self.row_kind[r]
                if kind == KIND_UNKNOWN_C:
                    self.codes[r] = UNKNOWN_TYPE
                elif kind < 0 or kind >= N_TYPES:
                    with gil:
                        raise Fallback("a type the core does not model")
                elif not self.decode(r, kind):
                    self.codes[r] = PAYLOAD_ERROR
                else:
                    rc = self.apply_row(c, r, kind)
                    if rc:
                        self.codes[r] = APPLY_ERROR
                        self.error_ids[r] = rc
                    else:
                        self.codes[r] = APPLIED
                        self.changed[r] = 1
                        last = row_ids[j] if row_ids != NULL else r
            self.last_applied[r] = last
            pos = done + j + 1
            # the size is counted only once the shortest gap has passed
            if pos - last_cp >= self.every and _due(pos - last_cp, total - pos,
                                                    _snapshot_size(c), self.every):
                snap = cart_clone(c)
                if snap == NULL or grow(<void**>cps, &cap, n_cps[0] + 1, sizeof(CartC*)) < 0 \
                        or grow(<void**>cp_pos, &cap_pos, n_cps[0] + 1, sizeof(int64_t)) < 0:
                    cart_free(snap)
                    with gil:
                        raise MemoryError()
                cps[0][n_cps[0]] = snap
                cp_pos[0][n_cps[0]] = pos
                n_cps[0] += 1
                last_cp = pos
        return 0

    def run(self, object cart_id, const int64_t[::1] rows):
        """Replay one cart's rows (in line order); fill the per-row arrays at them and return
        (checkpoint_lines, checkpoints, final): checkpoints[j] is the cart after its first
        checkpoint_lines[j] lines (a :class:`CCart`); see ``checkpoint_due``. The GIL is
        released but for payloads the scanner cannot prove. Raises Fallback when a line
        needs the reference core."""
        return self._run(None, cart_id, rows, None, -1, -1, 0, rows.shape[0])

    def run_from(self, object snapshot, object cart_id, const int64_t[::1] rows,
                 row_ids=None, long long stop_line=-1, long long last=-1,
                 Py_ssize_t done=0, Py_ssize_t total=-1):
        """As ``run``, on from ``snapshot`` (a CCart, left unchanged, a CartState, or None
        for the empty cart): ``done`` lines of the cart came before ``rows``, ``total`` it
        has in all (default: done + these), ``stop_line`` the too-long line that already
        stopped the scanner (-1: none), ``last`` the row of the last applied line so far;
        ``row_ids``: what last_applied records per row (default: the rows)."""
        return self._run(snapshot, cart_id, rows, row_ids, stop_line, last, done,
                         done + rows.shape[0] if total < 0 else total)

    cdef object _run(self, object snapshot, object cart_id, const int64_t[::1] rows,
                     object row_ids, int64_t stop_line, int64_t last, Py_ssize_t done,
                     Py_ssize_t total):
        cdef CartC* c
        cdef CCart w
        cdef CartC** cps = NULL
        cdef int64_t* cp_pos = NULL
        cdef Py_ssize_t n_cps = 0, j, n = rows.shape[0]
        cdef const int64_t* rp = &rows[0] if n else NULL
        cdef const int64_t[::1] ids
        cdef const int64_t* idp = NULL
        cdef bint ok = False
        if not self.runnable:
            raise ValueError("this Replayer was made without the per-row arrays run needs")
        for j in range(n):
            if rows[j] < 0 or rows[j] >= self.n_rows:
                raise IndexError("row out of range")
        if row_ids is not None:
            ids = row_ids
            if ids.shape[0] != n:
                raise ValueError("row_ids must have one element per row")
            idp = &ids[0] if n else NULL
        if snapshot is None:
            c = cart_new()
        elif type(snapshot) is CCart:
            if (<CCart>snapshot).pool is not self.pool:
                raise ValueError("the snapshot is of another replay")
            c = cart_clone((<CCart>snapshot).c)
        else:
            w = from_state(snapshot, self.pool)
            c = w.c
            w.c = NULL
        if c == NULL:
            raise MemoryError()
        try:
            with nogil:
                self.run_rows(c, rp, n, idp, stop_line, last, done, total, &cps, &cp_pos,
                              &n_cps)
            ok = True
        finally:
            if not ok:
                cart_free(c)
                for j in range(n_cps):
                    cart_free(cps[j])
                PyMem_RawFree(cps)
                PyMem_RawFree(cp_pos)
        checkpoints = []
        cp_lines = []
        try:
            for j in range(n_cps):
                checkpoints.append(wrap(cps[j], self.pool, cart_id))
                cps[j] = NULL
                cp_lines.append(cp_pos[j])
        finally:
            for j in range(n_cps):
                cart_free(cps[j])
            PyMem_RawFree(cps)
            PyMem_RawFree(cp_pos)
        return cp_lines, checkpoints, wrap(c, self.pool, cart_id)

    def advance(self, object snapshot, const int64_t[::1] rows):
        """The CartState after also applying ``rows`` (all known to be applied) to a
        snapshot (a CCart, left unchanged, or a CartState)."""
        cdef CCart w = clone(snapshot) if type(snapshot) is CCart else \
            from_state(snapshot, self.pool)
        cdef Py_ssize_t j, n = rows.shape[0]
        cdef int kind
        if w.pool is not self.pool:
            raise ValueError("the snapshot is of another replay")
        for j in range(n):
            if rows[j] < 0 or rows[j] >= self.n_rows:
                raise IndexError("row out of range")
            kind = self.row_kind[rows[j]]
            if kind < 0 or kind >= N_TYPES:
                raise Fallback("a type the core does not model")
            if self.decode(rows[j], kind):
                self.apply_row(w.c, rows[j], kind)
        return to_state(w)

    def summaries(self, object cart_id, const int64_t[::1] rows):
        """After each of the cart's rows: (items, quantity, deliveries, total_price) lists;
        ``codes`` (filled by ``run``) says which rows were applied."""
        cdef CCart w = empty(cart_id, self.pool)
        cdef CartC* c = w.c
        cdef Py_ssize_t j, r, n = rows.shape[0]
        cdef int kind
        if self.codes == NULL and n:
            raise ValueError("summaries needs the codes")
        n_items, qty, n_del, total = [], [], [], []
        for j in range(n):
            r = rows[j]
            if r < 0 or r >= self.n_rows:
                raise IndexError("row out of range")
            if self.codes[r] == APPLIED:
                kind = self.row_kind[r]
                if self.decode(r, kind):
                    self.apply_row(c, r, kind)
            n_items.append(c.n_items)
            qty.append(_qty_sum(c))
            n_del.append(c.n_dels)
            total.append(c.totalPrice)
        return n_items, qty, n_del, total


cdef object _qty_sum(CartC* c):
    """Σ qty as Python's unbounded sum (history's "quantity" is not wrapped): in C while no
    overflow is possible (every |qty| < 2**40, fewer than 2**22 items), else in Python ints."""
    cdef int64_t q = 0
    cdef Py_ssize_t i
    cdef bint small = c.n_items < (1 << 22)
    if small:
        for i in range(c.n_items):
            if c.items[i].qty >= (1LL << 40) or c.items[i].qty <= -(1LL << 40):
                small = False
                break
            q += c.items[i].qty
    if small:
        return q
    total = 0
    for i in range(c.n_items):
        total += c.items[i].qty
    return total



# ------------------------------------------------------------------------------ one call, one Replayer
# What a replay asks after its carts ran: a skip's tail from a kept state (run_from), a state
# rebuilt from a snapshot (advance), a cart's history summaries (summaries), whether two
# carts are the same (same_cart). Each takes the row columns and builds a Replayer for the
# call.

def _pool_of(pool, catalog):
    return pool if type(pool) is Pool else Pool(catalog)


def _in_pool(snapshot, pool, catalog):
    """(snapshot, pool) for run_from and advance: the pool given (a Pool), else the
    snapshot's own when it was made for this catalog, else a new one for the catalog; a
    CCart of another pool is carried over (its strings interned again)."""
    if type(pool) is not Pool:
        if type(snapshot) is CCart and (<CCart>snapshot).pool.catalog is catalog:
            pool = (<CCart>snapshot).pool
        else:
            pool = Pool(catalog)
    if type(snapshot) is CCart and (<CCart>snapshot).pool is not pool:
        snapshot = from_state(to_state(snapshot), pool)
    return snapshot, pool


def _has_error(err_col):
    import numpy as np
    return np.fromiter((type(x) is str for x in err_col), dtype=np.uint8, count=len(err_col))


def _fill_errors(list errors, positions, codes, error_ids, Pool pool, list errs, list types):
    """errors[k] = the text of each position k's outcome (codes/error_ids as Replayer.run
    fills them; errs/types: the envelope errors and types by position). Typed: a skip's
    tail of 5,000 lines spent ~4 ms here on numpy scalars."""
    import numpy as np
    cdef const int64_t[::1] pos = (
        np.arange(positions.start, positions.stop, dtype=np.int64)
        if type(positions) is range else np.ascontiguousarray(positions, dtype=np.int64))
    cdef const signed char[::1] c = np.ascontiguousarray(codes, dtype=np.int8)
    cdef const int64_t[::1] e = np.ascontiguousarray(error_ids, dtype=np.int64)
    cdef Py_ssize_t i, k
    cdef signed char code
    for i in range(pos.shape[0]):
        k = pos[i]
        code = c[k]
        if code == APPLIED:
            errors[k] = None
        elif code == MALFORMED:
            errors[k] = errs[k]
        elif code == UNKNOWN_TYPE:
            errors[k] = f"unknown mutation type: {go_quote(types[k] or '')}"
        elif code == PAYLOAD_ERROR:
            errors[k] = pool.perr_texts[e[k]]
        elif code == APPLY_ERROR:
            errors[k] = ERROR_TEXTS[e[k]]
        elif code == TOO_LONG:
            errors[k] = TOO_LONG_ERROR
        else:
            errors[k] = f"not reached: the scanner stopped at line {e[k]}"


def run_from(object snapshot, object cart_id, list rows, const signed char[:] kinds,
             list types, object payloads, list errs, const unsigned char[:] too_long,
             const int64_t[:] lines, object registry, object catalog, signed char[:] codes,
             list errors, int64_t[:] last_applied, unsigned char[:] changed,
             long long stop_line, long long last, Py_ssize_t done, Py_ssize_t total,
             int every, object pool):
    """Replay a cart's ``rows`` (events rows, in order) on from ``snapshot`` (a CCart, left
    unchanged, a CartState, or None for the empty cart), as :meth:`Replayer.run` does from
    the start. Every per-line input and output is indexed by the position ``j`` in ``rows``
    (``kinds``, ``types``, ``errs``, ``too_long``, ``lines``; ``codes``, ``errors``,
    ``last_applied``, ``changed``); only the payload buffers (data, offsets, valid) are
    indexed by the events row. ``stop_line``: the too-long line that already stopped the
    scanner (-1: none); ``last``: the row of the last applied line so far (-1: none);
    ``done``: how many lines of the cart come before ``rows``, ``total`` how many it has
    (checkpoint spacing). Returns (checkpoint_lines, checkpoints, final), checkpoint lines
    counted from the cart's first line. Raises Fallback as :meth:`Replayer.run` does."""
    import numpy as np
    n = len(rows)
    rows_a = np.asarray(rows, dtype=np.int64)
    data, offsets, valid = payloads
    offsets = np.asarray(offsets)
    sub = (data, np.ascontiguousarray(offsets[rows_a]),
           np.ascontiguousarray(offsets[rows_a + 1]),
           np.ascontiguousarray(np.asarray(valid)[rows_a]))
    snapshot, p = _in_pool(snapshot, pool, catalog)
    error_ids = np.zeros(n, dtype=np.int64)
    work_codes = np.zeros(n, dtype=np.int8)
    work_la = np.full(n, -1, dtype=np.int64)
    work_ch = np.zeros(n, dtype=np.uint8)
    rp = Replayer(sub, np.ascontiguousarray(kinds), _has_error(errs),
                  np.ascontiguousarray(too_long), np.ascontiguousarray(lines), registry, p,
                  work_codes, error_ids, work_la, work_ch, every)
    out = rp.run_from(snapshot, cart_id, np.arange(n, dtype=np.int64), rows_a, stop_line,
                      last, done, total)
    np.asarray(codes)[:n] = work_codes
    np.asarray(last_applied)[:n] = work_la
    np.asarray(changed)[:n] = work_ch
    _fill_errors(errors, range(n), work_codes, error_ids, p, errs, types)
    return out


cdef inline bint _same_obj(object a, object b):
    return type(a) is type(b) and a == b


cdef bint _same_items(const ItemC* x, const ItemC* y) noexcept nogil:
    cdef int k
    if (x.id != y.id or x.itemId != y.itemId or x.price != y.price
            or x.orgPrice != y.orgPrice or x.qty != y.qty or x.totalPrice != y.totalPrice
            or x.tax != y.tax or x.taxRate != y.taxRate or x.stock != y.stock
            or x.discount != y.discount or x.unresolved != y.unresolved
            or x.has_parent != y.has_parent or (x.has_parent and x.parentId != y.parentId)):
        return False
    for k in range(N_ITEM_STRS):
        if x.s[k] != y.s[k]:
            return False
    return True


def same_cart(CCart a, CCart b):
    """Whether two carts are the same in everything a later line can see or the state JSON
    shows: then every later line does the same to both."""
    cdef CartC* x = a.c
    cdef CartC* y = b.c
    cdef Py_ssize_t i, j
    cdef DelivC* d
    cdef DelivC* e
    if not (_same_obj(a.id, b.id) and _same_obj(a.last_change, b.last_change)):
        return False
    if a.pool is not b.pool:  # strings are ids of different pools: compare the states
        return to_state(a) == to_state(b)
    if (x.totalPrice != y.totalPrice or x.totalTax != y.totalTax
            or x.totalDiscount != y.totalDiscount or x.last_item_id != y.last_item_id
            or x.last_delivery_id != y.last_delivery_id or x.processing != y.processing
            or x.paymentInProgress != y.paymentInProgress
            or x.orderReference != y.orderReference or x.paymentStatus != y.paymentStatus
            or x.n_items != y.n_items or x.n_dels != y.n_dels):
        return False
    for i in range(x.n_items):
        if not _same_items(&x.items[i], &y.items[i]):
            return False
    for i in range(x.n_dels):
        d = &x.dels[i]
        e = &y.dels[i]
        if (d.id != e.id or d.price != e.price or d.provider != e.provider
                or d.n_items != e.n_items or d.has_pp != e.has_pp):
            return False
        for j in range(d.n_items):
            if d.items[j] != e.items[j]:
                return False
        if d.has_pp:
            for j in range(6):
                if d.pp[j] != e.pp[j]:
                    return False
    return True


def advance(object snapshot, list rows, const signed char[:] row_kind, object payloads,
            object registry, object catalog, object pool):
    """The CartState after also applying ``rows`` (all known to be applied) to a snapshot
    (a CCart, left unchanged, or a CartState)."""
    import numpy as np
    snapshot, pool = _in_pool(snapshot, pool, catalog)
    rp = Replayer(payloads, np.ascontiguousarray(row_kind), None, None, None, registry,
                  pool, None, None, None, None)
    return rp.advance(snapshot, np.asarray(rows, dtype=np.int64))


def summaries(object cart_id, list rows, const signed char[:] row_kind, object payloads,
              const signed char[:] codes, object registry, object catalog, object pool):
    """After each of the cart's rows: (items, quantity, deliveries, total_price) lists."""
    import numpy as np
    rp = Replayer(payloads, np.ascontiguousarray(row_kind), None, None, None, registry,
                  _pool_of(pool, catalog), np.ascontiguousarray(codes), None, None, None)
    return rp.summaries(cart_id, np.asarray(rows, dtype=np.int64))


# ------------------------------------------------------------------------------ tests, profiling

def decode_payload(object payload, object type_name, object registry, Pool pool=None):
    """(msg, error) for one payload (bytes or str) of a default type, as the core decodes it:
    the scanner, else the reference decoder."""
    cdef MsgC m
    cdef int kind = TYPE_NAMES.index(type_name)
    cdef int rc
    cdef bytes b
    if pool is None:
        pool = Pool()
    if payload is None:
        return None, "unexpected end of JSON input"
    b = payload.encode() if type(payload) is str else bytes(payload)
    rc = scan_payload(pool.c, <const unsigned char*>PyBytes_AS_STRING(b),
                      PyBytes_GET_SIZE(b), kind, &m)
    if rc == R_NOMEM:
        raise MemoryError()
    if rc == 1:
        return _fields_to_dict(pool, FIELDS[kind], NFIELDS[kind], m.num, m.str, &m), None
    return registry[type_name].decode(b)


def scan(object payload, object type_name, Pool pool=None):
    """The scanner alone: the message it proves (a dict as the reference decoder builds
    it), or None when it leaves the payload to the reference decoder."""
    cdef MsgC m
    cdef int kind = TYPE_NAMES.index(type_name)
    cdef int rc
    cdef bytes b = payload.encode() if type(payload) is str else bytes(payload)
    if pool is None:
        pool = Pool()
    rc = scan_payload(pool.c, <const unsigned char*>PyBytes_AS_STRING(b),
                      PyBytes_GET_SIZE(b), kind, &m)
    if rc == R_NOMEM:
        raise MemoryError()
    if rc != 1:
        return None
    return _fields_to_dict(pool, FIELDS[kind], NFIELDS[kind], m.num, m.str, &m)


def scan_only(object payloads, const signed char[::1] kinds):
    """How many of the payloads (Arrow buffers as for Replayer) the scanner proves, with the
    GIL released (benchmarks/profiling)."""
    cdef const unsigned char[::1] data = payloads[0]
    cdef const int64_t[::1] off = payloads[1]
    cdef const unsigned char[::1] valid = payloads[2]
    cdef Pool pool = Pool()
    cdef MsgC m
    cdef Py_ssize_t r, ok = 0, n = kinds.shape[0]
    with nogil:
        for r in range(n):
            if valid[r] and 0 <= kinds[r] < N_TYPES:
                if scan_payload(pool.c, &data[0] + off[r], off[r + 1] - off[r], kinds[r],
                                &m) == 1:
                    ok += 1
    return ok
