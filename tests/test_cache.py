"""Cache-aside: hits, invalidation on writes, ETags, single flight, and Redis failures."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from werkzeug.exceptions import HTTPException

from flipkart_api import create_app
from flipkart_api.cache import KEY_PREFIX, Cache, Cached, CacheStatus
from flipkart_api.cache_stores import MemoryBackend, RedisBackend
from flipkart_api.catalog.routes import FAST_PATHS
from flipkart_api.catalog.seed import seed_catalog
from flipkart_api.db import session
from flipkart_api.routing import path_pattern
from flipkart_api.settings import load_settings

from . import servers
from .conftest import ADMIN, TEST_SECRET_KEY, bearer, reset_postgres, sqlite_settings

pytestmark = pytest.mark.timeout(60)


def test_detail_miss_then_hit(seeded: Flask, client: FlaskClient) -> None:
    first = client.get("/api/v1/products/3")
    second = client.get("/api/v1/products/3")
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert first.get_data() == second.get_data()


def test_a_hit_answered_before_flask_looks_like_the_route_s_answer(
    seeded: Flask, client: FlaskClient
) -> None:
    """cache_front.py serves detail hits; every header and byte must match the route's."""
    miss = client.get("/api/v1/products/6", headers={"X-Request-ID": "from-nginx-1"})
    hit = client.get("/api/v1/products/6", headers={"X-Request-ID": "from-nginx-2"})
    assert (miss.headers["X-Cache"], hit.headers["X-Cache"]) == ("MISS", "HIT")
    assert hit.get_data() == miss.get_data()
    for name in ("Content-Type", "Content-Length", "ETag"):
        assert hit.headers[name] == miss.headers[name], name
    assert hit.headers["X-Request-ID"] == "from-nginx-2"
    insane = client.get("/api/v1/products/6", headers={"X-Request-ID": "<script>; x=1"})
    assert insane.headers["X-Request-ID"] != "<script>; x=1"
    assert len(insane.headers["X-Request-ID"]) == 32  # a fresh uuid4
    weak = client.get("/api/v1/products/6", headers={"If-None-Match": "W/" + miss.headers["ETag"]})
    assert (weak.status_code, weak.headers["X-Cache"], weak.get_data()) == (304, "HIT", b"")
    # HEAD, leading zeros and out-of-range ids are Flask's, as before: product 6 exists, but
    # "06" is not how its id is written, and the id converter's regex refuses it (a 404).
    assert client.head("/api/v1/products/6").status_code == 200
    assert client.get("/api/v1/products/06").status_code == 404
    assert client.get(f"/api/v1/products/{2**63}").status_code == 404


def test_tutorial_root_uses_the_cache(seeded: Flask, client: FlaskClient) -> None:
    first, second = client.get("/").get_json(), client.get("/").get_json()
    assert first["message"] == "From Database!"
    assert second["message"] == "From Redis Cache!"
    assert first["data"] == second["data"]
    assert first["data"].startswith(("PostgreSQL", "SQLite"))


