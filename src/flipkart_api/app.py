"""The application factory: settings -> extensions -> blueprints -> hooks."""

from __future__ import annotations

import logging

from apiflask import APIFlask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import (
    access_log,
    cache,
    db,
    docs,
    edge,
    headers,
    limits,
    logs,
    openapi,
    problems,
    query,
    request_metrics,
    routing,
)
from .cache_front import CacheFront
from .settings import Settings, load_settings

log = logging.getLogger(__name__)

API_TITLE = "flipkart-api"
API_VERSION = "0.1.0"


def create_app(settings: Settings | None = None) -> APIFlask:
    """The application factory: settings -> extensions -> blueprints -> hooks."""
    settings = settings or load_settings()
    logs.configure_logging(settings.log_level, settings.log_format)
    app = APIFlask("flipkart_api", title=API_TITLE, version=API_VERSION, docs_path="/docs")
    app.config.update(
        SETTINGS=settings,
        SPEC_FORMAT="json",
        # Bodies above this get a 413 problem, not a worker tied up parsing them.
        MAX_CONTENT_LENGTH=1024 * 1024,
        INFO={"description": "A storefront API: catalog, search, users. Money is integer paise."},
    )
    # Declared field order and raw UTF-8 in whatever Flask itself still serialises (the
    # OpenAPI document), as in the bytes pydantic writes for every route (responses.py) and
    # orjson for problems (Flask 3 ignores the old JSON_SORT_KEYS).
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    problems.init_app(app)
    routing.init_app(app)
    openapi.init_app(app)
    docs.init_app(app)
    logs.init_app(app)
    db.init_app(app, settings)
    cache.init_app(app, settings)
    edge.init_app(app, settings)
    limits.init_app(app, settings)
    _register_blueprints(app)
    query.init_app(app)  # reads the routes' declared query models
    if settings.proxy_hops:
        # Trust X-Forwarded-For/-Proto/-Host from exactly that many proxies, no more.
        n = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    # Outermost: a cached product detail needs none of the layers above.
    from .catalog.routes import FAST_PATHS

    app.wsgi_app = CacheFront(  # type: ignore[method-assign]
        app.wsgi_app, app.extensions["cache"], app.extensions["edge"], app.url_map, FAST_PATHS
    )
    # Counts and times every request, the cache front's hits included; answers /metrics.
    request_metrics.init_app(app, settings, API_VERSION)
    # Around everything, the cache front's fast path included: nosniff, no-store.
    headers.init_app(app)
    access_log.init_app(app, settings)  # outermost: one JSON access line per request
    _announce(settings)
    return app


def _register_blueprints(app: APIFlask) -> None:
    from .auth.routes import bp as auth_bp
    from .catalog.routes import bp as catalog_bp
    from .events.routes import bp as webhooks_bp
    from .health import bp as health_bp
    from .orders.routes import bp as orders_bp
    from .tutorial import bp as tutorial_bp

    for bp in (tutorial_bp, health_bp, auth_bp, catalog_bp, orders_bp, webhooks_bp):
        app.register_blueprint(bp)


def _announce(settings: Settings) -> None:
    """Say once, loudly, which mode this is; warn about in-process caching in production."""
    database = "SQLite" if settings.uses_sqlite else "PostgreSQL"
    cache_kind = "Redis" if settings.redis_url else "in-process cache"
    if settings.is_development and settings.uses_sqlite and not settings.redis_url:
        log.info(
            "development mode: SQLite at %s, in-process cache, dev-only secret key "
            "(set DATABASE_URL / REDIS_URL / APP_ENV=production for real deployments)",
            settings.effective_database_url.removeprefix("sqlite:///"),
        )
    else:
        log.info("%s mode: %s, %s", settings.app_env, database, cache_kind)
    if settings.app_env == "production" and not settings.redis_url:
        log.warning(
            "REDIS_URL is not set: caching in-process (one worker per replica keeps it coherent)"
        )
