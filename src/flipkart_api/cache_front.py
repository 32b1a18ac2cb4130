"""Product-detail cache hits answered before Flask: one Redis GET, the stored bytes as is.

A hit on `GET /api/v1/products/<id>` is the hottest path of a storefront, and on it Flask's
per-request machinery (request context, hooks, the output wrapper) costs several times the
Redis round trip. Like Django's FetchFromCacheMiddleware, this WSGI layer serves the hit
itself, with the headers the route sends (X-Cache, ETag and 304, X-Request-ID). Everything
else goes to Flask untouched: misses, leases, 404s, HEAD, and every request while the cache
is unusable (breaker open or invalidations waiting to be replayed), which then BYPASSes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from werkzeug.http import generate_etag, is_resource_modified, quote_etag

from .catalog.service import product_key
from .logs import REQUEST_ID_HEADER, request_id
from .openapi import ID_PATTERN

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from .cache import Cache

# The same ids the route's converter accepts; anything else (0, leading zeros, >= 2^63) goes
# to Flask, which answers 404 without a database or cache lookup.
_PRODUCT_PATH = re.compile(rf"/api/v1/products/({ID_PATTERN})\Z")


class CacheFront:
    """WSGI middleware: answer cached product details; pass every other request on."""

    def __init__(self, app: WSGIApplication, cache: Cache) -> None:
        self.app = app
        self.cache = cache

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Serve a hit, or hand the request to the wrapped app."""
        if environ["REQUEST_METHOD"] == "GET":
            match = _PRODUCT_PATH.match(environ.get("PATH_INFO", ""))
            if match:
                body = self.cache.peek(product_key(int(match[1])))
                if body is not None:
                    return self._hit(environ, start_response, body)
        return self.app(environ, start_response)

    def _hit(
        self, environ: WSGIEnvironment, start_response: StartResponse, body: bytes
    ) -> list[bytes]:
        etag = quote_etag(generate_etag(body))
        headers = [
            ("Content-Type", "application/json"),
            ("X-Cache", "HIT"),
            ("ETag", etag),
            (REQUEST_ID_HEADER, request_id(environ.get("HTTP_X_REQUEST_ID", ""))),
        ]
        if not is_resource_modified(environ, etag=etag):
            start_response("304 NOT MODIFIED", headers)
            return []
        start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
        return [body]
