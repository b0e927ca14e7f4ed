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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from cartforensics.model.protocol import ReplayLike

__all__ = ["IMPACT_COLUMNS", "Impact", "PAID", "IN_PAYMENT", "cart_impact", "impact_totals"]

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
