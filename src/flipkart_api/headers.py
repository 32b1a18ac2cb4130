"""Headers every response carries, whichever layer answered it.

- `X-Content-Type-Options: nosniff` on all of them: a browser never guesses a type (a JSON
  body with HTML in a product name is not run as a page).
- `Cache-Control: no-store` on every personal response, so no browser, proxy or CDN keeps a
  token, an account, a cart or an order: everything a request with `Authorization` gets, and
  everything the personal blueprints answer (sign-up and login carry no token, their errors
  neither).

The WSGI layer sits outside the cache front, so its fast path is covered like the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask, Response, request

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

NOSNIFF = ("X-Content-Type-Options", "nosniff")
NO_STORE = ("Cache-Control", "no-store")
# Blueprints whose every answer is about one person: accounts and tokens, carts and orders.
PERSONAL_BLUEPRINTS = frozenset({"auth", "orders"})


class SecurityHeaders:
    """WSGI middleware (outermost): nosniff on all; no-store when Authorization was sent."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Pass the request on; add the headers as the response starts."""
        personal = "HTTP_AUTHORIZATION" in environ

        def start(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> object:
            if personal:  # whatever a layer below chose, a personal answer is never stored
                headers = [h for h in headers if h[0].lower() != "cache-control"]
                headers.append(NO_STORE)
            if not any(name.lower() == "x-content-type-options" for name, _ in headers):
                headers.append(NOSNIFF)
            return start_response(status, headers, exc_info)  # type: ignore[arg-type]

        return self.app(environ, start)  # type: ignore[arg-type]


def _no_store_if_personal(response: Response) -> Response:
    """no-store on whatever a personal blueprint answers, errors included."""
    if request.blueprint in PERSONAL_BLUEPRINTS:
        response.headers[NO_STORE[0]] = NO_STORE[1]
    return response


def init_app(app: Flask) -> None:
    """Install both rules: the blueprint hook now, the WSGI layer outermost."""
    app.after_request(_no_store_if_personal)
    app.wsgi_app = SecurityHeaders(app.wsgi_app)  # type: ignore[method-assign]
