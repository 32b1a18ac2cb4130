"""Rate limits hold when their Redis fails or the cache Redis churns; the 429 says the limit.

Real redis-server processes (tests/servers.py), stopped and SIGSTOPped here. The limited
endpoint is POST /auth/register with an empty body: the limit is checked before the body
is, so every request counts, and the 422 needs no password hashing.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from flipkart_api.app import create_app
from flipkart_api.settings import load_settings

from . import servers
from .conftest import TEST_SECRET_KEY, sqlite_settings

# Starts server processes of its own: the slow tier (README, Development).
pytestmark = pytest.mark.slow

LIMIT = 3
REGISTER = "/api/v1/auth/register"
# A dead or frozen counter store costs one request a timeout or two (the failed hit and
# Flask-Limiter's PING), never redis-py's retries with seconds of backoff.
SLOWEST_SECONDS = 0.5


@pytest.fixture
def two_redis() -> Iterator[tuple[servers.RedisServer, servers.RedisServer]]:
    """A cache Redis (allkeys-lru, 2 MB, as in production) and a noeviction limiter Redis."""
    started: list[servers.RedisServer] = []
    try:
        for _ in range(2):
            started.append(servers.start_redis())
    except servers.ServerUnavailable as exc:
        for server in started:
            server.stop()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but a real server is unavailable: {exc}")
        pytest.skip(f"REAL SERVER UNAVAILABLE: {exc}")
    cache, counters = started
    with redis.Redis.from_url(cache.url()) as client:
        client.config_set("maxmemory", "2mb")
        client.config_set("maxmemory-policy", "allkeys-lru")
    with redis.Redis.from_url(counters.url()) as client:
        client.config_set("maxmemory-policy", "noeviction")
    try:
        yield cache, counters
    finally:
        for server in started:
            os.kill(server.pid, signal.SIGCONT)  # harmless if it was never stopped
            server.stop()


def _client(tmp_path: Path, template: Path, **settings: object) -> FlaskClient:
    # A Redis URL means the dev-only key may not sign (settings.py): give the app a real one.
    settings.setdefault("secret_key", TEST_SECRET_KEY)
    app = create_app(sqlite_settings(tmp_path, template, ratelimit_enabled=True, **settings))
    return app.test_client()


def _register(client: FlaskClient) -> tuple[int, float]:
    """One over-the-wire-cheap register attempt: its status and how long it took."""
    started = time.monotonic()
    status = client.post(REGISTER, json={}).status_code
    return status, time.monotonic() - started


def _statuses(client: FlaskClient, n: int) -> list[int]:
    return [_register(client)[0] for _ in range(n)]


def _counter_keys(server: servers.RedisServer) -> list[bytes]:
    with redis.Redis.from_url(server.url()) as client:
        return list(client.scan_iter("*fk:rl*"))


@pytest.mark.parametrize("layout", ["one redis", "two redis"])
@pytest.mark.parametrize("fault", ["stopped", "frozen"])
def test_over_limit_is_429_while_the_counter_redis_is_out_and_shared_again_after(
    tmp_path: Path,
    sqlite_template: Path,
    two_redis: tuple[servers.RedisServer, servers.RedisServer],
    layout: str,
    fault: str,
) -> None:
    """Every Redis the app uses stopped (or SIGSTOPped): limits count per process, fast.

    Before the fix RATELIMIT_SWALLOW_ERRORS turned limits off (every request a 422) and
    redis-py's retries made each request wait seconds.
    """
    cache, counters = two_redis
    store = counters if layout == "two redis" else cache
    extra = {"ratelimit_redis_url": counters.url()} if layout == "two redis" else {}
    client = _client(
        tmp_path,
        sqlite_template,
        redis_url=cache.url(),
        ratelimit_register=f"{LIMIT}/minute",
        **extra,
    )
    assert _statuses(client, LIMIT + 1) == [422] * LIMIT + [429]
    assert _counter_keys(store), "the counters are not in the Redis they were pointed at"
    out = [cache, counters] if layout == "two redis" else [cache]
    for server in out:
        if fault == "stopped":
            server.halt()
        else:
            os.kill(server.pid, signal.SIGSTOP)
    try:
        outage = [_register(client) for _ in range(LIMIT + 3)]
    finally:
        for server in out:
            if fault == "stopped":
                server.restart()
            else:
                os.kill(server.pid, signal.SIGCONT)
    statuses = [status for status, _ in outage]
    # A fresh in-memory window: the limit again, then 429s; never a 500, never unlimited.
    assert statuses == [422] * LIMIT + [429] * 3, statuses
    assert max(seconds for _, seconds in outage) < SLOWEST_SECONDS, outage

    # Back: Flask-Limiter PINGs the store again (1, 2, 4 ... s apart) and counts there.
    with redis.Redis.from_url(store.url()) as direct:
        for key in direct.scan_iter("*fk:rl*"):
            direct.delete(key)
    back = time.monotonic()
    while not _counter_keys(store):
        assert time.monotonic() - back < 20, "limits never went back to the Redis counters"
        _register(client)
        time.sleep(0.2)


def test_counters_survive_the_cache_redis_filled_past_maxmemory(
    tmp_path: Path,
    sqlite_template: Path,
    two_redis: tuple[servers.RedisServer, servers.RedisServer],
) -> None:
    """RATELIMIT_REDIS_URL on a noeviction Redis: evicting the cache cannot reset a limit.

    Before the setting existed the counters lived in the cache Redis, and filling it
    evicted them: the client over its limit got 422s again.
    """
    cache, counters = two_redis
    client = _client(
        tmp_path,
        sqlite_template,
        redis_url=cache.url(),
        ratelimit_redis_url=counters.url(),
        ratelimit_register=f"{LIMIT}/minute",
    )
    assert _statuses(client, LIMIT + 1) == [422] * LIMIT + [429]
    with redis.Redis.from_url(cache.url()) as direct:
        blob = b"x" * 1024
        for batch in range(8):  # 8 MB into a 2 MB allkeys-lru cache
            pipe = direct.pipeline(transaction=False)
            for n in range(1024):
                pipe.set(f"fk:fill:{batch}:{n}", blob)
            pipe.execute()
        assert int(direct.info("stats")["evicted_keys"]) > 0, "the cache never evicted"
    assert _statuses(client, 2) == [429, 429]


def test_counters_use_the_cache_redis_when_no_limiter_redis_is_set(
    tmp_path: Path,
    sqlite_template: Path,
    two_redis: tuple[servers.RedisServer, servers.RedisServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Single-Redis setups keep working; production warns that eviction can drop counters."""
    cache, _ = two_redis
    client = _client(tmp_path, sqlite_template, redis_url=cache.url())
    client.post(REGISTER, json={})
    assert _counter_keys(cache)
    instance = tmp_path / "prod"
    instance.mkdir()
    prod = load_settings(
        app_env="production",
        database_url=f"sqlite:///{instance / 'x.sqlite3'}",
        redis_url=cache.url(),
        secret_key="k" * 16 + "-production-secret-of-enough-length",
        instance_dir=instance,
    )
    with caplog.at_level(logging.WARNING, logger="flipkart_api.limits"):
        create_app(prod)
    assert any("RATELIMIT_REDIS_URL is not set" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="flipkart_api.limits"):
        create_app(prod.model_copy(update={"ratelimit_redis_url": cache.url(1)}))
    assert not caplog.records


