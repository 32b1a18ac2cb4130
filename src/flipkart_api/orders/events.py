"""What orders publish (events/outbox.py): order.<status> at every change, stock.low."""

from __future__ import annotations

from ..events.outbox import publish
from ..uow import UnitOfWork
from .schemas import OrderOut


def order_changed(
    uow: UnitOfWork,
    order: OrderOut,
    customer_id: int,
    previous_status: str | None,
    reason: str | None = None,
) -> None:
    """order.placed, order.confirmed, ... with the order as the API shows it."""
    payload = {
        "order": order.model_dump(mode="json"),
        "customer_id": customer_id,
        "previous_status": previous_status,
    }
    if reason is not None:
        payload["reason"] = reason
    publish(uow, f"order.{order.status}", f"order:{order.id}", payload)


def stock_low(uow: UnitOfWork, product_id: int, sku: str, stock: int, threshold: int) -> None:
    """stock.low: an order took this product's stock to `threshold` or below."""
    publish(
        uow,
        "stock.low",
        f"product:{product_id}",
        {"product_id": product_id, "sku": sku, "stock": stock, "threshold": threshold},
    )
