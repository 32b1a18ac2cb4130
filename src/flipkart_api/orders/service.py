"""Order use cases: place (idempotent, never oversells) and read (transitions.py: the rest)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, delete, insert, select, tuple_, update
from sqlalchemy.orm import Session

from .. import metrics
from ..catalog.cache_keys import BY_STOCK, invalidate_products
from ..catalog.models import Product
from ..errors import Conflict, InvalidInput, NotFound
from ..orm import utcnow
from ..pagination import decode_cursor, encode_cursor
from ..uow import UnitOfWork
from . import caps, events, idempotency
from .cart import Line, cart_lines
from .models import CartItem, Order, OrderItem
from .schemas import OrderIn, OrderItemOut, OrderListQuery, OrderOut, OrderPage

# Placing an order writes through the tables, not the mapped classes: ORM-enabled DML
# costs noticeably more CPU per statement and nothing here needs an ORM object.
ORDERS = cast(Table, Order.__table__)
ORDER_ITEMS = cast(Table, OrderItem.__table__)
PRODUCTS = cast(Table, Product.__table__)


@dataclass(frozen=True)
class PlacedOrder:
    """The order placed, or the one placed before under the same Idempotency-Key (replayed)."""

    order: OrderOut
    replayed: bool


def place_order(
    sess: Session,
    user_id: int,
    data: OrderIn,
    idempotency_key: str | None,
    ttl_hours: int,
    limits: caps.OpenOrderCaps,
    stock_low_threshold: int = 5,
) -> PlacedOrder:
    """Create an order in one unit of work, or replay the one its Idempotency-Key made.

    Plain INSERT ... RETURNING statements rather than the ORM's unit of work: an order is
    written once and never read back here, and the ORM's bookkeeping was most of the CPU an
    order cost (bench/results, docs/decisions.md). A replay is answered before the caps are
    checked: it creates nothing, and rolls back.
    """
    request_hash = hashlib.sha256(data.model_dump_json().encode()).hexdigest()
    with UnitOfWork(sess) as uow:
        if limits.enabled:
            caps.lock_customer(sess, user_id)
        if idempotency_key is not None:
            stored = idempotency.claim(sess, user_id, idempotency_key, request_hash, ttl_hours)
            if stored is not None:
                uow.rollback()
                metrics.ORDERS_REPLAYED.inc()
                return PlacedOrder(stored, replayed=True)
        if data.from_cart:
            lines = cart_lines(sess, user_id)
            if not lines:
                raise InvalidInput("from_cart", "the cart is empty")
        else:
            lines = [Line(line.product_id, line.quantity) for line in data.items or []]
        if limits.enabled:
            caps.check(sess, user_id, sum(quantity for _, quantity in lines), limits)
        placed = _write_order(uow, user_id, data, idempotency_key, lines, stock_low_threshold)
        events.order_changed(uow, placed, user_id, previous_status=None)
        uow.after_commit(lambda: invalidate_products([pid for pid, _ in lines], lists=(BY_STOCK,)))
        uow.after_commit(metrics.ORDERS_PLACED.inc)
    return PlacedOrder(placed, replayed=False)


def _write_order(
    uow: UnitOfWork,
    user_id: int,
    data: OrderIn,
    idempotency_key: str | None,
    lines: list[Line],
    stock_low_threshold: int,
) -> OrderOut:
    """Take the stock, insert the order and its lines, store the answer for replays."""
    sess = uow.session
    items = _reserve_stock(uow, lines, stock_low_threshold)
    now = utcnow()
    address = data.shipping_address.model_dump()
    total = sum(item.line_total for item in items)
    order_id: int = sess.execute(
        insert(ORDERS)
        .values(
            user_id=user_id,
            status="placed",
            currency="INR",
            shipping_address=address,
            total=total,
            created_at=now,
            updated_at=now,
        )
        .returning(ORDERS.c.id)
    ).scalar_one()
    lines_out = [{"order_id": order_id, **item.model_dump()} for item in items]
    sess.execute(insert(ORDER_ITEMS), lines_out)
    placed = OrderOut(
        id=order_id,
        status="placed",
        items=items,
        total=total,
        currency="INR",
        shipping_address=data.shipping_address,
        created_at=now,
        updated_at=now,
    )
    if idempotency_key is not None:
        idempotency.store_answer(sess, user_id, idempotency_key, placed)
    if data.from_cart:
        ordered = [pid for pid, _ in lines]
        sess.execute(
            delete(CartItem)
            .where(CartItem.user_id == user_id, CartItem.product_id.in_(ordered))
            .execution_options(synchronize_session=False)
        )
    return placed


def _reserve_stock(uow: UnitOfWork, lines: list[Line], low: int) -> list[OrderItemOut]:
    """Decrement stock with conditional UPDATEs, rows locked in id order (no deadlocks).

    `stock >= quantity` is re-checked by the database after any concurrent writer commits,
    so two orders can never both take the last unit. The order that takes a product's
    stock from above `low` to `low` or below publishes stock.low (once per crossing).
    """
    sess = uow.session
    captured: dict[int, OrderItemOut] = {}
    short: list[int] = []
    unknown: list[int] = []
    for product_id, quantity in sorted(lines):
        row = sess.execute(
            update(PRODUCTS)
            .where(PRODUCTS.c.id == product_id, PRODUCTS.c.stock >= quantity)
            .values(stock=PRODUCTS.c.stock - quantity, updated_at=utcnow())
            .returning(PRODUCTS.c.sku, PRODUCTS.c.name, PRODUCTS.c.price, PRODUCTS.c.stock)
        ).first()
        if row is None:
            exists = sess.scalar(select(Product.id).where(Product.id == product_id))
            (short if exists else unknown).append(product_id)
            continue
        sku, name, price, left = row
        if left <= low < left + quantity:
            events.stock_low(uow, product_id, sku, left, low)
        captured[product_id] = OrderItemOut(
            product_id=product_id,
            sku=sku,
            name=name,
            unit_price=price,
            quantity=quantity,
            line_total=price * quantity,
        )
    if unknown:
        raise InvalidInput("items", f"unknown product ids: {', '.join(map(str, unknown))}")
    if short:
        ids = ", ".join(map(str, short))
        metrics.ORDERS_REJECTED.labels("stock").inc()
        raise Conflict(f"Insufficient stock for product ids: {ids}. Nothing was ordered.")
    return [captured[pid] for pid, _ in lines]


def get_order(sess: Session, user_id: int, is_admin: bool, order_id: int) -> OrderOut:
    """An order its owner (or an admin) may see; anyone else gets 404, not 403."""
    order = sess.get(Order, order_id)
    if order is None or (order.user_id != user_id and not is_admin):
        raise NotFound(f"Order {order_id} does not exist.")
    return OrderOut.model_validate(order)


def list_orders(sess: Session, user_id: int, is_admin: bool, query: OrderListQuery) -> OrderPage:
    """The user's orders (all orders for admins), newest first, keyset-paginated."""
    stmt = select(Order).order_by(Order.created_at.desc(), Order.id.desc())
    if not is_admin:
        stmt = stmt.where(Order.user_id == user_id)
    if query.cursor:
        created_at, last_id = decode_cursor(query.cursor, "newest", datetime_key=True)
        stmt = stmt.where(tuple_(Order.created_at, Order.id) < tuple_(created_at, last_id))
    orders = list(sess.scalars(stmt.limit(query.limit + 1)))
    page = orders[: query.limit]
    next_cursor = None
    if len(orders) > query.limit:
        next_cursor = encode_cursor("newest", page[-1].created_at, page[-1].id)
    return OrderPage(items=[OrderOut.model_validate(o) for o in page], next_cursor=next_cursor)
