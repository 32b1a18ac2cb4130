"""Fanning events out: one delivery per receiver, created once, in batches.

The relay (the worker's loop on PostgreSQL, the embedded worker's on SQLite) takes the
oldest undispatched events, marks them dispatched and inserts their deliveries in one
transaction, so a fan-out cut short leaves nothing and one that runs twice creates nothing
the second time. On PostgreSQL each delivery's job is deferred in that same transaction,
and one relay runs at a time across all workers (an advisory lock): deliveries, and so
their jobs, are created in event order, which is what keeps one subject's events in order.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session

from ..auth.models import User
from ..orm import utcnow
from ..settings import Settings
from ..uow import UnitOfWork
from .models import Delivery, OutboxEvent, WebhookEndpoint

DELIVERIES = cast(Table, Delivery.__table__)
OUTBOX = cast(Table, OutboxEvent.__table__)
BATCH = 200  # events a transaction: the backlog drains in a few of them
# Events the customer gets an email about.
EMAILED = frozenset(
    {"order.placed", "order.confirmed", "order.shipped", "order.delivered", "order.cancelled"}
)
# pg_try_advisory_xact_lock's key for "the relay": any constant of our own.
RELAY_LOCK = 0x666B_6F75_7462  # "fkoutb"


def fan_out_pending(sess: Session, settings: Settings, limit: int = BATCH) -> tuple[int, list[int]]:
    """Dispatch up to `limit` of the oldest undispatched events: (events taken, delivery ids).

    (0, []) when there is nothing to do, or when another relay holds the lock right now.
    """
    postgres = sess.get_bind().dialect.name == "postgresql"
    now = utcnow()
    with UnitOfWork(sess) as uow:
        if postgres and not sess.scalar(select(func.pg_try_advisory_xact_lock(RELAY_LOCK))):
            uow.rollback()
            return 0, []
        oldest = (
            select(OUTBOX.c.id)
            .where(OUTBOX.c.dispatched_at.is_(None))
            .order_by(OUTBOX.c.id)
            .limit(limit)
            .scalar_subquery()
        )
        claimed = sess.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id.in_(oldest), OUTBOX.c.dispatched_at.is_(None))
            .values(dispatched_at=now)
            .returning(OUTBOX.c.id, OUTBOX.c.type, OUTBOX.c.subject, OUTBOX.c.payload)
        ).all()
        if not claimed:
            uow.rollback()
            return 0, []
        events = sorted(claimed, key=lambda event: event.id)
        rows = [
            {**row, "event_id": event.id, "status": "pending", "attempts": 0,
             "next_attempt_at": now, "created_at": now}
            for event, row in _receivers(sess, settings, events)
        ]  # fmt: skip
        if not rows:
            return len(events), []
        created = sorted(
            sess.execute(
                insert(DELIVERIES).values(rows).returning(DELIVERIES.c.id, DELIVERIES.c.lock_key)
            ).all()
        )
        if postgres:
            from .queue import defer_deliveries

            defer_deliveries(sess, [(delivery_id, lock_key) for delivery_id, lock_key in created])
    return len(events), [delivery_id for delivery_id, _ in created]


Row = tuple[Any, dict[str, Any]]


def _receivers(sess: Session, settings: Settings, events: list[Any]) -> list[Row]:
    """(event, delivery row) in event order: the customer's mailbox (order events, when SMTP
    is set), then each enabled endpoint subscribed to the event's type."""
    emails: dict[Any, str] = {}
    emailed = [e for e in events if e.type in EMAILED] if settings.smtp_url else []
    customers = {e.payload.get("customer_id") for e in emailed} - {None}
    if customers:
        emails = dict(sess.execute(select(User.id, User.email).where(User.id.in_(customers))).all())
    endpoints = sess.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.event_types)
        .where(WebhookEndpoint.enabled.is_(True))
        .order_by(WebhookEndpoint.id)
    ).all()
    rows: list[Row] = []
    for event in events:
        email = emails.get(event.payload.get("customer_id")) if event.type in EMAILED else None
        if email:
            rows.append(
                (event, {"channel": "email", "endpoint_id": None, "recipient": email,
                         "lock_key": f"email:{event.subject}"})
            )  # fmt: skip
        for endpoint_id, types in endpoints:
            if not types or event.type in types:
                rows.append(
                    (event, {"channel": "webhook", "endpoint_id": endpoint_id, "recipient": None,
                             "lock_key": f"webhook:{endpoint_id}:{event.subject}"})
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
        from .queue import defer_deliveries

        defer_deliveries(sess, [(delivery.id, delivery.lock_key)])
    else:
        from .embedded import wake

        uow.after_commit(wake)
