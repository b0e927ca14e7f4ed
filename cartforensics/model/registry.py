"""The mutation registry: each type's message schema and handler, as data.

Like the seed's ``eventTypeFactories``, but each entry also carries the schema the payload is
decoded into (Go's rules, see :mod:`cartforensics.go.json`) and the pure handler that applies it.
A user adds a type of their own, or swaps a handler, without touching the engine:

>>> from cartforensics.model.cart import HandlerError
>>> def add_voucher(state, msg, catalog=None):
...     if not msg["code"]:
...         raise HandlerError("empty voucher code")
...     return state
>>> reg = default_registry().register("AddVoucher", {"code": "string", "amount": "int64"},
...                                   add_voucher)
>>> "AddVoucher" in reg
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from cartforensics.go.json import (
    BOOL,
    INT32,
    INT64,
    STRING,
    UINT32,
    UINT64,
    GoType,
    Ptr,
    Slice,
    Struct,
    unmarshal,
    zero_value,
)
from cartforensics.go.version import DEFAULT, GoSemantics
from cartforensics.model.cart import DEFAULT_HANDLERS, Handler

_SCALARS: dict[str, GoType] = {
    "int32": INT32, "int64": INT64, "uint32": UINT32, "uint64": UINT64, "string": STRING,
    "bool": BOOL,
}


def go_type(spec: str | GoType | Mapping[str, Any], name: str = "") -> GoType:
    """A Go type from a short spec: ``"int32"``, ``"*string"``, ``"[]uint32"``, ``"[]*Msg"``
    is not parsed (pass a Struct), or a mapping of json key → spec for a nested struct."""
    if isinstance(spec, GoType):
        return spec
    if isinstance(spec, Mapping):
        return Struct(name or "messages.Anonymous", [(k, go_type(v)) for k, v in spec.items()])
    if spec.startswith("*"):
        return Ptr(go_type(spec[1:]))
    if spec.startswith("[]"):
        return Slice(go_type(spec[2:]))
    try:
        return _SCALARS[spec]
    except KeyError:
        raise ValueError(
            f"unknown Go type {spec!r}: use one of {sorted(_SCALARS)}, '*T', '[]T', a mapping "
            "or a go.json type"
        ) from None


def message(name: str, fields: Mapping[str, Any]) -> Struct:
    """A protobuf-style message struct in package ``messages``."""
    return Struct(f"messages.{name}", [(k, go_type(v)) for k, v in fields.items()])


_ADD_REQUEST = message(
    "AddRequest", {"quantity": "int32", "sku": "string", "country": "string", "storeId": "*string"}
)
_PICKUP_POINT = message(
    "PickupPoint",
    {"id": "string", "name": "*string", "address": "*string", "city": "*string",
     "zip": "*string", "country": "*string"},
)

DEFAULT_SCHEMAS: dict[str, Struct] = {
    "AddRequest": _ADD_REQUEST,
    "SetCartRequest": message("SetCartRequest", {"items": Slice(Ptr(_ADD_REQUEST))}),
    "AddItem": message(
        "AddItem",
        {
            "item_id": "uint32", "quantity": "int32", "price": "int64", "orgPrice": "int64",
            "sku": "string", "name": "string", "image": "string", "stock": "int32",
            "tax": "int32", "brand": "string", "category": "string", "category2": "string",
            "category3": "string", "category4": "string", "category5": "string",
            "disclaimer": "string", "articleType": "string", "sellerId": "string",
            "sellerName": "string", "country": "string", "outlet": "*string",
            "storeId": "*string", "parentId": "*uint32",
        },
    ),
    "RemoveItem": message("RemoveItem", {"Id": "uint32"}),
    "ChangeQuantity": message("ChangeQuantity", {"Id": "uint32", "quantity": "int32"}),
    "SetDelivery": message(
        "SetDelivery",
        {"provider": "string", "items": "[]uint32", "pickupPoint": Ptr(_PICKUP_POINT),
         "country": "string", "zip": "string", "address": "*string", "city": "*string"},
    ),
    "SetPickupPoint": message(
        "SetPickupPoint",
        {"deliveryId": "uint32", "id": "string", "name": "*string", "address": "*string",
         "city": "*string", "zip": "*string", "country": "*string"},
    ),
    "RemoveDelivery": message("RemoveDelivery", {"id": "uint32"}),
    "OrderCreated": message("OrderCreated", {"orderId": "string", "status": "string"}),
    "InitializeCheckout": message(
        "InitializeCheckout",
        {"orderId": "string", "status": "string", "paymentInProgress": "bool"},
    ),
}


@dataclass(frozen=True)
class MutationType:
    """One registered type: its name, payload schema and handler."""

    name: str
    schema: Struct
    handler: Handler

    def decode(self, payload: bytes | None, sem: GoSemantics = DEFAULT
               ) -> tuple[dict[str, Any] | None, str | None]:
        """``json.Unmarshal(raw.Payload, instance)`` as the toolchain ``sem`` does it:
        (message, None) or (None, error text)."""
        if payload is None:
            return None, "unexpected end of JSON input"
        msg = _fast_decode(payload, self.schema)
        if msg is not None:
            return msg, None
        value, err = unmarshal(payload, self.schema, sem=sem)
        return (None, err) if err is not None else (value, None)


class Registry:
    """An immutable mapping type name → :class:`MutationType`; ``register`` returns a new one."""

    def __init__(self, types: Mapping[str, MutationType] | None = None) -> None:
        self._types: dict[str, MutationType] = dict(types or {})

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __getitem__(self, name: str) -> MutationType:
        return self._types[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    def get(self, name: str | None) -> MutationType | None:
        """Exact, case-sensitive lookup, like ``registry.Create(raw.Type)``."""
        return self._types.get(name) if name is not None else None

    def register(
        self,
        type_name: str,
        schema: Struct | Mapping[str, Any] | None = None,
        handler: Handler | None = None,
    ) -> Registry:
        """A new registry with ``type_name`` added or replaced. Omit ``schema`` to keep the
        existing one (to swap only a handler), omit ``handler`` to keep the existing one."""
        old = self._types.get(type_name)
        if schema is None:
            if old is None:
                raise ValueError(f"{type_name}: a new type needs a schema")
            struct = old.schema
        elif isinstance(schema, Struct):
            struct = schema
        else:
            struct = message(type_name, schema)
        if handler is None:
            if old is None:
                raise ValueError(f"{type_name}: a new type needs a handler")
            handler = old.handler
        if not callable(handler):
            raise TypeError(f"{type_name}: handler must be callable (state, msg, catalog)")
        types = dict(self._types)
        types[type_name] = MutationType(type_name, struct, handler)
        return Registry(types)

    def without(self, type_name: str) -> Registry:
        """A new registry without ``type_name``."""
        types = dict(self._types)
        types.pop(type_name, None)
        return Registry(types)


def default_registry() -> Registry:
    """The seed's ten types with SPEC §4's schemas and §5's handlers."""
    return Registry(
        {name: MutationType(name, schema, DEFAULT_HANDLERS[name])
         for name, schema in DEFAULT_SCHEMAS.items()}
    )


