"""Per-client rate limits (Flask-Limiter) on the endpoints abuse targets: sign-up, login, orders."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from .settings import Settings

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
    """Counters in Redis when configured; a Redis outage must not turn into 500s."""
    app.config.update(
        RATELIMIT_ENABLED=settings.ratelimit_enabled,
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_uri,
        RATELIMIT_STORAGE_OPTIONS={"socket_timeout": settings.redis_timeout_seconds},
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_KEY_PREFIX="fk:rl",
    )
    limiter.init_app(app)
