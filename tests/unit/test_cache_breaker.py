"""The circuit breaker and the replay of invalidations that could not be delivered.

The clock is the cache module's `time`, replaced by one the test moves: the breaker's
BREAKER_SECONDS pass in no time, and nothing here sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from flipkart_api import cache as cache_module
from flipkart_api.cache import BREAKER_SECONDS, KEY_PREFIX, Cache, Cached, CacheStatus
from flipkart_api.cache_stores import CacheError, MemoryBackend


class Clock:
    """time.monotonic that moves only when told; the rest of `time` as it is."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)  # time_ns, sleep


class FlakyBackend(MemoryBackend):
    """The in-process store, with a switch that makes every call fail like a lost Redis.

    `calls` records each call that reached the store, failed or not, in order.
    """

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls: list[str] = []

    def _maybe_fail(self, name: str) -> None:
        self.calls.append(name)
        if self.down:
            raise CacheError("ConnectionError")

    def get(self, key: str) -> bytes | None:
        self._maybe_fail("get")
        return super().get(key)

    def acquire_lease(self, key: str, token: str) -> bool:
        self._maybe_fail("acquire_lease")
        return super().acquire_lease(key, token)

    def set_if_leased(self, key: str, value: bytes, ttl_ms: int, token: str) -> bool:
        self._maybe_fail("set_if_leased")
        return super().set_if_leased(key, value, ttl_ms, token)

    def delete(self, keys: list[str]) -> None:
        self._maybe_fail("delete")
        super().delete(keys)

    def current_generation(self, key: str, start: int) -> bytes:
        self._maybe_fail("current_generation")
        return super().current_generation(key, start)

    def bump_generation(self, key: str, start: int) -> int:
        self._maybe_fail("bump_generation")
        return super().bump_generation(key, start)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(cache_module, "time", fake)
    return fake


@pytest.fixture
def store() -> FlakyBackend:
    return FlakyBackend()


@pytest.fixture
def cache(store: FlakyBackend, clock: Clock) -> Cache:
    return Cache(store, ttl_seconds=60, jitter=0)


def loads(value: bytes) -> tuple[Callable[[], bytes], list[int]]:
    """A loader returning `value` and a list that counts its calls."""
    counted: list[int] = []

    def loader() -> bytes:
        counted.append(1)
        return value

    return loader, counted


def test_a_failing_backend_trips_the_breaker_for_breaker_seconds(
    cache: Cache, store: FlakyBackend, clock: Clock
) -> None:
    store.down = True
    assert cache.read_through("k", lambda: b"db") == Cached(b"db", CacheStatus.BYPASS)
    assert store.calls == ["get"]  # the one call that found Redis gone
    store.down = False  # Redis is back, but the breaker is still open:
    clock.advance(BREAKER_SECONDS * 0.9)
    assert cache.read_through("k", lambda: b"db") == Cached(b"db", CacheStatus.BYPASS)
    assert cache.peek("k") is None
    assert store.calls == ["get"]  # nobody paid the timeout again
    clock.advance(BREAKER_SECONDS * 0.2)
    assert cache.read_through("k", lambda: b"db") == Cached(b"db", CacheStatus.MISS)
    assert cache.read_through("k", lambda: b"other") == Cached(b"db", CacheStatus.HIT)


def test_invalidations_during_an_outage_are_replayed_before_the_next_read(
    cache: Cache, store: FlakyBackend, clock: Clock
) -> None:
    gen_before = cache.generation("catalog")
    assert cache.read_through("product:1", lambda: b"old").source is CacheStatus.MISS
    store.down = True
    cache.invalidate(keys=["product:1"], generations=["catalog"])  # the write's invalidation
    store.down = False
    clock.advance(BREAKER_SECONDS + 0.01)
    store.calls.clear()
    loader, counted = loads(b"new")
    assert cache.read_through("product:1", loader) == Cached(b"new", CacheStatus.MISS)
    assert counted == [1]
    # Replay first (the key, then the namespace), then the read that found nothing.
    assert store.calls[:3] == ["delete", "bump_generation", "get"]
    assert int(cache.generation("catalog")) > int(gen_before)
    store.calls.clear()
    cache.read_through("product:2", lambda: b"x")
    assert "delete" not in store.calls  # replayed once, then forgotten


def test_a_failed_replay_keeps_the_invalidations_pending(
    cache: Cache, store: FlakyBackend, clock: Clock
) -> None:
    assert cache.read_through("product:1", lambda: b"old").source is CacheStatus.MISS
    store.down = True
    cache.invalidate(keys=["product:1"])
    clock.advance(BREAKER_SECONDS + 0.01)  # the breaker closes while Redis is still away
    store.calls.clear()
    assert cache.read_through("product:1", lambda: b"new") == Cached(b"new", CacheStatus.BYPASS)
    assert store.calls == ["delete"]  # the replay was tried, failed, and tripped again
    store.down = False
    clock.advance(BREAKER_SECONDS * 0.5)
    assert cache.read_through("product:1", lambda: b"new").source is CacheStatus.BYPASS
    clock.advance(BREAKER_SECONDS)
    assert cache.read_through("product:1", lambda: b"new") == Cached(b"new", CacheStatus.MISS)
    assert cache.peek("product:1") == b"new"


def test_without_the_replay_the_old_value_would_be_served(store: FlakyBackend) -> None:
    """What the replay prevents: the value from before the outage is still in the store."""
    cache = Cache(store, ttl_seconds=60, jitter=0)
    cache.read_through("product:1", lambda: b"old")
    store.down = True
    cache.invalidate(keys=["product:1"])
    store.down = False
    assert MemoryBackend.get(store, KEY_PREFIX + "product:1") == b"old"
