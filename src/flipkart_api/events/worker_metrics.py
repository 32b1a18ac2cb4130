"""The worker's metrics: deliveries by outcome, their latency, and the queue at scrape time.

Counters are counted where the attempt is made (the worker, or the embedded thread in a
server). The queue gauges are read from the database when the worker is scraped, so they
are true whichever worker did the work: undelivered deliveries per channel, the age of the
oldest undelivered event, and events not yet fanned out.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from ..orm import utcnow
from .models import CHANNELS, Delivery, OutboxEvent

DELIVERIES = Counter(
    "flipkart_deliveries",
    "Delivery attempts by channel (email, webhook) and outcome (delivered, retry, dead).",
    ["channel", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "flipkart_delivery_duration_seconds",
    "Time to send one delivery attempt (SMTP conversation or webhook request).",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def record(channel: str, outcome: str, latency_ms: float) -> None:
    """Count one attempt (a skipped one, already delivered or gone, is not an attempt)."""
    if outcome == "skipped":
        return
    DELIVERIES.labels(channel, outcome).inc()
    DELIVERY_SECONDS.labels(channel).observe(latency_ms / 1000)


class QueueCollector(Collector):
    """Queue depth and age from the database, at each scrape (two indexed queries)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """flipkart_deliveries_pending, flipkart_events_oldest_undelivered_age_seconds, ..."""
        now = utcnow()
        pending = GaugeMetricFamily(
            "flipkart_deliveries_pending",
            "Deliveries not yet delivered nor dead.",
            labels=["channel"],
        )
        oldest = GaugeMetricFamily(
            "flipkart_events_oldest_undelivered_age_seconds",
            "Age of the oldest event with a pending delivery or not yet fanned out (0: none).",
            labels=["channel"],
        )
        undispatched = GaugeMetricFamily(
            "flipkart_outbox_undispatched", "Committed events not yet fanned out into deliveries."
        )
        with self.engine.connect() as conn:
            rows = {
                channel: (count, first)
                for channel, count, first in conn.execute(
                    select(Delivery.channel, func.count(), func.min(OutboxEvent.created_at))
                    .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
                    .where(Delivery.status == "pending")
                    .group_by(Delivery.channel)
                )
            }
            waiting, first_waiting = conn.execute(
                select(func.count(), func.min(OutboxEvent.created_at)).where(
                    OutboxEvent.dispatched_at.is_(None)
                )
            ).one()
        for channel in CHANNELS:
            count, first = rows.get(channel, (0, None))
            pending.add_metric([channel], count)
            oldest.add_metric([channel], _age(now, first))
        oldest.add_metric(["outbox"], _age(now, first_waiting))
        undispatched.add_metric([], waiting)
        yield from (pending, oldest, undispatched)


def _age(now: object, first: object) -> float:
    """Seconds since `first` (a datetime, maybe naive UTC from SQLite), 0 for None."""
    import datetime as dt

    if not isinstance(first, dt.datetime) or not isinstance(now, dt.datetime):
        return 0.0
    if first.tzinfo is None:
        first = first.replace(tzinfo=dt.UTC)
    return max((now - first).total_seconds(), 0.0)
