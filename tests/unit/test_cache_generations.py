"""An evicted generation counter restarts at the clock: it never makes an old page current.

Real LRU eviction on a MemoryBackend of four entries: the counter is pushed out while a page
stored under an older generation survives, exactly what allkeys-lru can do in Redis.
"""

from __future__ import annotations

import time

import pytest

from flipkart_api.cache import KEY_PREFIX, Cache, Cached, CacheStatus
from flipkart_api.cache_stores import MemoryBackend

GEN_KEY = KEY_PREFIX + "gen:catalog"


class RestartsFromZero(MemoryBackend):
    """The rule broken: a missing counter starts again from 0 (a plain INCR from nothing)."""

    def current_generation(self, key: str, start: int) -> bytes:
        return super().current_generation(key, 0)

    def bump_generation(self, key: str, start: int) -> int:
        return super().bump_generation(key, 0)


def page_after_the_counter_is_evicted(backend: MemoryBackend, write_after: bool = True) -> Cached:
    """Cache a page under generation g, write (g+1), evict the counter, write, read.

    The last write bumps a counter that is missing: from the clock it lands far above g;
    from 0 it lands on 1, which is g again when g was the first generation after a start.
    """
    cache = Cache(backend, ttl_seconds=60, jitter=0)
    cache.invalidate(generations=["catalog"])  # one write happened before the page was cached
    old_gen = cache.generation("catalog")
    assert cache.read_through(f"page:{old_gen}", lambda: b"stale page").source is CacheStatus.MISS
    cache.invalidate(generations=["catalog"])  # a write: the page above is now stale
    assert cache.generation("catalog") != old_gen
    # Touch the old page (most recently used), then add entries until the counter (least
    # recently used) is evicted. Each read_through adds a lease and a value.
    assert cache.peek(f"page:{old_gen}") == b"stale page"
    for i in range(2):
        cache.read_through(f"other:{i}", lambda: b"filler")
    assert GEN_KEY not in backend._data, "the counter should have been evicted"
    assert cache.peek(f"page:{old_gen}") == b"stale page", "the old page should survive"
    if write_after:
        cache.invalidate(generations=["catalog"])  # bump_generation on a missing counter
    return cache.read_through(f"page:{cache.generation('catalog')}", lambda: b"fresh page")


@pytest.mark.parametrize("write_after", [True, False], ids=["bump", "read"])
def test_an_evicted_counter_restarts_above_every_earlier_generation(write_after: bool) -> None:
    backend = MemoryBackend(max_entries=4)
    assert page_after_the_counter_is_evicted(backend, write_after) == Cached(
        b"fresh page",
        CacheStatus.MISS,
    )


def test_the_eviction_test_fails_when_the_counter_restarts_from_zero() -> None:
    """Meta-test: with a counter that restarts from 0, the same steps revive the stale page."""
    assert page_after_the_counter_is_evicted(RestartsFromZero(max_entries=4)) == Cached(
        b"stale page",
        CacheStatus.HIT,
    )


def test_a_missing_counter_starts_at_the_clock() -> None:
    cache = Cache(MemoryBackend(), ttl_seconds=60, jitter=0)
    before = time.time_ns()
    first = int(cache.generation("catalog"))
    assert before <= first <= time.time_ns()
    cache.invalidate(generations=["catalog"])
    assert int(cache.generation("catalog")) == first + 1
