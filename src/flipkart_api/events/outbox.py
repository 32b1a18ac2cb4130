"""Publishing an event: one row in the writer's own transaction.

    with UnitOfWork(sess) as uow:
        ...change rows...
        publish(uow, "order.confirmed", f"order:{order.id}", {"order": ...})

The row commits or rolls back with the change that caused it, so nothing is published for
a rolled-back write and nothing is lost for a committed one. The relay (fanout.py) takes
committed rows from there: on PostgreSQL the worker's relay looks every RELAY_POLL_SECONDS
(worker.py), on SQLite the embedded worker is woken after the commit (embedded.py).
"""

from __future__ import annotations

import secrets
import time
from typing import Any, cast

from sqlalchemy import Table, insert

from ..db import EVENTS
from ..orm import utcnow
from ..uow import UnitOfWork
from .models import OutboxEvent

EVENT_TYPES = (
    "order.placed",
    "order.confirmed",
    "order.shipped",
    "order.delivered",
    "order.cancelled",
    "stock.low",
    "user.registered",
)
OUTBOX = cast(Table, OutboxEvent.__table__)


def new_event_id() -> str:
    """evt_ + milliseconds since the epoch (hex, so ids sort by time) + 80 random bits."""
    return f"evt_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def publish(uow: UnitOfWork, event_type: str, subject: str, payload: dict[str, Any]) -> str:
    """Record `event_type` about `subject` in this unit of work; returns the event's id."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    sess = uow.session
    event_id = new_event_id()
    if not sess.info.get(EVENTS, True):
        return event_id  # EVENTS_ENABLED=false: nothing is written, nothing will be sent
    sess.execute(
        insert(OUTBOX).values(
            event_id=event_id,
            type=event_type,
            subject=subject,
            payload=payload,
            created_at=utcnow(),
        )
    )
    if sess.get_bind().dialect.name != "postgresql":
        from .embedded import wake

        uow.after_commit(wake)
    return event_id
