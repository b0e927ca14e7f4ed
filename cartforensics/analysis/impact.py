"""What the service's rebuild lost, in the units a business reads: carts whose rebuilt state
differs from what the writer meant, item units and money (öre) the rebuild lacks or holds
extra, and orders whose reference or payment status is gone.

Computed from the two replays' final states, cart by cart (:func:`cart_impact`), so the rows
of separate chunks of a fleet simply concatenate; :func:`impact_totals` sums them.

>>> import cartforensics as cf
>>> go, lenient = cf.replay("sample_data"), cf.replay("sample_data", mode="lenient")
>>> totals = impact_totals(cart_impact(go, lenient))
>>> totals.paid_orders_lost, totals.paid_orders_value_lost
(42, 7273470)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from cartforensics.model.cart import CartState, state_to_json
from cartforensics.model.engine import core as engine_core
from cartforensics.model.protocol import ReplayLike
from cartforensics.model.replay import Replay

__all__ = ["IMPACT_COLUMNS", "ITEM_COLUMNS", "Impact", "PAID", "IN_PAYMENT", "cart_impact",
           "impact_sql", "impact_totals"]

PAID = "checkout_complete"
"""The payment status of a completed order."""
IN_PAYMENT = "checkout_incomplete"
"""The payment status of an order whose payment was started and not finished."""

IMPACT_COLUMNS = (
    "cart_id", "differs", "units_go", "units_lenient", "units_missing", "units_extra",
    "value_go", "value_lenient", "value_missing", "value_extra", "order_lenient",
    "payment_lenient", "order_lost", "paid_order_lost", "in_payment_order_lost",
)
"""The columns of :func:`cart_impact`'s frame; values are in öre, units are item quantities."""

ITEM_COLUMNS = ("items_go", "items_lenient")
"""What :func:`impact_sql` gives beside :data:`IMPACT_COLUMNS`: the items each final state holds."""

_HIDDEN = ("lastChange",)  # when the last applied line was written: differs whenever a line is lost

_STATE_COLUMNS = (
    "cart_id", "differs", "units_go", "units_lenient", "units_missing", "units_extra",
    "value_go", "value_lenient", "order_go", "payment_go", "order_lenient", "payment_lenient",
)
# what cart_impact and impact_sql read of each cart's two final states; _impact_frame derives
# the rest of IMPACT_COLUMNS from them (one definition of value missing and of a lost order)


def _units_by_sku(state: dict[str, Any]) -> dict[str, int]:
    units: dict[str, int] = {}
    for item in state.get("items") or ():
        sku = str(item.get("sku", ""))
        units[sku] = units.get(sku, 0) + int(item.get("qty") or 0)
    return units


def _visible(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k not in _HIDDEN}


def _state_row(cart_id: str, a: dict[str, Any], b: dict[str, Any],
               differs: bool | None = None) -> tuple[Any, ...]:
    """One cart's :data:`_STATE_COLUMNS`: ``a`` what the service rebuilt (go), ``b`` what
    the writer meant (lenient); ``differs``: whether they differ beyond the hidden fields,
    when known (None: compared here)."""
    ua, ub = _units_by_sku(a), _units_by_sku(b)
    if ua == ub:  # most carts: the rebuild holds every unit
        missing = extra = 0
    else:
        missing = sum(max(0, q - ua.get(s, 0)) for s, q in ub.items())
        extra = sum(max(0, q - ub.get(s, 0)) for s, q in ua.items())
    if differs is None:
        differs = _visible(a) != _visible(b)
    return (cart_id, differs, sum(ua.values()), sum(ub.values()), missing,
            extra, int(a.get("totalPrice") or 0), int(b.get("totalPrice") or 0),
            *(str(s.get(k) or "") for s in (a, b) for k in ("orderReference", "paymentStatus")))


def _exact(values: Any) -> np.ndarray:
    """Integers as int64 when they all fit, else as Python ints (sums of Go's int64 values
    may not fit: they are never wrapped here).

    >>> _exact([1, 2]).dtype, _exact([1, 2**63]).dtype
    (dtype('int64'), dtype('O'))
    """
    ints = [int(v) for v in values] if not isinstance(values, np.ndarray) else values
    try:
        return np.asarray(ints, dtype=np.int64)
    except OverflowError:
        return np.asarray(ints, dtype=object)