def test_writes_are_never_followed_by_stale_reads(
    seeded: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    listing = "/api/v1/products?category=mobiles&sort=price&limit=100"
    client.get("/api/v1/products/5")
    client.get(listing)
    assert client.get("/api/v1/products/5").headers["X-Cache"] == "HIT"
    assert client.get(listing).headers["X-Cache"] == "HIT"

    client.patch(
        "/api/v1/products/5", json={"stock": 0, "category": "mobiles"}, headers=admin_headers
    )
    detail = client.get("/api/v1/products/5")
    assert detail.headers["X-Cache"] == "MISS"
    assert detail.get_json()["stock"] == 0
    assert detail.get_json()["in_stock"] is False
    row = next(p for p in client.get(listing).get_json()["items"] if p["id"] == 5)
    assert row["stock"] == 0

    client.delete("/api/v1/products/5", headers=admin_headers)
    assert client.get("/api/v1/products/5").status_code == 404
    assert all(p["id"] != 5 for p in client.get(listing).get_json()["items"])


def test_etag_and_304(seeded: Flask, client: FlaskClient) -> None:
    first = client.get("/api/v1/products/2")
    etag = first.headers["ETag"]
    again = client.get("/api/v1/products/2", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    other = client.get("/api/v1/products/2", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200


def _count_product_queries(app: Flask) -> list[str]:
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if "FROM products" in statement:
            statements.append(statement)

    event.listen(app.extensions["db_engine"], "before_cursor_execute", record)
    return statements


def test_concurrent_misses_cause_one_query(seeded: Flask) -> None:
    statements = _count_product_queries(seeded)
    barrier = threading.Barrier(8)
    results: list[tuple[int, str]] = []

    def fetch() -> None:
        client = seeded.test_client()
        barrier.wait()
        response = client.get("/api/v1/products/7")
        results.append((response.status_code, response.headers["X-Cache"]))

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [code for code, _ in results] == [200] * 8
    assert sorted(status for _, status in results).count("MISS") == 1
    assert len(statements) == 1


# -- Redis failures (PostgreSQL + a Redis of the test's own) -------------------------------
@pytest.fixture
def own_redis() -> Iterator[servers.RedisServer]:
    """A Redis this test may stop, freeze and restart."""
    try:
        server = servers.start_redis()
    except servers.ServerUnavailable as exc:
        pytest.fail(str(exc)) if os.environ.get("CI") == "true" else pytest.skip(str(exc))
    yield server
    if server.process.poll() is None:
        os.kill(server.pid, signal.SIGCONT)  # in case the test froze it
    server.stop()


@pytest.fixture
def pg_app(pg_url: str, own_redis: servers.RedisServer) -> Iterator[Flask]:
    """A seeded app on PostgreSQL whose Redis the test controls."""
    reset_postgres(pg_url, own_redis.url())
    app = create_app(
        load_settings(
            app_env="test",
            database_url=pg_url,
            redis_url=own_redis.url(),
            secret_key=TEST_SECRET_KEY,
        )
    )
    with app.app_context():
        seed_catalog(session(), 30)
    yield app
    app.extensions["db_engine"].dispose()


@pytest.mark.slow  # a Redis of its own
def test_redis_down_bypasses_then_resumes(pg_app: Flask, own_redis: servers.RedisServer) -> None:
    client = pg_app.test_client()
    assert client.get("/api/v1/products/1").headers["X-Cache"] == "MISS"
    own_redis.halt()
    for url in ("/api/v1/products/1", "/api/v1/products?limit=5", "/api/v1/categories", "/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["X-Cache"] == "BYPASS", url
    health = client.get("/health")
    assert health.status_code == 200
    assert health.get_json()["status"] == "degraded"
    assert health.get_json()["checks"] == {"database": "ok", "cache": "unavailable"}
    own_redis.restart()
    deadline = time.monotonic() + 5
    statuses = []
    while time.monotonic() < deadline:
        statuses.append(client.get("/api/v1/products/1").headers["X-Cache"])
        if statuses[-1] == "HIT":
            break
        time.sleep(0.1)
    assert statuses[-1] == "HIT", statuses
    time.sleep(pg_app.config["SETTINGS"].health_cache_seconds)  # /health's last check expires
    assert client.get("/health").get_json()["status"] == "healthy"


@pytest.mark.slow  # a Redis of its own
def test_frozen_redis_costs_little_and_writes_during_it_are_not_lost(
    pg_app: Flask, own_redis: servers.RedisServer
) -> None:
    """A hung Redis (SIGSTOP) keeps its data: the invalidation must be replayed afterwards."""
    client = pg_app.test_client()
    with pg_app.app_context():
        from flipkart_api.auth.service import create_admin

        create_admin(session(), ADMIN["email"], ADMIN["password"])
    headers = bearer(client, ADMIN["email"], ADMIN["password"])
    client.get("/api/v1/products/4")
    assert client.get("/api/v1/products/4").headers["X-Cache"] == "HIT"

    os.kill(own_redis.pid, signal.SIGSTOP)
    started = time.monotonic()
    slow = client.get("/api/v1/products/4")
    assert slow.status_code == 200
    assert slow.headers["X-Cache"] == "BYPASS"
    assert time.monotonic() - started < 1.0
    patched = client.patch("/api/v1/products/4", json={"stock": 123}, headers=headers)
    assert patched.status_code == 200
    os.kill(own_redis.pid, signal.SIGCONT)

    time.sleep(1.1)  # let the breaker close
    after = client.get("/api/v1/products/4")
    assert after.get_json()["stock"] == 123, "a stale cached value survived the outage"


def test_sqlite_dev_mode_runs_without_any_server(tmp_path: Path, sqlite_template: Path) -> None:
    app = create_app(sqlite_settings(tmp_path, sqlite_template))
    with app.app_context():
        seed_catalog(session(), 5)
    client = app.test_client()
    assert client.get("/health").get_json()["checks"] == {"database": "ok", "cache": "ok"}
    assert client.get("/api/v1/products/1").headers["X-Cache"] == "MISS"
    assert client.get("/api/v1/products/1").headers["X-Cache"] == "HIT"


@pytest.mark.slow  # a Redis of its own
def test_health_sees_an_outage_within_its_cache_window(
    pg_app: Flask, own_redis: servers.RedisServer
) -> None:
    client = pg_app.test_client()
    window = pg_app.config["SETTINGS"].health_cache_seconds
    assert client.get("/health").get_json()["status"] == "healthy"
    own_redis.halt()
    try:
        deadline = time.monotonic() + window + 1
        status = "healthy"
        while status == "healthy" and time.monotonic() < deadline:
            status = client.get("/health").get_json()["status"]
            time.sleep(0.05)
        assert status == "degraded", f"outage not reported within {window + 1} s"
    finally:
        own_redis.restart()


@pytest.fixture(params=["memory", "redis"])
def bare_cache(request: pytest.FixtureRequest) -> Iterator[tuple[Cache, Callable[[str], None]]]:
    """A Cache on each backend, with a way to make it lose one key (what eviction does)."""
    if request.param == "memory":
        memory = MemoryBackend()
        yield Cache(memory, 300, 0), lambda key: memory._data.pop(key, None)
        return
    url = request.getfixturevalue("redis_server").url()
    with redis.Redis.from_url(url) as client:
        client.flushdb()
        yield Cache(RedisBackend(url, 0.5), 300, 0), lambda key: client.delete(key)


def test_an_evicted_generation_never_revives_older_list_pages(
    bare_cache: tuple[Cache, Callable[[str], None]],
) -> None:
    """allkeys-lru may evict the generation counter and keep pages cached under it."""
    cache, evict = bare_cache
    pages: list[str] = []
    for version in range(3):  # three catalog states, each with its page cached
        page = f"products:{cache.generation('catalog')}:page"
        assert (
            cache.read_through(page, lambda v=version: f"v{v}".encode()).body
            == f"v{version}".encode()
        )
        pages.append(page)
        cache.invalidate(generations=["catalog"])
    evict(KEY_PREFIX + "gen:catalog")
    # Read straight after the eviction, and after the next write: never an older page.
    for _ in range(2):
        page = f"products:{cache.generation('catalog')}:page"
        assert page not in pages
        assert cache.read_through(page, lambda: b"now") == Cached(b"now", CacheStatus.MISS)
        pages.append(page)
        cache.invalidate(generations=["catalog"])


# Paths the cache front must treat exactly as the route does (tests/unit/test_fast_path.py
# checks the pattern builder itself).
FAST_PATH_SAMPLES = [
    "/api/v1/products/1",
    "/api/v1/products/42",
    "/api/v1/products/9223372036854775807",  # 2^63 - 1: the largest BIGINT
    "/api/v1/products/9223372036854775808",  # 2^63: no such id
    "/api/v1/products/0",
    "/api/v1/products/007",
    "/api/v1/products/-1",
    "/api/v1/products/1/",
    "/api/v1/products/1x",
    "/api/v1/products/",
    "/api/v1/products",
    "/api/v1/categories",
    "/API/v1/products/1",
    "/api/v1/products/\uff11",  # a full-width 1: str.isdigit says yes, the route says no
]


def test_the_app_s_fast_path_accepts_exactly_what_the_route_routes(app: Flask) -> None:
    """Against the real app's URL map: match <=> Flask routes a GET there to the detail."""
    (path,) = FAST_PATHS
    pattern = path_pattern(app.url_map, path.endpoint)
    adapter = app.url_map.bind("localhost")
    for sample in FAST_PATH_SAMPLES:
        try:
            endpoint, _ = adapter.match(sample, method="GET")
        except HTTPException:
            endpoint = None
        assert (pattern.match(sample) is not None) == (endpoint == path.endpoint), sample
