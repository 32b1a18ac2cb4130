"""Every request counted and timed by its route template, and GET /metrics answered.

A WSGI layer around the app and the cache front, so a cached hit answered before Flask is
counted like the rest. Which route a request took is put in the WSGI environ
(ROUTE_KEY): by Flask as soon as it has matched the URL (the `request_started` signal,
before any hook that could answer early, a rate limit's 429 included) and by the cache
front for its hits. /metrics itself is not counted: Prometheus times its own scrapes.

/metrics is on the app's port, for Prometheus on the stack's network. Not through a proxy:
the public front door (nginx) answers it 404 itself, and a request any proxy forwarded (it
carries X-Forwarded-For) is routed to Flask, which has no such route (tests/test_metrics*.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, request, request_started

from . import metrics
from .metric_buffer import BUFFER
from .settings import Settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

ROUTE_KEY = "flipkart.route"
_METRICS_HEADERS = [
    ("Content-Type", metrics.CONTENT_TYPE),
    ("Cache-Control", "no-store"),
]


class RequestMetrics:
    """WSGI middleware: count and time each request; answer GET /metrics itself."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer /metrics, or pass the request on and record how it went."""
        if environ.get("PATH_INFO") == metrics.PATH and _scrape_allowed(environ):
            return self._scrape(environ, start_response)
        started = time.perf_counter()
        status = ["500"]  # what an exception out of the app becomes at the server

        def start(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = status_line[:3]
            return start_response(status_line, headers, exc_info)

        BUFFER.started()
        try:
            return self.app(environ, start)
        finally:
            BUFFER.request(
                environ.get(ROUTE_KEY, metrics.UNMATCHED),
                metrics.method_label(environ["REQUEST_METHOD"]),
                status[0],
                time.perf_counter() - started,
            )

    def _scrape(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        BUFFER.flush()  # this worker's counts up to now; the others' as of their last flush
        body = metrics.exposition()
        start_response("200 OK", [*_METRICS_HEADERS, ("Content-Length", str(len(body)))])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]


def _scrape_allowed(environ: WSGIEnvironment) -> bool:
    """A GET or HEAD that came straight from the scraper, through no proxy.

    Every proxy in front of the app (nginx, Varnish, an Ingress controller) adds
    X-Forwarded-For, and no client can take it off again: so however a path was spelt to
    reach here through the front door (`/%6detrics`), it is not answered with the metrics
    but routed like any other path (a 404). Prometheus asks the replica directly.
    """
    return (
        environ["REQUEST_METHOD"] in ("GET", "HEAD")
        and "HTTP_X_FORWARDED_FOR" not in environ
        and "HTTP_FORWARDED" not in environ
    )


def _note_route(sender: Flask, **_: object) -> None:
    """Put the matched rule's template in the environ (None matched: left unset)."""
    rule = request.url_rule
    if rule is not None:
        request.environ[ROUTE_KEY] = rule.rule


def init_app(app: Flask, settings: Settings, version: str) -> None:
    """Count this app's requests and answer /metrics (unless METRICS_ENABLED=false)."""
    if not settings.metrics_enabled:
        return
    request_started.connect(_note_route, app)
    metrics.BUILD_INFO.labels(version, settings.app_revision).set(1)
    app.wsgi_app = RequestMetrics(app.wsgi_app)  # type: ignore[method-assign]
