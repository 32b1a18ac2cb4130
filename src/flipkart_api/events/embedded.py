"""The embedded worker: the same fan-out and attempts, from a thread, for SQLite.

The embedded default has no queue server, so a thread in each server process (and the
`flipkart-api worker` command on SQLite) reads the outbox and the deliveries tables
itself. A delivery is claimed with a lease (an UPDATE that only one writer can win: SQLite
writes one at a time), so two processes never send it at once, and one that dies leaves
it to the others once the lease runs out. Order: a delivery waits while an earlier pending
one shares its lock key (receiver and subject), as procrastinate's locks do on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any, cast

from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.orm import Session, aliased

from ..db import rowcount
from ..orm import utcnow
from ..settings import Settings
from ..uow import UnitOfWork
from .attempts import attempt
from .fanout import fan_out_pending
from .housekeeping import run_housekeeping
from .models import Delivery

log = logging.getLogger(__name__)
DELIVERIES = cast(Table, Delivery.__table__)
BATCH = 20
HOUSEKEEPING_SECONDS = 60.0
_wakeup = threading.Event()


def wake() -> None:
    """After a commit that published: look now rather than at the next poll."""
    _wakeup.set()


def lease_seconds(settings: Settings) -> float:
    """Longer than any one attempt can take (a request or an SMTP conversation)."""
    return 2 * max(settings.webhook_timeout_seconds, settings.smtp_timeout_seconds) + 30


class EmbeddedWorker:
    """Fan out, deliver what is due, keep house; sleep until woken or the poll interval."""

    def __init__(self, flask_app: Any) -> None:
        self.flask_app = flask_app
        self.settings: Settings = flask_app.config["SETTINGS"]
        self.stopping = threading.Event()
        self.last_beat = time.monotonic()
        self._next_housekeeping = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run in a daemon thread (the server's)."""
        self._thread = threading.Thread(target=self.run, name="embedded-worker", daemon=True)
        self._thread.start()
        log.info("embedded worker: this process delivers events (no worker process needed)")

    def stop(self, timeout: float | None = None) -> None:
        """Finish the current attempt, then stop."""
        self.stopping.set()
        _wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """The loop; an error (the database locked or gone) is logged and retried."""
        from .. import db

        while not self.stopping.is_set():
            self.last_beat = time.monotonic()
            busy = False
            try:
                with self.flask_app.app_context():
                    busy = self.step(db.session())
            except Exception:
                log.exception("embedded worker: a step failed; trying again")
            if not busy:
                _wakeup.wait(self.settings.worker_poll_seconds)
                _wakeup.clear()

    def step(self, sess: Session) -> bool:
        """One round; True when there was work (so look again at once)."""
        taken, _ = fan_out_pending(sess, self.settings)
        due = claim_due(sess, self.settings)
        for delivery_id in due:
            if self.stopping.is_set():
                break  # claimed but not tried: the lease runs out and it is tried again
            attempt(sess, self.settings, delivery_id)
        if time.monotonic() >= self._next_housekeeping:
            self._next_housekeeping = time.monotonic() + HOUSEKEEPING_SECONDS
            run_housekeeping(sess, self.settings)
        return bool(taken or due)


def claim_due(sess: Session, settings: Settings) -> list[int]:
    """Lease up to BATCH due deliveries that no earlier pending one of their lock key waits on."""
    now = utcnow()
    earlier = aliased(Delivery)
    blocked = (
        select(earlier.id)
        .where(
            earlier.lock_key == Delivery.lock_key,
            earlier.status == "pending",
            earlier.id < Delivery.id,
        )
        .exists()
    )
    free = or_(Delivery.lease_until.is_(None), Delivery.lease_until < now)
    candidates = list(
        sess.scalars(
            select(Delivery.id)
            .where(Delivery.status == "pending", Delivery.next_attempt_at <= now, free, ~blocked)
            .order_by(Delivery.id)
            .limit(BATCH)
        )
    )
    sess.rollback()
    claimed: list[int] = []
    until = now + dt.timedelta(seconds=lease_seconds(settings))
    for delivery_id in candidates:
        with UnitOfWork(sess):
            won = rowcount(
                sess.execute(
                    update(DELIVERIES)
                    .where(
                        and_(
                            DELIVERIES.c.id == delivery_id,
                            DELIVERIES.c.status == "pending",
                            or_(DELIVERIES.c.lease_until.is_(None), DELIVERIES.c.lease_until < now),
                        )
                    )
                    .values(lease_until=until)
                )
            )
        if won:
            claimed.append(delivery_id)
    return claimed
