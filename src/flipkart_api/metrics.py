"""What a replica counts for Prometheus, and /metrics answering for all its worker processes.

prometheus-client's multi-process mode: `flipkart-api serve` gives the replica a fresh
directory (PROMETHEUS_MULTIPROC_DIR) before granian starts its workers; each worker writes
its values to memory-mapped files there and a scrape of any worker sums them all, so the
counters of a replica are the same whichever worker answers the scrape (the per-request
ones reach the files once a second: metric_buffer.py). Without the variable (tests,
`flask` shells) the values live in this process, as usual.

Labels are bounded by construction: a route is the rule template Flask matched (never the
raw path), `unmatched` when none did; a method outside the standard ones is `other`.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import values as _values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from .server import MULTIPROC_ENV

# The classic text format, which every Prometheus reads (our names need no escaping).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

PATH = "/metrics"
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Resolve 1 ms to 500 ms (the issue), and say when a request took seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

HTTP_REQUESTS = Counter(
    "flipkart_http_requests_total", "Requests answered", ["route", "method", "status"]
)
HTTP_DURATION = Histogram(
    "flipkart_http_request_duration_seconds",
    "Time to answer a request, from the replica's first to its last byte handed to the server",
    ["route", "method"],
    buckets=BUCKETS,
)
IN_FLIGHT = Gauge(
    "flipkart_http_requests_in_flight", "Requests being answered now", multiprocess_mode="livesum"
)
CACHE_READS = Counter(
    "flipkart_cache_requests_total", "App cache reads by what they read and how", ["kind", "result"]
)
BREAKER_OPEN = Gauge(
    "flipkart_cache_breaker_open",
    "1 while a worker reads without the cache after a cache error",
    multiprocess_mode="livemax",
)
PENDING_INVALIDATIONS = Gauge(
    "flipkart_cache_invalidations_pending",
    "Invalidations waiting to be replayed to the cache",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "flipkart_db_pool_size", "Configured database pool size", multiprocess_mode="livesum"
)
POOL_IN_USE = Gauge(
    "flipkart_db_pool_connections_in_use",
    "Database connections checked out",
    multiprocess_mode="livesum",
)
POOL_OVERFLOW = Gauge(
    "flipkart_db_pool_overflow",
    "Database connections in use beyond the pool size (max_overflow's)",
    multiprocess_mode="livesum",
)
POOL_TIMEOUTS = Counter(
    "flipkart_db_pool_checkout_timeouts_total",
    "Requests that waited for a database connection and gave up (503)",
)
ORDERS_PLACED = Counter("flipkart_orders_placed_total", "Orders committed")
ORDERS_REJECTED = Counter(
    "flipkart_orders_rejected_total", "Orders refused, nothing written", ["reason"]
)
ORDERS_REPLAYED = Counter(
    "flipkart_orders_replayed_total", "Order requests answered from their Idempotency-Key"
)
RATE_LIMITED = Counter(
    "flipkart_rate_limited_total", "Requests answered 429 by the app's limits", ["route"]
)
EDGE_PURGES = Counter(
    "flipkart_edge_purges_total", "PURGE requests to the HTTP cache, by outcome", ["result"]
)
BUILD_INFO = Gauge(
    "flipkart_build_info", "Always 1", ["version", "revision"], multiprocess_mode="max"
)


def method_label(method: str) -> str:
    """The method as a label: one of METHODS, else `other` (any client can invent one)."""
    return method if method in METHODS else "other"


def cache_kind(key: str | None) -> str:
    """What a cache key holds: its first part (`product`, `products`, `categories`, ...).

    A read without a key (no generation: the cache is unusable) is `unkeyed`.
    """
    return key.partition(":")[0] if key else "unkeyed"


def _forget_dead_workers(directory: str) -> None:
    """Drop the live-gauge files of workers that are gone (granian respawns a failed one).

    A dead worker's in-flight requests and pool connections are not in use any more; its
    counters stay, so a replica's counters never go down.
    """
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:  # alive, someone else's
            pass


def exposition() -> bytes:
    """The text a scrape gets: every worker's values, summed."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory and _values.ValueClass is not _values.MutexValue:
        _forget_dead_workers(directory)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY)
