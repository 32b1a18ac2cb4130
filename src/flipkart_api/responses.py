"""The one way an answer leaves: a service result -> JSON bytes and their headers.

`json_answer` is the builder, and it knows no Flask: the Flask routes (through `respond`) and
the cache front (cache_front.py, before Flask) both call it, so a cached product detail has
the same bytes and headers whichever of them answered:
- Content-Type, and X-Cache (HIT, MISS or BYPASS) for a read that went through the cache;
- for those reads (public catalog data): `Cache-Control: public, max-age=0` (browsers
  revalidate by ETag every time) with `s-maxage` when there is an HTTP cache the app purges
  (edge.py), and the surrogate keys a purge drops them by (`xkey`);
- on a 200 to GET or HEAD, an ETag of the bytes, and 304 with no body when If-None-Match has it;
- X-Request-ID: the sane one nginx sent, or a new one (logs.request_id).
Problem+json errors have their own builder (problems.py); the WSGI layers outside add
nosniff and no-store (headers.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Response, current_app, g, request
from pydantic import BaseModel
from werkzeug.http import generate_etag, is_resource_modified, quote_etag

from .cache import Cached, CacheStatus
from .logs import REQUEST_ID_HEADER

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

JSON = "application/json"
SURROGATE_KEYS = "xkey"  # the header vmod_xkey indexes cached objects by
CONDITIONAL_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class Answer:
    """What to send: status, headers, body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def json_answer(
    body: bytes,
    environ: WSGIEnvironment,
    request_id: str,
    *,
    status: int = 200,
    source: CacheStatus | None = None,
    headers: Mapping[str, str] | None = None,
    shared: Sequence[str] | None = None,
    shared_ttl: int | None = None,
) -> Answer:
    """JSON bytes as they are (cached bytes are never re-serialised), with their headers.

    `shared`: the answer is public and may be kept by shared caches, under these surrogate
    keys; `shared_ttl`: for how long without asking (None: revalidate every time).
    """
    out = [("Content-Type", JSON)]
    if source is not None:
        out.append(("X-Cache", source.value))
    if shared is not None:
        ttl = f", s-maxage={shared_ttl}" if shared_ttl else ""
        out.append(("Cache-Control", f"public, max-age=0{ttl}"))
        if shared:
            out.append((SURROGATE_KEYS, " ".join(shared)))
    out.extend((headers or {}).items())
    out.append((REQUEST_ID_HEADER, request_id))
    if status == 200 and environ["REQUEST_METHOD"] in CONDITIONAL_METHODS:
        etag = quote_etag(generate_etag(body))
        out.append(("ETag", etag))
        if not is_resource_modified(environ, etag=etag):
            return Answer(304, out, b"")
    out.append(("Content-Length", str(len(body))))
    return Answer(status, out, body)


def respond(
    result: Cached | BaseModel | None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The Flask side of every route: a cached read, an output model, or nothing (204)."""
    if result is None:  # 204: no body, so no Content-Type either (werkzeug's default is HTML)
        empty = Response(status=204, headers={REQUEST_ID_HEADER: g.request_id, **(headers or {})})
        del empty.headers["Content-Type"]
        return empty
    shared: tuple[str, ...] | None = None
    if isinstance(result, Cached):
        body, source, shared = result.body, result.source, result.keys
    else:
        body, source = result.model_dump_json(by_alias=True).encode(), None
    answer = json_answer(
        body,
        request.environ,
        g.request_id,
        status=status,
        source=source,
        headers=headers,
        shared=shared,
        shared_ttl=current_app.extensions["edge"].shared_ttl,
    )
    return Response(answer.body, status=answer.status, headers=answer.headers)