# ---------------------------------------------------------------------------------------------
# Fast path: orjson parses the payload in C; the result is used only when it is provably what
# Go's decoder would build (every key exact, no repeated key, every value of the field's kind),
# otherwise the full port decides.

_Walk = Callable[[Any, GoType], Any]


class _NotSimple(Exception):
    pass


def _fast_decode(payload: bytes, schema: Struct) -> dict[str, Any] | None:
    if b'\\"' in payload or b'" :' in payload or b'"\t:' in payload or b'"\n:' in payload \
            or b'"\r:' in payload:
        return None
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    counter = [0]
    try:
        msg = _walk_struct(obj, schema, counter, b"-0" in payload)
    except _NotSimple:
        return None
    # every '":' ends a key (no escaped quotes above): equal counts mean no key was repeated
    if payload.count(b'":') != counter[0]:
        return None
    return msg


def _walk_struct(obj: dict, t: Struct, counter: list[int], neg_zero: bool) -> dict[str, Any]:
    counter[0] += len(obj)
    plan = _PLANS.get(id(t))
    if plan is None or plan[0] is not t:
        plan = _plan(t)
        _PLANS[id(t)] = plan
    _, zeros, checks, nested = plan
    out = dict(zeros)
    for key, val in obj.items():
        check = checks.get(key)
        if check is None:
            raise _NotSimple
        code, lo, hi, ft = check
        tv = type(val)
        if code == 0:  # string
            if tv is not str:
                raise _NotSimple
        elif code == 1:  # integer in [lo, hi)
            if tv is not int or not lo <= val < hi or (val == 0 and lo == 0 and neg_zero):
                raise _NotSimple
        elif code == 2:  # bool
            if tv is not bool:
                raise _NotSimple
        else:
            val = _walk(val, ft, counter, neg_zero)
        out[key] = val
    for key, ft in nested:  # zero values of nested structs must not be shared
        if key not in obj:
            out[key] = zero_value(ft)
    return out


def _plan(t: Struct) -> tuple[Struct, dict[str, Any], dict[str, tuple], tuple]:
    """Per struct: zero values, a check per field (scalars inline, the rest by _walk), and
    the nested structs that need a fresh zero value each time."""
    checks: dict[str, tuple] = {}
    for key, ft in t.fields:
        if ft.kind == "string":
            checks[key] = (0, 0, 0, ft)
        elif ft.kind in ("int", "uint"):
            bits = ft.bits  # type: ignore[attr-defined]
            lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if ft.kind == "int" else (0, 1 << bits)
            checks[key] = (1, lo, hi, ft)
        elif ft.kind == "bool":
            checks[key] = (2, 0, 0, ft)
        else:
            checks[key] = (3, 0, 0, ft)
    nested = tuple((k, ft) for k, ft in t.fields if ft.kind == "struct")
    return t, {k: zero_value(ft) for k, ft in t.fields}, checks, nested


_PLANS: dict[int, tuple[Struct, dict[str, Any], dict[str, GoType], tuple]] = {}


def _walk(v: Any, t: GoType, counter: list[int], neg_zero: bool) -> Any:
    kind = t.kind
    if v is None:
        if kind in ("ptr", "slice"):
            return None
        return zero_value(t)
    if kind == "ptr":
        return _walk(v, t.elem, counter, neg_zero)  # type: ignore[attr-defined]
    if kind == "int" or kind == "uint":
        if type(v) is not int:
            raise _NotSimple
        bits = t.bits  # type: ignore[attr-defined]
        if kind == "int":
            if not -(1 << (bits - 1)) <= v < (1 << (bits - 1)):
                raise _NotSimple
        elif not 0 <= v < (1 << bits) or (v == 0 and neg_zero):
            raise _NotSimple
        return v
    if kind == "string":
        if type(v) is not str:
            raise _NotSimple
        return v
    if kind == "bool":
        if type(v) is not bool:
            raise _NotSimple
        return v
    if kind == "struct":
        if type(v) is not dict:
            raise _NotSimple
        return _walk_struct(v, t, counter, neg_zero)  # type: ignore[arg-type]
    if kind == "slice":
        if type(v) is not list:
            raise _NotSimple
        elem = t.elem  # type: ignore[attr-defined]
        return [_walk(x, elem, counter, neg_zero) for x in v]
    raise _NotSimple
