"""Housekeeping: what would otherwise grow without bound, and orders nobody confirmed.

Run every minute by one worker (a procrastinate periodic task on PostgreSQL, the embedded
worker's timer on SQLite). Each step deletes in bounded batches, so a backlog is worked
off over a few runs instead of in one long transaction.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from ..auth.models import RevokedToken
from ..db import rowcount
from ..orders.models import IdempotencyKey
from ..orders.transitions import cancel_unconfirmed
from ..orm import utcnow
from ..settings import Settings
from ..uow import UnitOfWork
from .models import Delivery, OutboxEvent

log = logging.getLogger(__name__)
BATCH = 1000


def run_housekeeping(sess: Session, settings: Settings) -> dict[str, int]:
    """Every step once; how many rows each removed or changed (logged when not zero)."""
    now = utcnow()
    done = {
        "idempotency_keys": _purge_idempotency_keys(sess, now, settings.idempotency_ttl_hours),
        "revoked_tokens": _purge(sess, RevokedToken, RevokedToken.expires_at < now),
        "unconfirmed_orders": _cancel_unconfirmed(sess, now, settings),
        "events": _purge_old_events(sess, now - dt.timedelta(days=settings.event_retention_days)),
    }
    if any(done.values()):
        log.info("housekeeping: %s", ", ".join(f"{k} {v}" for k, v in done.items() if v))
    return done


def _purge_idempotency_keys(sess: Session, now: dt.datetime, ttl_hours: int) -> int:
    """Keys past their TTL can no longer be replayed (idempotency.claim ignores them)."""
    cutoff = now - dt.timedelta(hours=ttl_hours)
    return _purge(sess, IdempotencyKey, IdempotencyKey.created_at < cutoff)


def _cancel_unconfirmed(sess: Session, now: dt.datetime, settings: Settings) -> int:
    if not settings.order_confirm_timeout_minutes:
        return 0
    cutoff = now - dt.timedelta(minutes=settings.order_confirm_timeout_minutes)
    return cancel_unconfirmed(sess, cutoff)


def _purge_old_events(sess: Session, cutoff: dt.datetime) -> int:
    """Events older than the retention whose deliveries are all finished (attempts cascade)."""
    unfinished = select(Delivery.id).where(
        Delivery.event_id == OutboxEvent.id, Delivery.status == "pending"
    )
    condition = (
        (OutboxEvent.created_at < cutoff)
        & OutboxEvent.dispatched_at.is_not(None)
        & ~unfinished.exists()
    )
    return _purge(sess, OutboxEvent, condition)


def _purge(sess: Session, model: type, condition: ColumnElement[bool]) -> int:
    """Delete up to BATCH rows of `model` matching `condition` in one unit of work."""
    table = model.__table__  # type: ignore[attr-defined]
    (key,) = table.primary_key.columns
    keys = select(key).where(condition).limit(BATCH).scalar_subquery()
    with UnitOfWork(sess):
        result = sess.execute(
            delete(table).where(key.in_(keys)).execution_options(synchronize_session=False)
        )
    return rowcount(result)
