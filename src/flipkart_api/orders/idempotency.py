"""Idempotency keys for placing orders: claim a key, or replay the answer stored for it.

The unique (user_id, key) index does the arbitration: a concurrent request with the same key
blocks on our uncommitted row and, once we commit, finds it and replays. A key older than
the TTL is taken over (deleted and claimed again), as if it had never been used.
"""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from .. import db
from ..errors import Conflict, InvalidInput
from ..orm import utcnow
from .models import IdempotencyKey
from .schemas import OrderOut

KEYS = cast(Table, IdempotencyKey.__table__)
IN_PROGRESS = "A request with this Idempotency-Key is still being processed."


def claim(
    sess: Session, user_id: int, key: str, request_hash: str, ttl_hours: int
) -> OrderOut | None:
    """Own the key (None), or the order answered for it before (a replay)."""
    claim_row = db.insert_ignoring_conflicts(sess, KEYS).values(
        user_id=user_id, key=key, request_hash=request_hash, created_at=utcnow()
    )
    if sess.execute(claim_row.returning(KEYS.c.id)).first() is not None:
        return None
    stored = sess.execute(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    ).scalar_one()
    if stored.created_at < utcnow() - dt.timedelta(hours=ttl_hours):
        sess.execute(
            delete(IdempotencyKey)
            .where(IdempotencyKey.id == stored.id)
            .execution_options(synchronize_session=False)
        )
        sess.expunge(stored)
        if sess.execute(claim_row.returning(KEYS.c.id)).first() is not None:
            return None
        raise Conflict(IN_PROGRESS)
    if stored.request_hash != request_hash:
        raise InvalidInput("Idempotency-Key", "this key was used with a different request body")
    if stored.response_body is None or stored.order_id is None:
        raise Conflict(IN_PROGRESS)
    return OrderOut.model_validate_json(stored.response_body)


def store_answer(sess: Session, user_id: int, key: str, order: OrderOut) -> None:
    """Keep the answer with the claimed key, for replays (same transaction as the order)."""
    sess.execute(
        update(KEYS)
        .where(KEYS.c.user_id == user_id, KEYS.c.key == key)
        .values(order_id=order.id, response_body=order.model_dump_json())
    )
