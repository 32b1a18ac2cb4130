"""Logging to stdout with a request id on every line, and the X-Request-ID header."""

from __future__ import annotations

import logging
import re
import sys
import uuid

from flask import Flask, Response, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")  # never echo arbitrary bytes into logs


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def configure_logging(level: str) -> None:
    """One stdout handler on the root logger; idempotent (tests build many apps)."""
    root = logging.getLogger()
    root.setLevel(level)
    if any(getattr(h, "_flipkart", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler._flipkart = True  # type: ignore[attr-defined]
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
    )
    root.addHandler(handler)
    # Alembic announces every plugin it loads at INFO; that is noise on each `migrate`.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def request_id(incoming: str) -> str:
    """The incoming id (from nginx) if it is sane, else a new one."""
    return incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex


def init_app(app: Flask) -> None:
    """Take a sane incoming request id (from nginx) or make one; echo it on the response."""

    @app.before_request
    def _assign_request_id() -> None:
        g.request_id = request_id(request.headers.get(REQUEST_ID_HEADER, ""))

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "-")
        return response
