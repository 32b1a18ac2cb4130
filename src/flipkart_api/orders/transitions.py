"""Order status changes: cancel (owner), move along the lifecycle (admin), expire unconfirmed.

Each in one unit of work that locks the order row, restores stock on a cancel exactly once,
and publishes order.<status> (events.py); the row lock also orders one order's events.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..catalog.cache_keys import BY_STOCK, invalidate_products
from ..catalog.models import Product
from ..errors import Conflict, NotFound
from ..orm import utcnow
from ..uow import UnitOfWork
from . import events
from .lifecycle import can_move
from .models import Order
from .schemas import OrderOut


def cancel_order(sess: Session, user_id: int, order_id: int) -> OrderOut:
    """The owner cancels; stock comes back in the same transaction, exactly once."""
    with UnitOfWork(sess) as uow:
        order = _move(uow, order_id, "cancelled", owner_id=user_id)
    return OrderOut.model_validate(order)


def set_status(sess: Session, order_id: int, status: str) -> OrderOut:
    """An admin moves an order along its lifecycle."""
    with UnitOfWork(sess) as uow:
        order = _move(uow, order_id, status, owner_id=None)
    return OrderOut.model_validate(order)


def _move(
    uow: UnitOfWork, order_id: int, target: str, owner_id: int | None, reason: str | None = None
) -> Order:
    sess = uow.session
    # FOR UPDATE: two cancels of one order serialise, and the second sees 'cancelled'.
    order = sess.get(Order, order_id, with_for_update=True)
    if order is None or (owner_id is not None and order.user_id != owner_id):
        raise NotFound(f"Order {order_id} does not exist.")
    if not can_move(order.status, target):
        raise Conflict(f"An order cannot go from '{order.status}' to '{target}'.")
    previous = order.status
    restored: list[int] = []
    if target == "cancelled":
        for item in sorted(order.items, key=lambda i: i.product_id or 0):
            if item.product_id is None:
                continue  # the product was deleted; there is no stock to restore
            sess.execute(
                update(Product)
                .where(Product.id == item.product_id)
                .values(stock=Product.stock + item.quantity, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            restored.append(item.product_id)
    order.status = target
    order.updated_at = utcnow()
    events.order_changed(uow, OrderOut.model_validate(order), order.user_id, previous, reason)
    if restored:
        uow.after_commit(lambda: invalidate_products(restored, lists=(BY_STOCK,)))
    return order


def cancel_unconfirmed(sess: Session, placed_before: dt.datetime, batch: int = 100) -> int:
    """Cancel orders still 'placed' since before `placed_before`, restoring their stock.

    Each in its own unit of work (publishing order.cancelled with reason "unconfirmed"); an
    order confirmed or cancelled meanwhile is left as it is. Returns how many were cancelled.
    """
    ids = list(
        sess.scalars(
            select(Order.id)
            .where(Order.status == "placed", Order.created_at < placed_before)
            .order_by(Order.id)
            .limit(batch)
        )
    )
    sess.rollback()
    cancelled = 0
    for order_id in ids:
        try:
            with UnitOfWork(sess) as uow:
                _move(uow, order_id, "cancelled", owner_id=None, reason="unconfirmed")
        except Conflict:
            continue
        cancelled += 1
    return cancelled
