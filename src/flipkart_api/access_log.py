"""The app's access line in JSON mode: one JSON object per request, from the outermost layer.

granian writes the access line in text mode (server.py), but its format is printf-style and
cannot escape JSON, so with LOG_FORMAT=json granian's is off and this WSGI middleware writes
it instead (when ACCESS_LOG is on: unset, everywhere but production). Outermost, so it times
and sees every answer, the cache front's hits and the metrics layer included.

Fields (besides time, level, logger and message, logs.JsonFormatter): method, path, route,
status, duration_ms, request_id, trace_id (only from a valid W3C traceparent) and
remote_addr (this hop's peer: nginx or Varnish's backend server in the stacks; the client's
address is on nginx's line). Never the query string (search terms, cursors, anything a
client put there) and no header but X-Request-ID and traceparent, so no credentials.

It also settles the request id for every layer below: the sane incoming X-Request-ID, or a
new one, is put back into the environ, so the cache front, Flask's hooks (logs.py) and this
line all carry the same id, which is the one the response echoes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from flask import Flask

from .logs import request_id, trace_id
from .request_metrics import ROUTE_KEY  # the route's template (absent: metrics off, or none)
from .settings import Settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("flipkart_api.access")
MAX_PATH = 1024  # a path is logged up to this many characters


class AccessLog:
    """WSGI middleware (outermost): one access line per request, once its answer is sent."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Settle the request id, pass the request on, log when the body is done."""
        started = time.perf_counter()
        peer = environ.get("REMOTE_ADDR")  # before ProxyFix (inside) rewrites it
        rid = request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        environ["HTTP_X_REQUEST_ID"] = rid  # sane now: every layer below takes this one
        status = [500]  # what a layer that raised before starting the response amounts to

        def start(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = int(line[:3])
            return start_response(line, headers, exc_info)

        def done() -> None:
            _log(environ, rid, peer, status[0], started)

        try:
            body = self.app(environ, start)
        except BaseException:
            done()
            raise
        if isinstance(body, (list, tuple)):  # already whole (the cache front's hits)
            done()
            return body
        return _Logged(body, done)


class _Logged:
    """The body, passed through; the line is written when the server closes it."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self.body = body
        self.done: Callable[[], None] | None = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            if self.done is not None:
                done, self.done = self.done, None
                done()


def _log(environ: WSGIEnvironment, rid: str, peer: str | None, status: int, started: float) -> None:
    method = environ.get("REQUEST_METHOD", "-")
    # WSGI carries the path's bytes as latin-1; written as the UTF-8 the client sent.
    raw = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    path = raw.encode("latin-1", "replace").decode("utf-8", "replace")[:MAX_PATH]
    fields: dict[str, object] = {
        "method": method,
        "path": path,
        "route": environ.get(ROUTE_KEY),
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        "request_id": rid,
        "remote_addr": peer,
    }
    trace = trace_id(environ.get("HTTP_TRACEPARENT", ""))
    if trace:
        fields["trace_id"] = trace
    log.info("%s %s %d", method, path, status, extra={"fields": fields})


def init_app(app: Flask, settings: Settings) -> None:
    """Install the line, outermost, when the app writes it: JSON mode with ACCESS_LOG on."""
    if settings.log_format == "json" and settings.effective_access_log:
        # LOG_LEVEL is for the app's own lines; ACCESS_LOG alone decides about these.
        log.setLevel(logging.INFO)
        app.wsgi_app = AccessLog(app.wsgi_app)  # type: ignore[method-assign]
