"""The response builder and the cache front's paths: both come from one definition.

The cache front answers cached hits before Flask; its URL patterns are built from the route
rules (routing.path_pattern) and its headers by the builder the routes use
(responses.json_answer), so neither can drift from the route.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import pytest
from werkzeug.routing import Map, Rule
from werkzeug.test import Client, EnvironBuilder
from werkzeug.wrappers import Response

from flipkart_api.cache import KEY_PREFIX, Cache, CacheStatus
from flipkart_api.cache_front import CacheFront, FastPath
from flipkart_api.cache_stores import MemoryBackend
from flipkart_api.edge import Edge
from flipkart_api.responses import json_answer
from flipkart_api.routing import IdConverter, path_pattern

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def _map(rule: str) -> Map:
    return Map([Rule(rule, endpoint="items.get", methods=["GET"])], converters={"int": IdConverter})


def test_the_pattern_is_the_route_s_own() -> None:
    """Prefix, name and id converter all come from the rule."""
    pattern = path_pattern(_map("/shop/v2/items/<int:item_id>"), "items.get")
    match = pattern.match("/shop/v2/items/77")
    assert match is not None
    assert match.groupdict() == {"item_id": "77"}
    for path in (
        "/api/v1/products/77",
        "/shop/v2/items/077",
        "/shop/v2/items/0",
        "/shop/v2/items/77/",
    ):
        assert pattern.match(path) is None, path


def test_an_endpoint_without_one_get_rule_is_refused() -> None:
    with pytest.raises(LookupError):
        path_pattern(_map("/items/<int:item_id>"), "items.other")


def _inner(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("404 NOT FOUND", [("Content-Type", "text/plain")])
    return [b"flask"]


def test_moving_the_route_moves_the_fast_path() -> None:
    """Serve the detail under another prefix: hits follow it, the old path is not served."""
    cache = Cache(MemoryBackend(), ttl_seconds=60, jitter=0)
    cache.backend.acquire_lease(KEY_PREFIX + "product:7", "t")
    cache.backend.set_if_leased(KEY_PREFIX + "product:7", b'{"id":7}', 60_000, "t")

    def key(path: Mapping[str, str]) -> str:
        return f"product:{int(path['product_id'])}"

    url_map = Map(
        [Rule("/shop/v2/products/<int:product_id>", endpoint="catalog.get_product")],
        converters={"int": IdConverter},
    )
    fast = FastPath("catalog.get_product", key, lambda path: (f"p{path['product_id']}",))
    front = CacheFront(_inner, cache, Edge([], 0.5, 60), url_map, [fast])
    client = Client(front, Response)
    moved = client.get("/shop/v2/products/7")
    assert (moved.status_code, moved.headers["X-Cache"], moved.data) == (200, "HIT", b'{"id":7}')
    assert (moved.headers["xkey"], moved.headers["Cache-Control"]) == ("p7", "public, max-age=0")
    assert client.get("/api/v1/products/7").data == b"flask"


def _environ(method: str = "GET", **headers: str) -> WSGIEnvironment:
    environ: WSGIEnvironment = EnvironBuilder(method=method, headers=headers).get_environ()
    return environ


def test_the_builder_s_headers_and_conditional_get() -> None:
    body = b'{"id":1}'
    fresh = json_answer(body, _environ(), "rid-1", source=CacheStatus.MISS)
    headers = dict(fresh.headers)
    assert (fresh.status, fresh.body) == (200, body)
    assert headers["Content-Type"] == "application/json"
    assert (headers["X-Cache"], headers["X-Request-ID"]) == ("MISS", "rid-1")
    assert headers["Content-Length"] == str(len(body))
    etag = headers["ETag"]
    for sent in (etag, "W/" + etag, f'"other", {etag}', "*"):
        again = json_answer(body, _environ(**{"If-None-Match": sent}), "rid-2")
        assert (again.status, again.body) == (304, b""), sent
        assert dict(again.headers)["ETag"] == etag
    other = json_answer(body, _environ(**{"If-None-Match": '"other"'}), "rid-3")
    assert other.status == 200
    head = json_answer(body, _environ("HEAD"), "rid-4")
    assert dict(head.headers)["ETag"] == etag  # HEAD describes the GET it stands for
    for status, method in ((201, "POST"), (200, "PATCH"), (503, "GET")):
        answer = json_answer(body, _environ(method), "rid-5", status=status)
        assert "ETag" not in dict(answer.headers), (status, method)
