"""Cache hits answered before Flask: one Redis GET, the stored bytes as they are.

A hit on a product detail is the hottest path of a storefront, and on it Flask's
per-request machinery (request context, hooks, the output wrapper) costs several times the
Redis round trip. Like Django's FetchFromCacheMiddleware, this WSGI layer serves the hit
itself. Which paths it serves, and under which cache key, come from the route (`FastPath`:
the route's endpoint and the key its service reads); its bytes and headers come from the
same builder as the route's (responses.json_answer). Everything else goes to Flask
untouched: misses, leases, 404s, HEAD, and every request while the cache is unusable
(breaker open or invalidations waiting to be replayed), which then BYPASSes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING

from werkzeug.routing import Map

from .cache import CacheStatus
from .logs import request_id
from .request_metrics import ROUTE_KEY
from .responses import json_answer
from .routing import path_pattern, route_template

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from .cache import Cache
    from .edge import Edge


# What a hit can answer (json_answer: 200, or 304 to a matching If-None-Match), made once.
STATUS_LINES = {
    s.value: f"{s.value} {s.phrase.upper()}" for s in (HTTPStatus.OK, HTTPStatus.NOT_MODIFIED)
}


@dataclass(frozen=True)
class FastPath:
    """A GET route whose cached answer may be served here: its endpoint and cache key."""

    endpoint: str
    key: Callable[[Mapping[str, str]], str]  # the route's path variables -> its cache key
    # ... -> the surrogate keys its answer carries (what the service puts in Cached.keys)
    surrogate_keys: Callable[[Mapping[str, str]], tuple[str, ...]]


class CacheFront:
    """WSGI middleware: answer cached hits of the fast paths; pass every other request on."""

    def __init__(
        self,
        app: WSGIApplication,
        cache: Cache,
        edge: Edge,
        url_map: Map,
        paths: Iterable[FastPath],
    ) -> None:
        self.app = app
        self.cache = cache
        self.edge = edge
        # The same paths the routes accept (routing.path_pattern): anything else (an id of
        # 0, with leading zeros, >= 2^63) goes to Flask, which answers 404 without a lookup.
        self._routes: list[tuple[re.Pattern[str], FastPath, str]] = [
            (path_pattern(url_map, path.endpoint), path, route_template(url_map, path.endpoint))
            for path in paths
        ]

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Serve a hit, or hand the request to the wrapped app."""
        if environ["REQUEST_METHOD"] == "GET":
            path_info = environ.get("PATH_INFO", "")
            for pattern, path, route in self._routes:
                match = pattern.match(path_info)
                if match:
                    variables = match.groupdict()
                    body = self.cache.peek(path.key(variables))
                    if body is not None:
                        environ[ROUTE_KEY] = route  # counted under the route's template
                        keys = path.surrogate_keys(variables)
                        return self._hit(environ, start_response, body, keys)
                    break
        return self.app(environ, start_response)

    def _hit(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        body: bytes,
        keys: tuple[str, ...],
    ) -> list[bytes]:
        rid = request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        answer = json_answer(
            body,
            environ,
            rid,
            source=CacheStatus.HIT,
            shared=keys,
            shared_ttl=self.edge.shared_ttl,
        )
        start_response(STATUS_LINES[answer.status], answer.headers)
        return [answer.body] if answer.body else []