def _impact_frame(state: dict[str, Any], extra: Sequence[str] = ()) -> pd.DataFrame:
    """:data:`IMPACT_COLUMNS` (then ``extra``, integers) of carts from their
    :data:`_STATE_COLUMNS` (``state``: one sequence per column, and the ``extra`` ones): the
    money one replay lacks or holds extra, and whether the writer's order is lost (it has an
    order reference and the rebuilt cart lacks it or its payment status), paid or in
    payment.

    >>> f = _impact_frame({"cart_id": ["c"], "differs": [True], "units_go": [1],
    ...     "units_lenient": [2], "units_missing": [1], "units_extra": [0], "value_go": [5],
    ...     "value_lenient": [9], "order_go": [""], "payment_go": [""],
    ...     "order_lenient": ["R1"], "payment_lenient": [PAID]})
    >>> f[["value_missing", "order_lost", "paid_order_lost"]].to_dict("records")
    [{'value_missing': 4, 'order_lost': True, 'paid_order_lost': True}]
    """
    if not len(state["cart_id"]):  # no carts: as a frame of no records
        return pd.DataFrame.from_records([], columns=[*IMPACT_COLUMNS, *extra])
    text = {c: np.asarray(state[c], dtype=object) for c in
            ("cart_id", "order_go", "payment_go", "order_lenient", "payment_lenient")}
    go, lenient = _exact(state["value_go"]), _exact(state["value_lenient"])
    if go.dtype == object or lenient.dtype == object:
        gap = lenient - go
    else:  # in int64 unless a difference of two int64 totals overflows it
        with np.errstate(over="ignore"):
            gap = lenient - go
        if (((lenient ^ go) & (lenient ^ gap)) < 0).any():
            gap = lenient.astype(object) - go.astype(object)
    order, payment = text["order_lenient"], text["payment_lenient"]
    lost = (order != "") & ((text["order_go"] != order) | (text["payment_go"] != payment))
    cols = {
        "cart_id": text["cart_id"],
        "differs": np.asarray(state["differs"], dtype=bool),
        **{c: _exact(state[c]) for c in
           ("units_go", "units_lenient", "units_missing", "units_extra")},
        "value_go": go, "value_lenient": lenient,
        "value_missing": _exact(np.maximum(gap, 0)), "value_extra": _exact(np.maximum(-gap, 0)),
        "order_lenient": order, "payment_lenient": payment,
        "order_lost": lost, "paid_order_lost": lost & (payment == PAID),
        "in_payment_order_lost": lost & (payment == IN_PAYMENT),
    }
    assert tuple(cols) == IMPACT_COLUMNS
    return pd.DataFrame({**cols, **{c: _exact(state[c]) for c in extra}})


def _visible_finals(r: ReplayLike) -> Callable[[str], dict[str, Any]]:
    """A cart's final state JSON without the hidden fields, as a fresh dict. On a
    :class:`~cartforensics.model.replay.Replay`, straight from the cart its replay ended
    with: no lastChange is decoded (about half of what ``final_state`` costs a cart), as
    none is compared; on any other replay, its ``final_state``."""
    runs = getattr(r, "_runs", None) if isinstance(r, Replay) else None

    def of_state(cart_id: str) -> dict[str, Any]:
        return _visible(r.final_state(cart_id))

    if runs is None:
        return of_state

    def of_run(cart_id: str) -> dict[str, Any]:
        run = runs.get(cart_id)
        if run is None or not len(run.rows):  # no line: its start's state (final_state's)
            return of_state(cart_id)
        final = run.final
        out = state_to_json(final) if isinstance(final, CartState) else engine_core.to_json(final)
        for k in _HIDDEN:
            out.pop(k, None)
        return out

    return of_run


