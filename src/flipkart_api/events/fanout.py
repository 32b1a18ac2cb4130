"""Fanning an event out: one delivery per receiver, created once, in one transaction."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from ..auth.models import User
from ..db import rowcount
from ..orm import utcnow
from ..settings import Settings
from ..uow import UnitOfWork
from .models import Delivery, OutboxEvent, WebhookEndpoint

DELIVERIES = cast(Table, Delivery.__table__)
OUTBOX = cast(Table, OutboxEvent.__table__)
# Events the customer gets an email about.
EMAILED = frozenset(
    {"order.placed", "order.confirmed", "order.shipped", "order.delivered", "order.cancelled"}
)


def fan_out(sess: Session, settings: Settings, event_pk: int) -> list[int]:
    """Create the event's deliveries unless that was done before; their ids.

    The claim (dispatched_at set where it was unset) and the deliveries commit together,
    so a fan-out that is cut short leaves nothing, and one that ran twice creates nothing
    the second time. On PostgreSQL each delivery's job is deferred in the same transaction.
    """
    now = utcnow()
    with UnitOfWork(sess) as uow:
        claimed = rowcount(
            sess.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id == event_pk, OUTBOX.c.dispatched_at.is_(None))
                .values(dispatched_at=now)
            )
        )
        if not claimed:
            uow.rollback()
            return []
        event = sess.execute(select(OutboxEvent).where(OutboxEvent.id == event_pk)).scalar_one()
        rows = _receivers(sess, settings, event)
        if not rows:
            return []
        created = sess.execute(
            insert(DELIVERIES)
            .values([{**row, "event_id": event_pk, "status": "pending", "attempts": 0,
                      "next_attempt_at": now, "created_at": now} for row in rows])
            .returning(DELIVERIES.c.id, DELIVERIES.c.lock_key)
        ).all()  # fmt: skip
        if sess.get_bind().dialect.name == "postgresql":
            from .queue import defer_delivery

            for delivery_id, lock_key in sorted(created):
                defer_delivery(sess, delivery_id, lock_key)
    return sorted(delivery_id for delivery_id, _ in created)


def _receivers(sess: Session, settings: Settings, event: OutboxEvent) -> list[dict[str, Any]]:
    """The customer's mailbox (order events, when SMTP is set) and each subscribed endpoint."""
    rows: list[dict[str, Any]] = []
    if settings.smtp_url and event.type in EMAILED:
        email = sess.scalar(select(User.email).where(User.id == event.payload.get("customer_id")))
        if email:
            rows.append(
                {"channel": "email", "endpoint_id": None, "recipient": email,
                 "lock_key": f"email:{event.subject}"}
            )  # fmt: skip
    endpoints = sess.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.event_types)
        .where(WebhookEndpoint.enabled.is_(True))
        .order_by(WebhookEndpoint.id)
    ).all()
    for endpoint_id, types in endpoints:
        if not types or event.type in types:
            rows.append(
                {"channel": "webhook", "endpoint_id": endpoint_id, "recipient": None,
                 "lock_key": f"webhook:{endpoint_id}:{event.subject}"}
            )  # fmt: skip
    return rows


def requeue(uow: UnitOfWork, delivery: Delivery) -> None:
    """Send `delivery` again (a redeliver): pending from now, with a fresh retry schedule.

    It keeps its place in its receiver's order by lock key: it goes out once no earlier
    pending delivery of the same receiver and subject is waiting. Its attempts stay in the log.
    """
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    delivery.lease_until = None
    sess = uow.session
    sess.flush()
    if sess.get_bind().dialect.name == "postgresql":
        from .queue import defer_delivery

        defer_delivery(sess, delivery.id, delivery.lock_key)
    else:
        from .embedded import wake

        uow.after_commit(wake)
