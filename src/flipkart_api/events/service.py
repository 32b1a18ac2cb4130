"""Webhook endpoint use cases: manage endpoints, read their delivery log, redeliver."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from ..errors import Conflict, InvalidInput, NotFound
from ..pagination import decode_cursor, encode_cursor
from ..uow import UnitOfWork
from . import fanout
from .models import Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint
from .schemas import (
    MAX_ATTEMPT_LOG,
    AttemptOut,
    DeliveryDetail,
    DeliveryOut,
    DeliveryPage,
    DeliveryQuery,
    WebhookIn,
    WebhookList,
    WebhookOut,
    WebhookPatch,
    WebhookWithSecret,
)
from .signing import new_secret
from .webhook_urls import UnsafeUrl, check_url

LOG_SORT = "newest"  # the delivery log's cursors: (id, id) of the last row shown


def _checked_url(url: str, allow_private: bool) -> str:
    """The URL if we would send to it; a 422 naming `url` and the reason otherwise."""
    try:
        check_url(url, allow_private=allow_private)
    except UnsafeUrl as exc:
        raise InvalidInput("url", str(exc)) from None
    return url


def _out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        event_types=list(endpoint.event_types),
        description=endpoint.description,
        enabled=endpoint.enabled,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def _with_secret(endpoint: WebhookEndpoint) -> WebhookWithSecret:
    return WebhookWithSecret(**_out(endpoint).model_dump(), secret=endpoint.secret)


def _endpoint(sess: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = sess.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(f"Webhook endpoint {endpoint_id} does not exist.")
    return endpoint


def create_endpoint(sess: Session, data: WebhookIn, allow_private: bool) -> WebhookWithSecret:
    """Register an endpoint with a fresh signing secret, which is shown this once."""
    url = _checked_url(data.url, allow_private)
    with UnitOfWork(sess):
        endpoint = WebhookEndpoint(
            url=url,
            event_types=data.event_types,
            description=data.description,
            enabled=data.enabled,
            secret=new_secret(),
        )
        sess.add(endpoint)
    return _with_secret(endpoint)


def list_endpoints(sess: Session) -> WebhookList:
    """Every endpoint, oldest first, without secrets."""
    endpoints = sess.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id))
    return WebhookList(items=[_out(e) for e in endpoints])


def get_endpoint(sess: Session, endpoint_id: int) -> WebhookOut:
    """One endpoint, without its secret."""
    return _out(_endpoint(sess, endpoint_id))


def update_endpoint(
    sess: Session, endpoint_id: int, data: WebhookPatch, allow_private: bool
) -> WebhookOut:
    """Change the fields sent, under the rules of creation."""
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    if "url" in changes:
        _checked_url(changes["url"], allow_private)
    with UnitOfWork(sess):
        endpoint = _endpoint(sess, endpoint_id)
        for name, value in changes.items():
            setattr(endpoint, name, value)
    return _out(endpoint)


def delete_endpoint(sess: Session, endpoint_id: int) -> None:
    """Remove an endpoint; its deliveries and their attempts go with it (FK cascade)."""
    with UnitOfWork(sess):
        sess.delete(_endpoint(sess, endpoint_id))


def rotate_secret(sess: Session, endpoint_id: int) -> WebhookWithSecret:
    """A new signing secret, used by every delivery signed from now on; shown this once."""
    with UnitOfWork(sess):
        endpoint = _endpoint(sess, endpoint_id)
        endpoint.secret = new_secret()
    return _with_secret(endpoint)


# -- the delivery log -------------------------------------------------------------------
def _log_rows(endpoint_id: int) -> Select[Delivery, str, str, str]:
    return (
        select(Delivery, OutboxEvent.event_id, OutboxEvent.type, OutboxEvent.subject)
        .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
        .where(Delivery.endpoint_id == endpoint_id)
    )


def _delivery_out(delivery: Delivery, event_id: str, event_type: str, subject: str) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        event_id=event_id,
        event_type=event_type,
        subject=subject,
        status=delivery.status,
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
    )


def list_deliveries(sess: Session, endpoint_id: int, query: DeliveryQuery) -> DeliveryPage:
    """An endpoint's deliveries, newest first, keyset-paginated, optionally of one status."""
    _endpoint(sess, endpoint_id)
    stmt = _log_rows(endpoint_id).order_by(Delivery.id.desc())
    if query.status is not None:
        stmt = stmt.where(Delivery.status == query.status)
    if query.cursor:
        _, last_id = decode_cursor(query.cursor, LOG_SORT, datetime_key=False)
        stmt = stmt.where(Delivery.id < last_id)
    rows = sess.execute(stmt.limit(query.limit + 1)).all()
    page = rows[: query.limit]
    next_cursor = None
    if len(rows) > query.limit:
        last_id = page[-1][0].id
        next_cursor = encode_cursor(LOG_SORT, last_id, last_id)
    return DeliveryPage(items=[_delivery_out(*row) for row in page], next_cursor=next_cursor)


def _delivery_row(
    sess: Session, endpoint_id: int, delivery_id: int, *, lock: bool = False
) -> Row[Delivery, str, str, str]:
    stmt = _log_rows(endpoint_id).where(Delivery.id == delivery_id)
    if lock:  # two redelivers at once must not both queue it
        stmt = stmt.with_for_update(of=Delivery).execution_options(populate_existing=True)
    row = sess.execute(stmt).first()
    if row is None:
        raise NotFound(f"Delivery {delivery_id} of webhook endpoint {endpoint_id} does not exist.")
    return row


def get_delivery(sess: Session, endpoint_id: int, delivery_id: int) -> DeliveryDetail:
    """One delivery of the endpoint with its last MAX_ATTEMPT_LOG attempts, oldest first."""
    row = _delivery_row(sess, endpoint_id, delivery_id)
    attempts = sess.scalars(
        select(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id == delivery_id)
        .order_by(DeliveryAttempt.id.desc())
        .limit(MAX_ATTEMPT_LOG)
    ).all()
    log = [
        AttemptOut(
            attempted_at=a.attempted_at,
            ok=a.ok,
            status_code=a.status_code,
            latency_ms=a.latency_ms,
            error=a.error,
            response_snippet=a.response_snippet,
        )
        for a in reversed(attempts)
    ]
    return DeliveryDetail(**_delivery_out(*row).model_dump(), attempt_log=log)


def redeliver(sess: Session, endpoint_id: int, delivery_id: int) -> DeliveryOut:
    """Send a delivered or dead delivery again, from now, with a fresh retry schedule.

    A pending one is refused (409): it is queued already, and a second job would send it
    twice. So is one of a disabled endpoint, which would only go dead again at once.
    """
    with UnitOfWork(sess) as uow:
        delivery, event_id, event_type, subject = _delivery_row(
            sess, endpoint_id, delivery_id, lock=True
        )
        if delivery.status == "pending":
            raise Conflict(f"Delivery {delivery_id} is pending already: it is queued.")
        if not _endpoint(sess, endpoint_id).enabled:
            raise Conflict(f"Webhook endpoint {endpoint_id} is disabled; enable it first.")
        fanout.requeue(uow, delivery)
        out = _delivery_out(delivery, event_id, event_type, subject)
    return out