def cart_impact(go: ReplayLike, lenient: ReplayLike,
                cart_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per cart (``cart_ids``, default every cart of ``lenient``) comparing the
    service's rebuilt final state (``go``) with the writer's (``lenient``): see
    :data:`IMPACT_COLUMNS`. An order is lost when the writer's cart has an order reference and
    the rebuilt cart lacks it or its payment status."""
    ids = lenient.cart_ids if cart_ids is None else list(cart_ids)
    final_go, final_lenient = _visible_finals(go), _visible_finals(lenient)
    rows = []
    for c in ids:
        a, b = final_go(c), final_lenient(c)
        rows.append(_state_row(c, a, b, a != b))
    return _impact_frame(dict(zip(_STATE_COLUMNS, zip(*rows, strict=True) if rows else
                                  ((),) * len(_STATE_COLUMNS), strict=True)))


def impact_sql(con: Any, states: str, carts: str) -> pd.DataFrame:
    """:func:`cart_impact`'s rows (and :data:`ITEM_COLUMNS`) computed by DuckDB on ``con``
    where the states lie: ``states`` names a relation of final states (``cart_id``,
    ``state_go``, ``state_lenient``: the JSON a dataset's ``carts/`` stores, as
    :func:`cartforensics.analysis.sql.sql`'s ``_cf_states`` holds them), ``carts`` a relation
    (``cart_id``, ``ord``) of the carts wanted, in that order. Equal to :func:`cart_impact`
    on the replays (the states are the Go writer's JSON: one spelling per value).

    >>> import cartforensics as cf
    >>> con = cf.sql("sample_data")
    >>> _ = con.execute("create temp table o as select cart_id, row_number() over "
    ...                 "(order by cart_id) as ord from _cf_states")
    >>> impact_totals(impact_sql(con, "_cf_states", "o")).paid_orders_lost
    42
    """
    # A cart whose two states are in the Go writer's shape (_TAIL: its last fields as the
    # writer spells them) is read with regular expressions, never parsed: its items'
    # quantities, its totals and, where the units are grouped by SKU, its SKUs as written (one
    # spelling per value); the states' text is never kept (kB per cart). Units per SKU are
    # grouped only where the per-cart sums cannot tell them: both carts hold items and differ,
    # or a quantity is negative. Sums are HUGEINT: Go's int64 quantities may add up past
    # int64. A cart of another shape is computed here as cart_impact computes it.
    def read(m: str) -> str:  # one state's figures (a shaped one's)
        return f"""
            list_transform(regexp_extract_all(state_{m}, '{_QTY}', 1),
                           lambda q: coalesce(try_cast(q as hugeint), 0)) as qty_{m},
            coalesce(try_cast(tail_{m}.total as bigint), 0) as value_{m},
            case when shaped then json_extract_string(tail_{m}.order, '$') end as order_{m},
            case when shaped then json_extract_string(tail_{m}.payment, '$') end
                as payment_{m},
            coalesce(list_sum(qty_{m}), 0) as units_{m},
            len(qty_{m})::bigint as items_{m}"""

    frame = con.sql(f"""
        with texts as (
            select c.ord, s.cart_id, s.state_go, s.state_lenient,
                regexp_extract(s.state_go, '{_TAIL}', {_PARTS}) as tail_go,
                regexp_extract(s.state_lenient, '{_TAIL}', {_PARTS}) as tail_lenient,
                coalesce(try_cast(tail_go['total'] as bigint) is not null
                         and try_cast(tail_lenient['total'] as bigint) is not null, false)
                    as shaped,
                -- (texts of different lengths but for lastChange differ)
                case when strlen(s.state_go) - strlen(tail_go['changed'])
                          <> strlen(s.state_lenient) - strlen(tail_lenient['changed'])
                     then true
                     else regexp_replace(s.state_go, '{_LAST}', '}}')
                          <> regexp_replace(s.state_lenient, '{_LAST}', '}}') end as differs
            from {carts} c join {states} s on s.cart_id = c.cart_id),
        wanted as materialized (
            select ord, cart_id, shaped, differs, {read("go")}, {read("lenient")},
                shaped and differs and not (coalesce(list_min(qty_go), 0) >= 0
                                            and coalesce(list_min(qty_lenient), 0) >= 0
                                            and (items_go = 0 or items_lenient = 0))
                    as grouped,
                case when grouped then regexp_extract_all(state_go, '{_SKU}', 1) end as sku_go,
                case when grouped then regexp_extract_all(state_lenient, '{_SKU}', 1) end
                    as sku_lenient
            from texts),
        by_sku as (
            select cart_id, sku,
                sum(qty) filter (where go) as a, sum(qty) filter (where not go) as b
            from (select cart_id, unnest(sku_go) as sku, unnest(qty_go) as qty, true as go
                  from wanted where grouped union all
                  select cart_id, unnest(sku_lenient), unnest(qty_lenient), false
                  from wanted where grouped)
            group by all),
        units as (
            select cart_id,
                -- (a SKU one cart lacks counts in the other's sum only: as cart_impact)
                sum(greatest(0, b - coalesce(a, 0))) as units_missing,
                sum(greatest(0, a - coalesce(b, 0))) as units_extra
            from by_sku group by cart_id)
        select w.cart_id, w.differs, w.units_go, w.units_lenient,
            case when w.grouped then coalesce(u.units_missing, 0)
                 when not w.differs or w.items_go > 0 then 0 else w.units_lenient end
                as units_missing,
            case when w.grouped then coalesce(u.units_extra, 0)
                 when not w.differs or w.items_lenient > 0 then 0 else w.units_go end
                as units_extra,
            w.value_go, w.value_lenient, w.order_go, w.payment_go, w.order_lenient,
            w.payment_lenient, w.items_go, w.items_lenient,
            w.shaped and (not w.grouped or len(w.sku_go) = w.items_go
                          and len(w.sku_lenient) = w.items_lenient) as read
        from wanted w left join units u on u.cart_id = w.cart_id
        order by w.ord""").to_arrow_table()
    cols = {c: _numbers(frame[c]) for c in (*_STATE_COLUMNS, *ITEM_COLUMNS)}
    other = np.flatnonzero(~frame["read"].to_numpy(zero_copy_only=False))
    if len(other):  # states of another shape: parsed, as cart_impact reads them
        ids = frame["cart_id"].take(pa.array(other)).to_pylist()
        con.register("_cf_other", pa.table({"cart_id": pa.array(ids, pa.string())}))
        texts = {c: (a, b) for c, a, b in con.sql(
            f"select cart_id, state_go, state_lenient from {states} "
            "where cart_id in (select cart_id from _cf_other)").fetchall()}
        con.unregister("_cf_other")
        for c in (*_STATE_COLUMNS, *ITEM_COLUMNS):
            cols[c] = cols[c].astype(object)
        for k, cart in zip(other.tolist(), ids, strict=True):
            a, b = (json.loads(t) if t is not None else {} for t in texts[cart])
            items = (len(s.get("items") or ()) for s in (a, b))
            for c, v in zip((*_STATE_COLUMNS, *ITEM_COLUMNS), (*_state_row(cart, a, b), *items),
                            strict=True):
                cols[c][k] = v
    return _impact_frame(cols, ITEM_COLUMNS)


def _numbers(column: pa.ChunkedArray) -> np.ndarray:
    """A column of :func:`impact_sql`'s answer as numpy: HUGEINT sums (Arrow decimals) as
    int64 when they fit, else as Python ints; text as objects."""
    if pa.types.is_decimal(column.type):
        try:
            column = column.cast(pa.int64())
        except pa.ArrowInvalid:
            return _exact(column.to_pylist())
    values = column.to_numpy(zero_copy_only=False)
    return values.astype(object) if pa.types.is_string(column.type) else values


# what impact_sql reads of a state in the Go writer's shape: its last field (lastChange: null
# or a time), its last fields (_TAIL), its items' quantities (Go ints) and SKUs
_LAST = ',"lastChange":(null|"[^"\\\\]*")}$'
_STRING = '"(?:[^"\\\\]|\\\\.)*"'  # a JSON string as written (RE2)
_TAIL = (f',"totalPrice":(-?[0-9]+),"totalTax":-?[0-9]+,"totalDiscount":-?[0-9]+,'
         f'"processing":(?:true|false),"paymentInProgress":(?:true|false),'
         f'"orderReference":({_STRING}),"paymentStatus":({_STRING})'
         + _LAST)
# the Go writer's last fields: in a state that ends so, `,"qty":` and `,"sku":` are an item's
# (a quote after a comma is never in a string)
_PARTS = "['total', 'order', 'payment', 'changed']"  # _TAIL's groups
_QTY = ',"qty":(-?[0-9]+)[,}]'
_SKU = f',"sku":({_STRING})'



@dataclass(frozen=True)
class Impact:
    """Fleet totals of :func:`cart_impact` rows (money in öre)."""

    carts: int
    carts_differing: int
    units_missing: int
    units_extra: int
    value_go: int
    value_lenient: int
    value_missing: int
    value_extra: int
    orders_lost: int
    paid_orders: int
    paid_orders_lost: int
    paid_orders_value_lost: int
    in_payment_orders_lost: int
    in_payment_orders_value_lost: int


def impact_totals(rows: pd.DataFrame) -> Impact:
    """The totals of :func:`cart_impact` rows (of one replay or of chunks concatenated)."""
    paid = rows["payment_lenient"] == PAID

    def total(col: str, where: Any = None) -> int:
        s = rows[col] if where is None else rows.loc[where, col]
        return int(s.sum())

    return Impact(
        carts=len(rows), carts_differing=int(rows["differs"].sum()),
        units_missing=total("units_missing"), units_extra=total("units_extra"),
        value_go=total("value_go"), value_lenient=total("value_lenient"),
        value_missing=total("value_missing"), value_extra=total("value_extra"),
        orders_lost=int(rows["order_lost"].sum()), paid_orders=int(paid.sum()),
        paid_orders_lost=int(rows["paid_order_lost"].sum()),
        paid_orders_value_lost=total("value_lenient", rows["paid_order_lost"]),
        in_payment_orders_lost=int(rows["in_payment_order_lost"].sum()),
        in_payment_orders_value_lost=total("value_lenient", rows["in_payment_order_lost"]),
    )
