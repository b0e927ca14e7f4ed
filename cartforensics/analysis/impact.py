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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from cartforensics.model.protocol import ReplayLike

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


def _units_by_sku(state: dict[str, Any]) -> dict[str, int]:
    units: dict[str, int] = {}
    for item in state.get("items") or ():
        sku = str(item.get("sku", ""))
        units[sku] = units.get(sku, 0) + int(item.get("qty") or 0)
    return units


def _visible(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k not in _HIDDEN}


def _row(cart_id: str, a: dict[str, Any], b: dict[str, Any]) -> tuple[Any, ...]:
    """One cart: ``a`` what the service rebuilt (go), ``b`` what the writer meant (lenient)."""
    ua, ub = _units_by_sku(a), _units_by_sku(b)
    missing = sum(max(0, q - ua.get(s, 0)) for s, q in ub.items())
    extra = sum(max(0, q - ub.get(s, 0)) for s, q in ua.items())
    va, vb = int(a.get("totalPrice") or 0), int(b.get("totalPrice") or 0)
    order_b, pay_b = str(b.get("orderReference") or ""), str(b.get("paymentStatus") or "")
    lost = bool(order_b) and (str(a.get("orderReference") or "") != order_b
                              or str(a.get("paymentStatus") or "") != pay_b)
    return (cart_id, _visible(a) != _visible(b), sum(ua.values()), sum(ub.values()), missing,
            extra, va, vb, max(0, vb - va), max(0, va - vb), order_b, pay_b, lost,
            lost and pay_b == PAID, lost and pay_b == IN_PAYMENT)


def cart_impact(go: ReplayLike, lenient: ReplayLike,
                cart_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per cart (``cart_ids``, default every cart of ``lenient``) comparing the
    service's rebuilt final state (``go``) with the writer's (``lenient``): see
    :data:`IMPACT_COLUMNS`. An order is lost when the writer's cart has an order reference and
    the rebuilt cart lacks it or its payment status."""
    ids = lenient.cart_ids if cart_ids is None else list(cart_ids)
    rows = [_row(c, go.final_state(c), lenient.final_state(c)) for c in ids]
    return pd.DataFrame.from_records(rows, columns=list(IMPACT_COLUMNS))


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
    units = " union all ".join(
        f"select cart_id, unnest({m}.items, recursive := true), {m == 'go'} as go "
        f"from wanted" for m in ("go", "lenient"))
    # each state parsed once, into what the figures read (the states' text is never kept:
    # kB per cart); `differs` compares it without lastChange (the Go writer's last field),
    # `usual` says where that holds
    frame = con.sql(f"""
        with wanted as materialized (
            select c.ord, s.cart_id,
                json_transform(s.state_go, '{_SHAPE}') as go,
                json_transform(s.state_lenient, '{_SHAPE}') as lenient,
                regexp_replace(s.state_go, '{_LAST}', '}}')
                    <> regexp_replace(s.state_lenient, '{_LAST}', '}}') as differs,
                coalesce(regexp_matches(s.state_go, '{_LAST}')
                         and regexp_matches(s.state_lenient, '{_LAST}'), false) as usual
            from {carts} c join {states} s on s.cart_id = c.cart_id),
        by_sku as (
            select cart_id, coalesce(sku, '') as sku,
                sum(coalesce(qty, 0)) filter (where go) as a,
                sum(coalesce(qty, 0)) filter (where not go) as b
            from ({units}) group by all),
        units as (
            select cart_id, coalesce(sum(a), 0)::bigint as units_go,
                coalesce(sum(b), 0)::bigint as units_lenient,
                coalesce(sum(greatest(0, coalesce(b, 0) - coalesce(a, 0))), 0)::bigint
                    as units_missing,
                coalesce(sum(greatest(0, coalesce(a, 0) - coalesce(b, 0))), 0)::bigint
                    as units_extra
            from by_sku group by cart_id),
        money as (
            select ord, cart_id, usual, differs,
                coalesce(go.totalPrice, 0) as value_go,
                coalesce(lenient.totalPrice, 0) as value_lenient,
                coalesce(go.orderReference, '') as order_go,
                coalesce(go.paymentStatus, '') as payment_go,
                coalesce(lenient.orderReference, '') as order_lenient,
                coalesce(lenient.paymentStatus, '') as payment_lenient,
                coalesce(len(go.items), 0)::bigint as items_go,
                coalesce(len(lenient.items), 0)::bigint as items_lenient
            from wanted)
        select m.cart_id, m.differs,
            coalesce(u.units_go, 0)::bigint as units_go,
            coalesce(u.units_lenient, 0)::bigint as units_lenient,
            coalesce(u.units_missing, 0)::bigint as units_missing,
            coalesce(u.units_extra, 0)::bigint as units_extra,
            m.value_go, m.value_lenient,
            greatest(0, m.value_lenient - m.value_go)::bigint as value_missing,
            greatest(0, m.value_go - m.value_lenient)::bigint as value_extra,
            m.order_lenient, m.payment_lenient,
            m.order_lenient <> '' and (m.order_go <> m.order_lenient
                                       or m.payment_go <> m.payment_lenient) as order_lost,
            m.items_go, m.items_lenient, m.usual
        from money m left join units u on u.cart_id = m.cart_id
        order by m.ord""").to_arrow_table()
    differs = frame["differs"].to_numpy(zero_copy_only=False).copy()
    unusual = np.flatnonzero(~frame["usual"].to_numpy(zero_copy_only=False))
    if len(unusual):  # a state not in the writer's shape: compared as values
        ids = frame["cart_id"].take(pa.array(unusual)).to_pylist()
        con.register("_cf_unusual", pa.table({"cart_id": pa.array(ids, pa.string())}))
        texts = dict((c, (a, b)) for c, a, b in con.sql(
            f"select cart_id, state_go, state_lenient from {states} "
            "where cart_id in (select cart_id from _cf_unusual)").fetchall())
        con.unregister("_cf_unusual")
        for k, c in zip(unusual.tolist(), ids, strict=True):
            a, b = (json.loads(t) for t in texts[c])
            differs[k] = _visible(a) != _visible(b)
    lost = frame["order_lost"].to_numpy(zero_copy_only=False)
    status = frame["payment_lenient"].to_numpy(zero_copy_only=False).astype(object)
    cols: dict[str, Any] = {}
    for c in (*IMPACT_COLUMNS[:13], *ITEM_COLUMNS):
        values = frame[c].to_numpy(zero_copy_only=False)
        cols[c] = differs if c == "differs" else values.astype(object) if c in _TEXT else values
    out = pd.DataFrame(cols)
    out.insert(13, "paid_order_lost", lost & (status == PAID))
    out.insert(14, "in_payment_order_lost", lost & (status == IN_PAYMENT))
    if not len(out):  # as cart_impact gives no rows
        return pd.DataFrame.from_records([], columns=[*IMPACT_COLUMNS, *ITEM_COLUMNS])
    return out


_TEXT = ("cart_id", "order_lenient", "payment_lenient")
# what impact_sql parses of a state, and the writer's last field (lastChange: null or a time)
_SHAPE = ('{"items": [{"sku": "VARCHAR", "qty": "BIGINT"}], "totalPrice": "BIGINT", '
          '"orderReference": "VARCHAR", "paymentStatus": "VARCHAR"}')
_LAST = ',"lastChange":(null|"[^"\\\\]*")}$'



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
