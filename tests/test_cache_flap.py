"""A flapping Redis: a list read that found no generation never stores or serves a page.

Redis is made unresponsive for real (CLIENT PAUSE: commands hang until the client times
out), and the data survives, as in a short network partition or a failover stall.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import redis

from flipkart_api.cache import BREAKER_SECONDS, KEY_PREFIX, Cache, Cached, CacheStatus
from flipkart_api.cache_stores import RedisBackend

from . import servers

pytestmark = pytest.mark.timeout(60)
TIMEOUT = 0.1  # the cache client's socket timeout
PAUSE_MS = 300  # the flap: longer than TIMEOUT, shorter than the breaker


@pytest.fixture
def admin(redis_server: servers.RedisServer) -> Iterator[redis.Redis]:
    """A plain client on a database of our own (db 9), emptied before and after."""
    with redis.Redis.from_url(redis_server.url(9)) as client:
        client.flushdb()
        yield client
        client.flushdb()


def _list_read(cache: Cache, loader: Callable[[], bytes], between: Callable[[], None]) -> bytes:
    """What catalog/service.py does for a list page, with a pause between its two steps.

    `between` stands for the request's thread being descheduled (GIL, a busy core) after
    it asked for the generation: meanwhile Redis comes back and the breaker closes.
    """
    generation = cache.generation("catalog")
    between()
    key = None if generation is None else f"products:{generation}:page"
    return cache.read_through(key, loader).body


def test_a_read_during_a_flap_stores_nothing_and_serves_nothing_stale(
    admin: redis.Redis, redis_server: servers.RedisServer
) -> None:
    cache = Cache(RedisBackend(redis_server.url(9), TIMEOUT), 300, 0)
    # Every client hangs for PAUSE_MS (this one too: it only sends the PAUSE, then waits).
    pause = lambda: admin.execute_command("CLIENT", "PAUSE", PAUSE_MS, "ALL")  # noqa: E731

    def recover() -> None:
        time.sleep(max(PAUSE_MS / 1000, BREAKER_SECONDS) + 0.05)  # Redis and breaker are back

    assert _list_read(cache, lambda: b"v0", between=lambda: None) == b"v0"
    pause()
    assert _list_read(cache, lambda: b"v0", between=recover) == b"v0"  # read during the flap
    keys = [k.decode() for k in admin.keys("*")]
    assert all(k == KEY_PREFIX + "gen:catalog" or ":page" in k for k in keys), keys
    assert len([k for k in keys if k.endswith(":page")]) == 1, keys  # only the real one

    cache.invalidate(generations=["catalog"])  # a write: the catalog is now v1
    pause()
    assert _list_read(cache, lambda: b"v1", between=recover) == b"v1"  # never the old page
    assert _list_read(cache, lambda: b"v1", between=lambda: None) == b"v1"  # after recovery
    assert cache.read_through(None, lambda: b"v1") == Cached(b"v1", CacheStatus.BYPASS)
