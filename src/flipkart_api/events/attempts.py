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
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..orm import utcnow
from ..settings import Settings
from ..uow import UnitOfWork
from . import mail, signing, webhook_http, worker_metrics
from .backoff import retry_delay
from .models import Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint

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
    row = sess.execute(
        select(Delivery, OutboxEvent)
        .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
        .where(Delivery.id == delivery_id)
    ).first()
    if row is None or row[0].status != "pending":
        sess.rollback()
        return Outcome("skipped")
    delivery, event = row
    channel, endpoint_id, recipient = delivery.channel, delivery.endpoint_id, delivery.recipient
    envelope = _envelope(event)
    endpoint = sess.get(WebhookEndpoint, endpoint_id) if endpoint_id is not None else None
    target = (endpoint.url, endpoint.secret, endpoint.enabled) if endpoint else None
    sess.rollback()  # no transaction (and no snapshot) held while the message travels
    if channel == "email":
        sent = _send_email(settings, envelope, recipient or "")
    elif target is None or not target[2]:
        sent = Sent(False, True, None, 0.0, "endpoint disabled")
    else:
        sent = _post_webhook(settings, envelope, target[0], target[1])
    outcome = _record(sess, settings, delivery_id, sent)
    worker_metrics.record(channel, outcome.status, sent.latency_ms)
    return outcome


def _envelope(event: OutboxEvent) -> dict[str, Any]:
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
    with UnitOfWork(sess):
        delivery = sess.get(Delivery, delivery_id, with_for_update=True)
        if delivery is None:  # its endpoint was deleted meanwhile
            return Outcome("skipped")
        sess.add(
            DeliveryAttempt(
                delivery_id=delivery_id,
                attempted_at=now,
                ok=sent.ok,
                status_code=sent.status_code,
                latency_ms=round(sent.latency_ms, 3),
                error=sent.error,
                response_snippet=sent.snippet,
            )
        )
        delivery.attempts += 1
        delivery.lease_until = None
        delivery.last_status_code = sent.status_code
        delivery.last_error = sent.error
        if sent.ok:
            delivery.status, delivery.delivered_at = "delivered", now
            return Outcome("delivered")
        if sent.permanent or delivery.attempts >= settings.delivery_max_attempts:
            delivery.status = "dead"
            return Outcome("dead")
        delay = retry_delay(
            delivery.attempts, settings.delivery_retry_base_seconds,
            settings.delivery_retry_max_seconds,
        )  # fmt: skip
        delivery.next_attempt_at = now + dt.timedelta(seconds=delay)
        return Outcome("retry", retry_in=delay)