def test_limiter_redis_url_file_is_read(tmp_path: Path) -> None:
    """RATELIMIT_REDIS_URL_FILE fills RATELIMIT_REDIS_URL, like the other secrets' files."""
    path = tmp_path / "ratelimit_redis_url"
    path.write_text("redis://:pw@limits:6379/0\n")
    settings = load_settings(
        app_env="test",
        ratelimit_redis_url_file=path,
        redis_url="redis://c",
        secret_key=TEST_SECRET_KEY,
    )
    assert settings.ratelimit_storage_uri == "redis://:pw@limits:6379/0"


def test_retry_after_only_on_the_429_which_says_the_limit(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """A limited endpoint's 201/422 carry no Retry-After (they did); the 429 names its limit."""
    client = _client(tmp_path, sqlite_template, ratelimit_register="2/minute")
    body = {"email": "asha@example.in", "password": "password-123", "name": "Asha"}
    created = client.post(REGISTER, json=body)
    invalid = client.post(REGISTER, json={})
    limited = client.post(REGISTER, json=body)
    assert [created.status_code, invalid.status_code, limited.status_code] == [201, 422, 429]
    for response in (created, invalid):
        assert "Retry-After" not in response.headers
        assert not [k for k, _ in response.headers.items() if k.lower().startswith("x-ratelimit")]
    assert limited.mimetype == "application/problem+json"
    seconds = int(limited.headers["Retry-After"])
    assert 1 <= seconds <= 60
    detail = limited.get_json()["detail"]
    assert re.fullmatch(
        r"Too many requests: the limit is 2 per 1 minute for this endpoint; "
        r"retry after (\d+) s\.",
        detail,
    ), detail
    assert detail.endswith(f"retry after {seconds} s.")
    assert client.get("/api/v1/products").headers.get("Retry-After") is None
