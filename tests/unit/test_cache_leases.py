"""The cache's central promise, in process: a load that raced a write never stores its rows.

Every interleaving is forced with threading.Event, never with sleeps: the loader stops in
the middle of its load until the test has made the write happen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from flipkart_api import cache as cache_module
from flipkart_api.cache import KEY_PREFIX, Cache, Cached, CacheStatus
from flipkart_api.cache_stores import MemoryBackend

WAIT = 5.0  # an Event that is not set within this long means the code under test hung


def new_cache(backend: MemoryBackend | None = None) -> Cache:
    """A cache over the in-process store; no jitter, so nothing here is random."""
    return Cache(backend or MemoryBackend(), ttl_seconds=60, jitter=0)


class LeaseIgnoringBackend(MemoryBackend):
    """The bug the lease exists to prevent: storing whether or not the lease survived."""

    def set_if_leased(self, key: str, value: bytes, ttl_ms: int, token: str) -> bool:
        """Store unconditionally (what a plain SET would do)."""
        with self._lock:
            self._put(key, value, ttl_ms)
            return True


def read_in_thread(
    cache: Cache, key: str, loader: Callable[[], bytes]
) -> tuple[threading.Thread, list[Cached]]:
    """Start read_through in a thread; its (value, status) lands in the returned list."""
    result: list[Cached] = []
    thread = threading.Thread(target=lambda: result.append(cache.read_through(key, loader)))
    thread.start()
    return thread, result


def read_after_a_write_during_the_load(cache: Cache) -> Cached:
    """A loader reads the old rows, a write invalidates the key, the loader tries to store.

    Returns what the next read answers: the new rows (a MISS that loads them) when the
    stale store was refused, the old rows (a HIT) when it was not.
    """
    rows = {"price": b"old"}
    read_old_rows, write_committed = threading.Event(), threading.Event()

    def slow_loader() -> bytes:
        value = rows["price"]  # the SELECT ran before the write committed
        read_old_rows.set()
        assert write_committed.wait(WAIT)
        return value

    thread, result = read_in_thread(cache, "product:1", slow_loader)
    assert read_old_rows.wait(WAIT)
    rows["price"] = b"new"  # the write commits ...
    cache.invalidate(keys=["product:1"])  # ... and invalidates, while the load is running
    write_committed.set()
    thread.join(WAIT)
    assert result == [Cached(b"old", CacheStatus.MISS)]  # that reader itself saw the old rows
    return cache.read_through("product:1", lambda: rows["price"])


def test_a_value_loaded_before_an_invalidation_is_not_stored() -> None:
    assert read_after_a_write_during_the_load(new_cache()) == Cached(b"new", CacheStatus.MISS)


def test_the_race_test_fails_when_the_lease_is_not_checked() -> None:
    """Meta-test: without the lease check the same steps serve the stale value as a HIT."""
    assert read_after_a_write_during_the_load(new_cache(LeaseIgnoringBackend())) == Cached(
        b"old",
        CacheStatus.HIT,
    )


def test_the_next_read_after_the_refused_store_loads_and_then_hits() -> None:
    cache = new_cache()
    assert read_after_a_write_during_the_load(cache) == Cached(b"new", CacheStatus.MISS)
    assert cache.read_through("product:1", _never) == Cached(b"new", CacheStatus.HIT)


def _never() -> bytes:
    raise AssertionError("the loader ran, but the value should have come from the cache")


def test_followers_get_the_leaders_value_and_do_not_load() -> None:
    """Single flight: a follower that finds the lease taken waits for the leader's value."""
    follower_waiting = threading.Event()

    class WatchedBackend(MemoryBackend):
        def acquire_lease(self, key: str, token: str) -> bool:
            won = super().acquire_lease(key, token)
            if not won:
                follower_waiting.set()
            return won

    cache = new_cache(WatchedBackend())
    leader_loading, leader_may_finish = threading.Event(), threading.Event()

    def leader_loader() -> bytes:
        leader_loading.set()
        assert leader_may_finish.wait(WAIT)
        return b"from the leader"

    leader, leader_result = read_in_thread(cache, "k", leader_loader)
    assert leader_loading.wait(WAIT)
    follower, follower_result = read_in_thread(cache, "k", _never)
    assert follower_waiting.wait(WAIT)  # it lost the lease race and is polling now
    leader_may_finish.set()
    leader.join(WAIT)
    follower.join(WAIT)
    assert leader_result == [Cached(b"from the leader", CacheStatus.MISS)]
    assert follower_result == [Cached(b"from the leader", CacheStatus.HIT)]


def test_followers_of_a_stuck_leader_load_themselves_after_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cache_module, "WAIT_SECONDS", 0.05)
    cache = new_cache()
    leader_loading, release_leader = threading.Event(), threading.Event()

    def stuck_loader() -> bytes:
        leader_loading.set()
        assert release_leader.wait(WAIT)
        return b"late"

    leader, _ = read_in_thread(cache, "k", stuck_loader)
    try:
        assert leader_loading.wait(WAIT)
        # In this thread: it must come back by itself (the leader is still stuck).
        assert cache.read_through("k", lambda: b"own") == Cached(b"own", CacheStatus.MISS)
    finally:
        release_leader.set()
        leader.join(WAIT)
    # The follower did not store its load (only the lease holder stores): the leader did.
    assert cache.read_through("k", _never) == Cached(b"late", CacheStatus.HIT)


def test_a_failed_load_releases_the_lease_at_once() -> None:
    """A loader that raises must not leave followers waiting for WAIT_SECONDS."""
    cache = new_cache()

    def broken() -> bytes:
        raise RuntimeError("database said no")

    with pytest.raises(RuntimeError):
        cache.read_through("k", broken)
    assert cache.backend.acquire_lease(KEY_PREFIX + "k", "someone-else")
