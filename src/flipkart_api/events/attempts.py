"""One attempt at one delivery: send it, record what happened, say what comes next.

No transaction is open while the email or the request is on its way: the delivery is read,
the read ends, the message goes, and the outcome is written in a unit of work. A worker that
dies in between leaves the delivery pending, and it is sent again with the same event id
(at least once; receivers deduplicate on webhook-id or Message-ID).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from ..orm import utcnow
from ..settings import Settings
from ..uow import UnitOfWork
from . import mail, signing, webhook_http, worker_metrics
from .backoff import retry_delay
from .models import Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint

DELIVERIES = cast(Table, Delivery.__table__)
OUTBOX = cast(Table, OutboxEvent.__table__)
ENDPOINTS = cast(Table, WebhookEndpoint.__table__)
ATTEMPTS = cast(Table, DeliveryAttempt.__table__)
# Built once (bound per call): a delivery's state, its event, and its endpoint if any.
READ = (
    select(
        DELIVERIES.c.status, DELIVERIES.c.channel, DELIVERIES.c.recipient,
        OUTBOX.c.event_id, OUTBOX.c.type, OUTBOX.c.created_at, OUTBOX.c.payload,
        ENDPOINTS.c.url, ENDPOINTS.c.secret, ENDPOINTS.c.enabled,
    )
    .select_from(
        DELIVERIES.join(OUTBOX, OUTBOX.c.id == DELIVERIES.c.event_id).outerjoin(
            ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id
        )
    )
    .where(DELIVERIES.c.id == bindparam("delivery_id"))
)  # fmt: skip
# The attempt counted, the lease and the last answer; status and delivered_at when it was ok.
COUNT = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("delivery_id"))
    .values(attempts=DELIVERIES.c.attempts + 1, lease_until=None)
    .returning(DELIVERIES.c.attempts)
)
LOG = insert(ATTEMPTS)
SNIPPET_CHARS = 1024
# A receiver saying it is gone for good: no point trying for a day.
GONE = 410


@dataclass(frozen=True)
class Outcome:
    """What became of the delivery: delivered, retry (in retry_in seconds), dead, skipped."""

    status: str
    retry_in: float | None = None


@dataclass(frozen=True)
class Sent:
    """The result of sending, whatever the channel."""

    ok: bool
    permanent: bool
    status_code: int | None
    latency_ms: float
    error: str | None
    snippet: str = ""


def attempt(sess: Session, settings: Settings, delivery_id: int) -> Outcome:
    """Try `delivery_id` once if it is still pending; record the attempt and the new state."""
    row = sess.execute(READ, {"delivery_id": delivery_id}).first()
    sess.rollback()  # no transaction (and no snapshot) held while the message travels
    if row is None or row.status != "pending":
        return Outcome("skipped")
    envelope = _envelope(row)
    if row.channel == "email":
        sent = _send_email(settings, envelope, row.recipient or "")
    elif not row.enabled:  # disabled, or deleted since (NULL from the outer join)
        sent = Sent(False, True, None, 0.0, "endpoint disabled")
    else:
        sent = _post_webhook(settings, envelope, row.url, row.secret)
    outcome = _record(sess, settings, delivery_id, sent)
    worker_metrics.record(row.channel, outcome.status, sent.latency_ms)
    return outcome


def _envelope(event: Any) -> dict[str, Any]:
    """The event as receivers see it (the webhook body; the email's data)."""
    return {
        "id": event.event_id,
        "type": event.type,
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": event.payload,
    }


def _post_webhook(settings: Settings, envelope: dict[str, Any], url: str, secret: str) -> Sent:
    body = orjson.dumps(envelope)
    headers = signing.signed_headers(secret, envelope["id"], dt.datetime.now(dt.UTC), body)
    answer = webhook_http.post(
        url,
        body,
        headers,
        timeout_seconds=settings.webhook_timeout_seconds,
        allow_private=settings.webhook_allow_private,
    )
    refused = answer.error is not None and answer.error.startswith("refused")
    return Sent(
        ok=answer.ok,
        permanent=answer.status == GONE or refused,
        status_code=answer.status,
        latency_ms=answer.latency_ms,
        error=answer.error,
        snippet=answer.snippet[:SNIPPET_CHARS],
    )


def _send_email(settings: Settings, envelope: dict[str, Any], recipient: str) -> Sent:
    started = time.perf_counter()
    try:
        config = mail.SmtpConfig.from_url(
            settings.smtp_url or "", settings.mail_from, settings.smtp_timeout_seconds
        )
        message = mail.render_order_email(
            event_id=envelope["id"],
            event_type=envelope["type"],
            order=envelope["data"]["order"],
            recipient=recipient,
            sender=settings.mail_from,
        )
        mail.send(message, config)
    except mail.MailFailed as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return Sent(False, not exc.temporary, None, elapsed, str(exc)[:300])
    except ValueError as exc:  # no or bad SMTP_URL now: kept, and tried again later
        return Sent(False, False, None, 0.0, str(exc)[:300])
    return Sent(True, False, 250, (time.perf_counter() - started) * 1000, None)


def _record(sess: Session, settings: Settings, delivery_id: int, sent: Sent) -> Outcome:
    """Write the attempt and the delivery's new state; the outcome for the queue."""
    now = utcnow()
    done = {"status": "delivered", "delivered_at": now} if sent.ok else {}
    last = {"last_status_code": sent.status_code, "last_error": sent.error}
    with UnitOfWork(sess):
        attempts = sess.execute(COUNT.values(**last, **done), {"delivery_id": delivery_id}).scalar()
        if attempts is None:  # its endpoint was deleted meanwhile
            return Outcome("skipped")
        sess.execute(
            LOG,
            {
                "delivery_id": delivery_id,
                "attempted_at": now,
                "ok": sent.ok,
                "status_code": sent.status_code,
                "latency_ms": round(sent.latency_ms, 3),
                "error": sent.error,
                "response_snippet": sent.snippet,
            },
        )
        if sent.ok:
            return Outcome("delivered")
        if sent.permanent or attempts >= settings.delivery_max_attempts:
            _set(sess, delivery_id, status="dead")
            return Outcome("dead")
        delay = retry_delay(
            attempts, settings.delivery_retry_base_seconds, settings.delivery_retry_max_seconds
        )
        _set(sess, delivery_id, next_attempt_at=now + dt.timedelta(seconds=delay))
        return Outcome("retry", retry_in=delay)


def _set(sess: Session, delivery_id: int, **values: Any) -> None:
    sess.execute(update(DELIVERIES).where(DELIVERIES.c.id == delivery_id).values(**values))
