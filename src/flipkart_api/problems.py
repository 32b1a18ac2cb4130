"""One error shape (RFC 9457 problem+json) for every error; domain errors -> status, here only."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from apiflask import APIFlask
from apiflask.exceptions import HTTPError
from flask import Response
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from . import metrics
from .errors import (
    AmbiguousInput,
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    Overloaded,
    Unauthorized,
)
from .json_body import APIRequest, MalformedJSON, NotJSON
from .validation import field_errors

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"

# The one place a domain error becomes a status code (the most specific class wins).
STATUS: dict[type[DomainError], HTTPStatus] = {
    NotFound: HTTPStatus.NOT_FOUND,
    Conflict: HTTPStatus.CONFLICT,
    Unauthorized: HTTPStatus.UNAUTHORIZED,
    Overloaded: HTTPStatus.SERVICE_UNAVAILABLE,
    InvalidInput: HTTPStatus.UNPROCESSABLE_ENTITY,
    AmbiguousInput: HTTPStatus.BAD_REQUEST,
}


def status_of(error: DomainError) -> HTTPStatus:
    """The status of a domain error: its nearest class in STATUS, else 400."""
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return HTTPStatus.BAD_REQUEST


def problem(
    status: int,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Build an application/problem+json response."""
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    response = Response(orjson.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _validation_errors(error: HTTPError) -> list[dict[str, str]]:
    """[{field, message}] in the client's words, from pydantic's errors when it raised them."""
    locations = list(error.detail or {}) if isinstance(error.detail, dict) else []
    if isinstance(error.__cause__, ValidationError) and len(locations) == 1:
        return field_errors(error.__cause__, locations[0])
    # Not pydantic's (apiflask's own shape): flatten {location: {field: [messages]}}.
    errors: list[dict[str, str]] = []
    for fields in (error.detail or {}).values():
        if not isinstance(fields, dict):
            continue
        for field, messages in fields.items():
            for message in messages if isinstance(messages, list) else [messages]:
                errors.append({"field": str(field), "message": str(message)})
    return errors


def _http_error(error: HTTPError) -> Response:
    """apiflask's errors: validation (422), auth (401/403), abort() and routing errors."""
    headers = {k: str(v) for k, v in dict(error.headers or {}).items()}
    if error.status_code == HTTPStatus.UNPROCESSABLE_ENTITY:
        errors = _validation_errors(error)
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
        return problem(422, summary or "Invalid input.", errors=errors, headers=headers)
    detail = error.message if error.message else HTTPStatus(error.status_code).description
    if error.status_code in (401, 403) and error.message in ("Unauthorized", "Forbidden"):
        detail = HTTPStatus(error.status_code).description
    return problem(error.status_code, detail, headers=headers)


def _domain_error(error: DomainError) -> Response:
    retry = {"Retry-After": str(error.retry_after)} if isinstance(error, Overloaded) else None
    return problem(int(status_of(error)), error.detail, errors=error.errors, headers=retry)


def _werkzeug_error(error: HTTPException) -> Response:
    """Routing 404/405, 413, malformed JSON (400) and friends, without HTML."""
    code = error.code or 500
    headers = {k: v for k, v in error.get_headers() if k.lower() == "allow"}
    if code >= 500:
        log.error("unhandled error", exc_info=getattr(error, "original_exception", error))
        return problem(code, "The server could not complete the request.")
    detail = HTTPStatus(code).description
    if isinstance(error, MalformedJSON | NotJSON) and error.description:
        detail = error.description
    return problem(code, detail, headers=headers)


def _database_unavailable(error: Exception) -> Response:
    """The database is down, restarting or saturated: fail fast and say so, never a 500."""
    log.warning("database unavailable: %s", type(error).__name__)
    return problem(503, "The database is temporarily unavailable.", headers={"Retry-After": "2"})


def _pool_exhausted(error: Exception) -> Response:
    """Every pooled connection was busy for DB_POOL_TIMEOUT_SECONDS: a 503, counted."""
    metrics.POOL_TIMEOUTS.inc()
    return _database_unavailable(error)


def init_app(app: APIFlask) -> None:
    """Route every error through one of the handlers above; read bodies with APIRequest."""
    app.request_class = APIRequest
    app.error_processor(_http_error)
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(HTTPException, _werkzeug_error)
    app.register_error_handler(OperationalError, _database_unavailable)
    app.register_error_handler(PoolTimeout, _pool_exhausted)
