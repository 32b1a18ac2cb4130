"""Logging to stdout with a request id on every line, and the X-Request-ID header.

LOG_FORMAT=text (the default) writes a line for people; LOG_FORMAT=json one JSON object per
line (`JsonFormatter`): time (RFC 3339, UTC, ms), level, logger, message, request_id (null
outside a request), trace_id when the request carried a valid W3C `traceparent`, exception
and stack as strings, and whatever a record passes in `extra={"fields": {...}}` (the access
line's method, path, route, status...: access_log.py). granian's own lines use the same
formatter in JSON mode (server.py, granian_log.json).
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid

import orjson
from flask import Flask, Response, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")  # never echo arbitrary bytes into logs
TRACEPARENT_HEADER = "traceparent"
# W3C Trace Context, version 00: 00-<trace id: 32 hex>-<parent id: 16 hex>-<flags: 2 hex>,
# lower-case, neither id all zeros. Anything else is ignored, never logged (log injection).
_TRACEPARENT = re.compile(r"00-(?!0{32})([0-9a-f]{32})-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        in_request = has_request_context()
        record.request_id = g.get("request_id", "-") if in_request else "-"
        record.trace_id = g.get("trace_id") if in_request else None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (orjson escapes newlines and control bytes)."""

    def format(self, record: logging.LogRecord) -> str:
        """time, level, logger, message, request_id, [trace_id], [fields], [exception]."""
        rid = getattr(record, "request_id", None)
        line: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": None if rid in (None, "-") else rid,
        }
        trace = getattr(record, "trace_id", None)
        if trace:
            line["trace_id"] = trace
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str, log_format: str = "text") -> None:
    """One stdout handler on the root logger; idempotent (tests build many apps)."""
    root = logging.getLogger()
    root.setLevel(level)
    # procrastinate says INFO for every job deferred, started and finished: three lines per
    # order and delivery, on the write's own path. Its warnings and errors stay; DEBUG: all.
    logging.getLogger("procrastinate").setLevel(level if level == "DEBUG" else logging.WARNING)
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    for handler in root.handlers:
        if getattr(handler, "_flipkart", False):
            handler.setFormatter(formatter)  # the latest app's format (tests build both)
            return
    handler = logging.StreamHandler(sys.stdout)
    handler._flipkart = True  # type: ignore[attr-defined]
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(formatter)
    root.addHandler(handler)
    # Alembic announces every plugin it loads at INFO; that is noise on each `migrate`.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def request_id(incoming: str) -> str:
    """The incoming id (from nginx) if it is sane, else a new one."""
    return incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex


def trace_id(traceparent: str) -> str | None:
    """The trace id of a valid W3C traceparent (version 00), else None."""
    match = _TRACEPARENT.fullmatch(traceparent)
    return match.group(1) if match else None


def init_app(app: Flask) -> None:
    """Take a sane incoming request id (from nginx) or make one; echo it on the response."""

    @app.before_request
    def _assign_request_id() -> None:
        g.request_id = request_id(request.headers.get(REQUEST_ID_HEADER, ""))
        g.trace_id = trace_id(request.headers.get(TRACEPARENT_HEADER, ""))

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "-")
        return response
