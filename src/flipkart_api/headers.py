"""Headers every response carries, whichever layer answered it.

- `X-Content-Type-Options: nosniff` on all of them: a browser never guesses a type (a JSON
  body with HTML in a product name is not run as a page).
- `Cache-Control: no-store` on every personal response, so no browser, proxy or CDN keeps a
  token, an account, a cart or an order: everything a request with `Authorization` gets, and
  everything the personal blueprints answer (sign-up and login carry no token, their errors
  neither).
- `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY` and a Content-Security-Policy on
  all of them: the API's JSON loads nothing and is framed by nobody
  (`default-src 'none'; frame-ancestors 'none'`); the /docs page gets one that lets Swagger
  UI run from our own files, its inline script and style allowed by hash, not by
  'unsafe-inline' (`docs_policy`). HSTS is nginx's (it terminates TLS), not the app's.

The WSGI layer sits outside the cache front, so its fast path is covered like the rest.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask, Response, request

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

NOSNIFF = ("X-Content-Type-Options", "nosniff")
NO_STORE = ("Cache-Control", "no-store")
REFERRER = ("Referrer-Policy", "no-referrer")
NO_FRAMES = ("X-Frame-Options", "DENY")
CSP = "Content-Security-Policy"
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# Always present, whichever layer answered (a layer's own choice of the same header wins).
ALWAYS = (NOSNIFF, REFERRER, NO_FRAMES, (CSP, API_POLICY))
DOCS_ENDPOINT = "openapi.docs"  # apiflask's Swagger UI page (docs.py serves its files)
INLINE = re.compile(rb"<(script|style)>(.*?)</\1>", re.DOTALL)
# Blueprints whose every answer is about one person: accounts and tokens, carts and orders.
PERSONAL_BLUEPRINTS = frozenset({"auth", "orders"})


class SecurityHeaders:
    """WSGI middleware (outermost): ALWAYS on all; no-store when Authorization was sent."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Pass the request on; add the headers as the response starts."""
        personal = "HTTP_AUTHORIZATION" in environ

        def start(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> object:
            if personal:  # whatever a layer below chose, a personal answer is never stored
                headers = [h for h in headers if h[0].lower() != "cache-control"]
                headers.append(NO_STORE)
            present = {name.lower() for name, _ in headers}
            headers = headers + [h for h in ALWAYS if h[0].lower() not in present]
            return start_response(status, headers, exc_info)  # type: ignore[arg-type]

        return self.app(environ, start)  # type: ignore[arg-type]


def _no_store_if_personal(response: Response) -> Response:
    """no-store on whatever a personal blueprint answers, errors included."""
    if request.blueprint in PERSONAL_BLUEPRINTS:
        response.headers[NO_STORE[0]] = NO_STORE[1]
    return response


def docs_policy(page: bytes) -> str:
    """The CSP for Swagger UI's page: our own files, and its inline blocks by their hashes."""
    hashes: dict[bytes, list[str]] = {b"script": [], b"style": []}
    for tag, text in INLINE.findall(page):
        digest = base64.b64encode(hashlib.sha256(text).digest()).decode()
        hashes[tag].append(f"'sha256-{digest}'")
    return (
        f"default-src 'none'; script-src 'self' {' '.join(hashes[b'script'])}; "
        f"style-src 'self' {' '.join(hashes[b'style'])}; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _docs_csp(response: Response) -> Response:
    """/docs runs Swagger UI: a policy that allows exactly that page's scripts and styles."""
    if request.endpoint == DOCS_ENDPOINT and response.status_code == 200:
        response.headers[CSP] = docs_policy(response.get_data())
    return response


def init_app(app: Flask) -> None:
    """Install the rules: the request hooks now, the WSGI layer outermost."""
    app.after_request(_no_store_if_personal)
    app.after_request(_docs_csp)
    app.wsgi_app = SecurityHeaders(app.wsgi_app)  # type: ignore[method-assign]
