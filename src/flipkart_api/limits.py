"""Per-client rate limits (Flask-Limiter) on the endpoints abuse targets: sign-up, login, orders.

Counters live in RATELIMIT_REDIS_URL (a Redis that never evicts), else in REDIS_URL, else in
the process. When their Redis is unreachable, each process counts in memory until it answers
again (Flask-Limiter's in-memory fallback): an outage loosens a limit to one per process,
it never turns limits off.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import redis
from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from limits import RateLimitItem
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import metrics
from .problems import problem
from .settings import Settings

log = logging.getLogger(__name__)

MEMORY = "memory://"

# Unbound like every extension; the client is the peer address (nginx's X-Forwarded-For is
# applied by ProxyFix before this runs, so behind the proxy it is the real client).
limiter = Limiter(key_func=get_remote_address)


def limit_from_settings(name: str) -> Callable[[], str]:
    """A limit string read from the settings at request time (e.g. 'ratelimit_orders')."""

    def value() -> str:
        limit: str = getattr(current_app.config["SETTINGS"], name)
        return limit

    return value


def init_app(app: Flask, settings: Settings) -> None:
    """Counters in Redis when configured, per process while it is unreachable; 429 problems."""
    in_redis = settings.ratelimit_storage_uri != MEMORY
    app.config.update(
        RATELIMIT_ENABLED=settings.ratelimit_enabled,
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_uri,
        RATELIMIT_STORAGE_OPTIONS=_redis_options(settings) if in_redis else {},
        # On a storage error, count in this process instead; the recovery check is
        # Flask-Limiter's: a PING at most every 1, 2, 4 ... 32 s (docs/decisions.md).
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=in_redis,
        # Only reached if the fallback itself fails; a limiter bug must not become a 500.
        RATELIMIT_SWALLOW_ERRORS=True,
        # No X-RateLimit-* headers: they put Retry-After on every 200 and cost a counter
        # read per limited request. The 429 says the limit and when to come back.
        RATELIMIT_HEADERS_ENABLED=False,
        RATELIMIT_KEY_PREFIX="fk:rl",
    )
    limiter.init_app(app)
    # The module's limiter outlives an app (tests build many): a storage declared dead for
    # the previous app's Redis says nothing about the one just configured.
    limiter._storage_dead = False
    app.register_error_handler(RateLimitExceeded, _too_many_requests)
    shared = settings.redis_url and not settings.ratelimit_redis_url
    if settings.app_env == "production" and settings.ratelimit_enabled and shared:
        log.warning(
            "RATELIMIT_REDIS_URL is not set: rate-limit counters share the cache Redis "
            "(REDIS_URL), whose eviction can drop them; point it at a noeviction Redis"
        )


def _redis_options(settings: Settings) -> dict[str, object]:
    """A slow, frozen or partitioned Redis costs a request one timeout, then it counts locally.

    As the cache's client (cache.py): a connect timeout too (no kernel SYN retries), and no
    client-side retries whatever redis-py's default policy of the day is.
    """
    timeout = settings.redis_timeout_seconds
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
    }


def _too_many_requests(error: RateLimitExceeded) -> Response:
    """429 problem+json naming the limit, with Retry-After (the only place it is sent)."""
    item = error.limit.limit
    rule = request.url_rule
    metrics.RATE_LIMITED.labels(rule.rule if rule else metrics.UNMATCHED).inc()
    seconds = _seconds_until_reset(item)
    detail = f"Too many requests: the limit is {item} for this endpoint; retry after {seconds} s."
    return problem(429, detail, headers={"Retry-After": str(seconds)})


def _seconds_until_reset(item: RateLimitItem) -> int:
    """Whole seconds until the breached window resets; its full length if that is unknown."""
    window = int(item.get_expiry())
    breached = limiter.current_limit
    if breached is None:
        return window
    try:
        reset_at = breached.window.reset_time
    except redis.RedisError:  # the store failed between the hit and this read
        return window
    return max(1, min(window, math.ceil(reset_at - time.time())))
