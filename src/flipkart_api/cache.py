"""Cache-aside over Redis (or an in-process store): leases, invalidation, and bypass.

Reads go through `Cache.read_through(key, loader)`:
- a hit costs one round trip;
- on a miss one caller takes a short *lease* and loads from the database while the
  others wait for its value (single flight). Invalidation deletes the value *and* the
  lease, so a loader that read old rows before a write committed cannot store them:
  its conditional set finds the lease gone and drops the value;
- when the backend fails or is slow, callers load from the database (BYPASS) and a
  short circuit breaker keeps later requests from paying the timeout again.
Invalidations that cannot reach Redis are remembered and replayed before the cache is
used again, so a write made during an outage is never followed by a stale read here.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flask import Flask, current_app

from . import metrics
from .cache_stores import Backend, CacheError, MemoryBackend, RedisBackend
from .metric_buffer import BUFFER
from .settings import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "fk:v1:"
WAIT_SECONDS = 2.0  # how long followers wait for the leader before loading themselves
POLL_SECONDS = 0.01
BREAKER_SECONDS = 1.0


class CacheStatus(enum.StrEnum):
    """The value of the X-Cache response header."""

    HIT = "HIT"
    MISS = "MISS"
    BYPASS = "BYPASS"


@dataclass(frozen=True, slots=True)
class Cached:
    """A read's JSON bytes, ready to send as they are, and where they came from (X-Cache).

    Everything read through this cache is public catalog data, so shared caches may keep it;
    `keys` are the surrogate keys whose purge (edge.py) drops it there.
    """

    body: bytes
    source: CacheStatus
    keys: tuple[str, ...] = ()


class Cache:
    """Cache-aside with leases, generations for list namespaces, and a circuit breaker."""

    def __init__(self, backend: Backend, ttl_seconds: int, jitter: float) -> None:
        self.backend = backend
        self._ttl_ms = ttl_seconds * 1000
        self._jitter = jitter
        self._down_until = 0.0
        self._open_shown = False  # what flipkart_cache_breaker_open says (metrics only)
        self._pending: set[str] = set()  # keys whose invalidation could not be delivered
        self._pending_generations: set[str] = set()
        self._lock = threading.Lock()

    # -- availability -------------------------------------------------------
    def _trip(self, exc: Exception) -> None:
        if self._down_until < time.monotonic():
            log.warning("cache unavailable (%s); bypassing for %.1fs", exc, BREAKER_SECONDS)
        self._down_until = time.monotonic() + BREAKER_SECONDS
        self._open_shown = True
        metrics.BREAKER_OPEN.set(1)

    def _usable(self) -> bool:
        """False while the breaker is open or undelivered invalidations remain."""
        if time.monotonic() < self._down_until:
            return False
        if self._open_shown:  # closed again: shown by the first request after it
            self._open_shown = False
            metrics.BREAKER_OPEN.set(0)
        with self._lock:
            if not (self._pending or self._pending_generations):
                return True
            keys, gens = list(self._pending), list(self._pending_generations)
            try:
                self._deliver(keys, gens)
            except CacheError as exc:
                self._trip(exc)
                return False
            self._pending.clear()
            self._pending_generations.clear()
            metrics.PENDING_INVALIDATIONS.set(0)
            log.info("cache back; replayed %d invalidations", len(keys) + len(gens))
            return True

    def _ttl(self) -> int:
        return self._ttl_ms + int(self._ttl_ms * self._jitter * random.random())  # noqa: S311

    # -- reads --------------------------------------------------------------
    def read_through(self, key: str | None, loader: Callable[[], bytes]) -> Cached:
        """A cached value (HIT), or the loader's (MISS), stored for others; counted by kind.

        A None key (no generation: see `generation`) reads without the cache: BYPASS.
        """
        cached = self._read_through(key, loader)
        BUFFER.cache_read(metrics.cache_kind(key), cached.source.value.lower())
        return cached

    def _read_through(self, key: str | None, loader: Callable[[], bytes]) -> Cached:
        if key is None or not self._usable():
            return Cached(loader(), CacheStatus.BYPASS)
        full = KEY_PREFIX + key
        try:
            value = self.backend.get(full)
            if value is not None:
                return Cached(value, CacheStatus.HIT)
            token = uuid.uuid4().hex
            deadline = time.monotonic() + WAIT_SECONDS
            while not self.backend.acquire_lease(full, token):
                time.sleep(POLL_SECONDS)
                value = self.backend.get(full)
                if value is not None:
                    return Cached(value, CacheStatus.HIT)
                if time.monotonic() > deadline:
                    return Cached(loader(), CacheStatus.MISS)  # leader is stuck; do not pile up
            # A leader may have stored the value between our miss and our lease.
            value = self.backend.get(full)
            if value is not None:
                self.backend.release_lease(full, token)
                return Cached(value, CacheStatus.HIT)
        except CacheError as exc:
            self._trip(exc)
            return Cached(loader(), CacheStatus.BYPASS)
        try:
            value = loader()
        except BaseException:
            self._quietly(lambda: self.backend.release_lease(full, token))
            raise
        self._quietly(lambda: self.backend.set_if_leased(full, value, self._ttl(), token))
        return Cached(value, CacheStatus.MISS)

    def peek(self, key: str) -> bytes | None:
        """The cached value, or None on a miss or while the cache is unusable (never raises).

        Only a hit is counted: the caller reads through on a miss, which counts that.
        """
        if not self._usable():
            return None
        try:
            value = self.backend.get(KEY_PREFIX + key)
        except CacheError as exc:
            self._trip(exc)
            return None
        if value is not None:
            BUFFER.cache_read(metrics.cache_kind(key), "hit")
        return value

    def generation(self, name: str) -> str | None:
        """The current generation of a namespace, part of every key in it; None if unusable.

        None, never a stand-in: a page stored under a fixed fallback generation would be
        missed by every later invalidation, and served again by the next read that fell
        back. A caller given None reads that one request without the cache (BYPASS).

        The counter lives in the same evicting store as the values (Redis `allkeys-lru`, the
        bounded in-process LRU). If it is evicted while pages keyed by older generations
        survive, restarting it from 0 (or INCR from nothing to 1) would make those stale pages
        reachable again. A missing counter therefore starts at the current time in
        nanoseconds: larger than any earlier start plus the writes made since, so no key
        written under an earlier generation can be read again.
        """
        if not self._usable():
            return None
        key = KEY_PREFIX + "gen:" + name
        try:
            raw = self.backend.get(key)
            if raw is None:
                raw = self.backend.current_generation(key, time.time_ns())
        except CacheError as exc:
            self._trip(exc)
            return None
        return raw.decode()

    # -- writes -------------------------------------------------------------
    def invalidate(self, keys: Sequence[str] = (), generations: Sequence[str] = ()) -> None:
        """Delete keys and bump namespace generations; remember them if Redis is away."""
        try:
            self._deliver(keys, generations)
        except CacheError as exc:
            self._trip(exc)
            with self._lock:
                self._pending.update(keys)
                self._pending_generations.update(generations)
                metrics.PENDING_INVALIDATIONS.set(
                    len(self._pending) + len(self._pending_generations)
                )

    def _deliver(self, keys: Sequence[str], generations: Sequence[str]) -> None:
        """Send invalidations to the backend (raises CacheError)."""
        if keys:
            self.backend.delete([KEY_PREFIX + k for k in keys])
        for name in generations:
            self.backend.bump_generation(KEY_PREFIX + "gen:" + name, time.time_ns())

    def ping(self) -> bool:
        """True when the backend answers now (used by /health; ignores the breaker)."""
        try:
            self.backend.ping()
        except CacheError:
            return False
        return True

    def _quietly(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except CacheError as exc:
            self._trip(exc)


def build_cache(settings: Settings) -> Cache:
    """Redis when REDIS_URL is set, else the in-process store."""
    backend: Backend
    if settings.redis_url:
        backend = RedisBackend(settings.redis_url, settings.redis_timeout_seconds)
    else:
        backend = MemoryBackend()
    return Cache(backend, settings.cache_ttl_seconds, settings.cache_ttl_jitter)


def init_app(app: Flask, settings: Settings) -> None:
    """Attach the cache to the app."""
    app.extensions["cache"] = build_cache(settings)


def cache() -> Cache:
    """The current app's cache."""
    c: Cache = current_app.extensions["cache"]
    return c
