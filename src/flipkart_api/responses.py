"""Turning service results (JSON bytes, cache status) into HTTP responses."""

from __future__ import annotations

from flask import Response

from .cache import CacheStatus


def json_bytes(
    body: bytes,
    status: int = 200,
    cache_status: CacheStatus | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Send already-serialised JSON as is (cached bytes are never re-serialised)."""
    response = Response(body, status=status, mimetype="application/json")
    if cache_status is not None:
        response.headers["X-Cache"] = cache_status.value
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
