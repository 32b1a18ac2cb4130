"""The outbox_events, webhook_endpoints, deliveries and delivery_attempts tables.

An event is written in the transaction of the change that causes it (outbox.publish); the
worker fans it out once into deliveries, one per receiver (the customer's mailbox, each
subscribed webhook endpoint), and records every attempt to deliver one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..orm import Base, BigId, UTCDateTime, utcnow

DELIVERY_STATUSES = ("pending", "delivered", "dead")
CHANNELS = ("email", "webhook")
PENDING = text("status = 'pending'")
UNDISPATCHED = text("dispatched_at IS NULL")


class OutboxEvent(Base):
    """A domain event: what happened, to what (`subject`, e.g. order:12), when, with which data."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        # The worker's "not yet fanned out" scan, and its oldest-age gauge.
        Index(
            "ix_outbox_events_undispatched",
            "id",
            postgresql_where=UNDISPATCHED,
            sqlite_where=UNDISPATCHED,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The stable id receivers deduplicate on (webhook-id, the email's Message-ID).
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class WebhookEndpoint(Base):
    """A receiver of signed webhooks: where, for which event types, with which secret."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(200), default="")
    # A list of event types; empty means every type.
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Delivery(Base):
    """One event for one receiver: pending until delivered, or dead after its last attempt."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="status"),
        CheckConstraint("channel IN ('email', 'webhook')", name="channel"),
        # One delivery per event and receiver, whoever fans out and however often.
        UniqueConstraint("event_id", "lock_key", name="uq_deliveries_event_id_lock_key"),
        # Due work, oldest first (the embedded worker's scan; the queue-depth gauges).
        Index(
            "ix_deliveries_pending",
            "next_attempt_at",
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        ),
        # "Is an earlier event for this receiver and subject still waiting?" (the order).
        Index("ix_deliveries_lock_key_id", "lock_key", "id"),
        # An endpoint's delivery log, newest first.
        Index("ix_deliveries_endpoint_id_id", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("outbox_events.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    endpoint_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    recipient: Mapped[str | None] = mapped_column(String(320))
    # Receiver and subject: deliveries sharing it go out one at a time, in event order.
    lock_key: Mapped[str] = mapped_column(String(160))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The embedded worker's claim: another thread or process leaves it alone until then.
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class DeliveryAttempt(Base):
    """One try: when, the answer's status and latency, a bounded snippet of what it said."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(String(300))
    response_snippet: Mapped[str] = mapped_column(Text, default="")
