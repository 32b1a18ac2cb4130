"""Through the front door: HTTPS at nginx, the HTTP cache behind it, and a cache outage.

The native stack of tests/front_door.py (nginx with TLS -> Varnish -> nginx's internal
server -> 2 replicas): what a client over HTTPS sees.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import servers
from .front_door import ADMIN, FrontDoor, start_front_door, stop_front_door

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def door(
    tmp_path_factory: pytest.TempPathFactory, pg_server: servers.PostgresServer
) -> Iterator[FrontDoor]:
    started = start_front_door(tmp_path_factory.mktemp("door"), pg_server, replicas=2)
    yield started
    stop_front_door(started)


def test_anonymous_reads_are_cached_behind_tls_with_every_header(door: FrontDoor) -> None:
    first = door.request("GET", "/api/v1/products/5")
    second = door.request("GET", "/api/v1/products/5")
    assert (first[0], first[1]["X-Edge"], second[1]["X-Edge"]) == (200, "MISS", "HIT")
    assert first[2] == second[2]
    headers = second[1]
    assert headers.get_all("Strict-Transport-Security") == ["max-age=63072000"]
    assert headers.get_all("Content-Security-Policy") == [
        "default-src 'none'; frame-ancestors 'none'"
    ]
    assert headers["Cache-Control"] == "public, max-age=0"  # s-maxage is the cache's alone
    assert "xkey" not in headers  # surrogate keys stay inside
    # The conditional GET a browser sends: 304 from the cache.
    again = door.request("GET", "/api/v1/products/5", **{"If-None-Match": headers["ETag"]})
    assert again[0] == 304


def test_requests_with_credentials_go_straight_to_the_replicas(door: FrontDoor) -> None:
    token = door.token(ADMIN["email"], ADMIN["password"])
    for _ in range(2):
        status, headers, _body = door.request("GET", "/api/v1/products/6", token=token)
        assert (status, headers.get("X-Edge")) == (200, None)  # never through the cache
        assert headers["Cache-Control"] == "no-store"
    status, headers, _ = door.request("GET", "/api/v1/products/6", Cookie="a=b")
    assert headers.get("X-Edge") is None
    # Paths the cache never stores skip it too (nginx balances them over the replicas).
    for path in ("/health", "/livez", "/docs"):
        status, headers, _ = door.request("GET", path)
        assert (status, headers.get("X-Edge")) == (200, None), path


def test_a_write_through_the_front_door_is_read_back_at_once(door: FrontDoor) -> None:
    token = door.token(ADMIN["email"], ADMIN["password"])
    before = door.request("GET", "/api/v1/products/8")[2]
    assert door.request("GET", "/api/v1/products/8")[1]["X-Edge"] == "HIT"
    status, _, _ = door.request(
        "PATCH", "/api/v1/products/8", {"price": before["price"] - 3}, token
    )
    assert status == 200
    status, headers, after = door.request("GET", "/api/v1/products/8")
    assert (headers["X-Edge"], after["price"]) == ("MISS", before["price"] - 3)


def test_with_the_cache_down_nginx_asks_the_replicas_and_no_read_fails(door: FrontDoor) -> None:
    paths = ["/api/v1/products/3", "/api/v1/products?limit=5", "/api/v1/categories", "/"]
    door.varnish.stop()
    try:
        answers = [door.request("GET", paths[n % len(paths)]) for n in range(200)]
        statuses = sorted({a[0] for a in answers})
        assert statuses == [200], statuses
        assert all(a[1].get("X-Edge") is None for a in answers)  # the replicas answered
    finally:
        door.restart_varnish()
    door.request("GET", "/api/v1/products/3")
    assert door.request("GET", "/api/v1/products/3")[1]["X-Edge"] == "HIT"
