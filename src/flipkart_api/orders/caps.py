"""Caps on what one customer's unconfirmed orders hold, so stock cannot be hoarded.

An order reserves its stock when placed and keeps it until an admin confirms it or someone
cancels it. Without a cap one customer could take the whole catalog off sale for free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from .. import metrics
from ..auth.models import User
from ..errors import Conflict
from .models import Order, OrderItem

ORDERS = cast(Table, Order.__table__)
ORDER_ITEMS = cast(Table, OrderItem.__table__)
USERS = cast(Table, User.__table__)


@dataclass(frozen=True)
class OpenOrderCaps:
    """ORDERS_MAX_OPEN and ORDERS_MAX_OPEN_UNITS (0 turns either off)."""

    max_orders: int
    max_units: int

    @property
    def enabled(self) -> bool:
        """True when either cap is on."""
        return bool(self.max_orders or self.max_units)

    @property
    def rows_to_read(self) -> int:
        """How many open orders decide the check (never all of a customer's history).

        With an order cap, reading that many settles it: that many open is a refusal; fewer
        means we read them all. With only a unit cap, each order holds at least one unit, so
        max_units orders already hold enough for any new order to go over.
        """
        return self.max_orders or self.max_units


def lock_customer(sess: Session, user_id: int) -> None:
    """Serialise one customer's orders (PostgreSQL) so two cannot both pass the check.

    FOR NO KEY UPDATE, not FOR UPDATE: the foreign-key checks of the customer's cart and
    idempotency-key inserts take KEY SHARE, which this does not block. SQLite needs nothing:
    the order's BEGIN IMMEDIATE already makes writers take turns.
    """
    if sess.get_bind().dialect.name == "postgresql":
        sess.execute(
            select(USERS.c.id).where(USERS.c.id == user_id).with_for_update(key_share=True)
        )


def _refused(message: str) -> Conflict:
    """The 409 for an order over a cap, counted (flipkart_orders_rejected_total{reason="cap"})."""
    metrics.ORDERS_REJECTED.labels("cap").inc()
    return Conflict(message)


def check(sess: Session, user_id: int, units: int, caps: OpenOrderCaps) -> None:
    """409 when an order of `units` would pass either cap; call after lock_customer.

    One indexed aggregate (the partial index on placed orders) over at most
    `caps.rows_to_read` orders. It must be a statement of its own after the lock: under READ
    COMMITTED a statement's snapshot is taken when it starts, and one that waited for the
    lock inside would not see the order the other transaction just committed.
    """
    if caps.max_units and units > caps.max_units:
        raise _refused(
            f"This order holds {units} units; at most {caps.max_units} units may wait in "
            "unconfirmed orders. Order fewer."
        )
    open_orders = (
        select(ORDERS.c.id)
        .where(ORDERS.c.user_id == user_id, ORDERS.c.status == "placed")
        .limit(caps.rows_to_read)
        .subquery()
    )
    count, held = sess.execute(
        select(
            func.count(func.distinct(open_orders.c.id)),
            func.coalesce(func.sum(ORDER_ITEMS.c.quantity), 0),
        ).select_from(open_orders.join(ORDER_ITEMS, ORDER_ITEMS.c.order_id == open_orders.c.id))
    ).one()
    if caps.max_orders and count >= caps.max_orders:
        raise _refused(
            f"You have {caps.max_orders} unconfirmed orders, the most allowed; order again "
            "once one is confirmed, or cancel one."
        )
    if caps.max_units and held + units > caps.max_units:
        raise _refused(
            f"Your unconfirmed orders hold {held} units and this order {units}; at most "
            f"{caps.max_units} units may wait in unconfirmed orders. Order fewer, or wait "
            "until one is confirmed."
        )
