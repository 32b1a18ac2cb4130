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
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar, cast

import redis
from flask import Flask, current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

from .settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

KEY_PREFIX = "fk:v1:"
LEASE_MS = 5000  # longer than any sane loader; expires by itself if the holder dies
WAIT_SECONDS = 2.0  # how long followers wait for the leader before loading themselves
POLL_SECONDS = 0.01
BREAKER_SECONDS = 1.0


class CacheStatus(enum.StrEnum):
    """The value of the X-Cache response header."""

    HIT = "HIT"
    MISS = "MISS"
    BYPASS = "BYPASS"


class CacheError(Exception):
    """The cache backend did not answer correctly in time."""


class Backend(Protocol):
    """What a cache store must do; both backends give the same guarantees."""

    def get(self, key: str) -> bytes | None: ...
    def acquire_lease(self, key: str, token: str) -> bool: ...
    def set_if_leased(self, key: str, value: bytes, ttl_ms: int, token: str) -> bool: ...
    def release_lease(self, key: str, token: str) -> None: ...
    def delete(self, keys: list[str]) -> None: ...
    def current_generation(self, key: str, start: int) -> bytes: ...
    def bump_generation(self, key: str, start: int) -> int: ...
    def ping(self) -> None: ...


def _lease_key(key: str) -> str:
    return key + ":lease"


class MemoryBackend:
    """A bounded in-process LRU store: the development stand-in for Redis."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._data: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] < time.monotonic():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return item[0]

    def _put(self, key: str, value: bytes, ttl_ms: int) -> None:
        self._data[key] = (value, time.monotonic() + ttl_ms / 1000)
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    def get(self, key: str) -> bytes | None:
        """The live value or None."""
        with self._lock:
            return self._live(key)

    def acquire_lease(self, key: str, token: str) -> bool:
        """Take the lease if nobody holds it."""
        with self._lock:
            if self._live(_lease_key(key)) is not None:
                return False
            self._put(_lease_key(key), token.encode(), LEASE_MS)
            return True

    def set_if_leased(self, key: str, value: bytes, ttl_ms: int, token: str) -> bool:
        """Store the value only if our lease survived (no invalidation meanwhile)."""
        with self._lock:
            if self._live(_lease_key(key)) != token.encode():
                return False
            self._put(key, value, ttl_ms)
            del self._data[_lease_key(key)]
            return True

    def release_lease(self, key: str, token: str) -> None:
        """Drop our lease so followers stop waiting."""
        with self._lock:
            if self._live(_lease_key(key)) == token.encode():
                del self._data[_lease_key(key)]

    def delete(self, keys: list[str]) -> None:
        """Delete values and their leases."""
        with self._lock:
            for key in keys:
                self._data.pop(key, None)
                self._data.pop(_lease_key(key), None)

    def current_generation(self, key: str, start: int) -> bytes:
        """The counter's value, set to `start` first when it is missing (or was evicted)."""
        with self._lock:
            value = self._live(key)
            if value is None:
                value = str(start).encode()
                self._put_forever(key, value)
            return value

    def bump_generation(self, key: str, start: int) -> int:
        """Atomically increment the counter, from `start` when it is missing."""
        with self._lock:
            current = int(self._live(key) or str(start).encode()) + 1
            self._put_forever(key, str(current).encode())
            return current

    def _put_forever(self, key: str, value: bytes) -> None:
        self._data[key] = (value, float("inf"))
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    def ping(self) -> None:
        """Always reachable."""


_SET_IF_LEASED = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""
# A generation counter that is missing (never set, evicted by allkeys-lru, flushed) starts
# again from ARGV[1], never from 0: see Cache.generation.
_CURRENT_GENERATION = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""
_BUMP_GENERATION = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('INCR', KEYS[1])
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisBackend:
    """Redis with short timeouts and no client-side retries: slowness becomes CacheError."""

    def __init__(self, url: str, timeout: float) -> None:
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._set_if_leased = self._client.register_script(_SET_IF_LEASED)
        self._release = self._client.register_script(_RELEASE)
        self._current_generation = self._client.register_script(_CURRENT_GENERATION)
        self._bump_generation = self._client.register_script(_BUMP_GENERATION)

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except redis.RedisError as exc:
            raise CacheError(type(exc).__name__) from exc

    def get(self, key: str) -> bytes | None:
        """One GET."""
        value = self._call(lambda: self._client.get(key))
        return value if value is None or isinstance(value, bytes) else str(value).encode()

    def acquire_lease(self, key: str, token: str) -> bool:
        """SET NX PX: exactly one caller wins."""
        return bool(
            self._call(lambda: self._client.set(_lease_key(key), token, nx=True, px=LEASE_MS))
        )

    def set_if_leased(self, key: str, value: bytes, ttl_ms: int, token: str) -> bool:
        """Atomic compare-lease-and-set in a Lua script."""
        keys = [key, _lease_key(key)]
        return bool(self._call(lambda: self._set_if_leased(keys=keys, args=[token, value, ttl_ms])))

    def release_lease(self, key: str, token: str) -> None:
        """Atomic compare-and-delete of our lease."""
        self._call(lambda: self._release(keys=[_lease_key(key)], args=[token]))

    def delete(self, keys: list[str]) -> None:
        """DEL the values and their leases in one round trip."""
        everything = keys + [_lease_key(k) for k in keys]
        self._call(lambda: self._client.delete(*everything))

    def current_generation(self, key: str, start: int) -> bytes:
        """SET NX then GET, in one script (only on a GET miss: rare)."""
        value = self._call(lambda: self._current_generation(keys=[key], args=[start]))
        return value if isinstance(value, bytes) else str(value).encode()

    def bump_generation(self, key: str, start: int) -> int:
        """INCR, from `start` when the counter is missing, in one script."""
        return int(cast(int, self._call(lambda: self._bump_generation(keys=[key], args=[start]))))

    def ping(self) -> None:
        """PING."""
        self._call(self._client.ping)


class Cache:
    """Cache-aside with leases, generations for list namespaces, and a circuit breaker."""

    def __init__(self, backend: Backend, ttl_seconds: int, jitter: float) -> None:
        self.backend = backend
        self._ttl_ms = ttl_seconds * 1000
        self._jitter = jitter
        self._down_until = 0.0
        self._pending: set[str] = set()  # keys whose invalidation could not be delivered
        self._pending_generations: set[str] = set()
        self._lock = threading.Lock()

    # -- availability -------------------------------------------------------
    def _trip(self, exc: Exception) -> None:
        if self._down_until < time.monotonic():
            log.warning("cache unavailable (%s); bypassing for %.1fs", exc, BREAKER_SECONDS)
        self._down_until = time.monotonic() + BREAKER_SECONDS

    def _usable(self) -> bool:
        """False while the breaker is open or undelivered invalidations remain."""
        if time.monotonic() < self._down_until:
            return False
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
            log.info("cache back; replayed %d invalidations", len(keys) + len(gens))
            return True

    def _ttl(self) -> int:
        return self._ttl_ms + int(self._ttl_ms * self._jitter * random.random())  # noqa: S311

    # -- reads --------------------------------------------------------------
    def read_through(
        self, key: str | None, loader: Callable[[], bytes]
    ) -> tuple[bytes, CacheStatus]:
        """Return (bytes, status): a cached value, or the loader's, stored for others.

        A None key (no generation: see `generation`) reads without the cache: BYPASS.
        """
        if key is None or not self._usable():
            return loader(), CacheStatus.BYPASS
        full = KEY_PREFIX + key
        try:
            value = self.backend.get(full)
            if value is not None:
                return value, CacheStatus.HIT
            token = uuid.uuid4().hex
            deadline = time.monotonic() + WAIT_SECONDS
            while not self.backend.acquire_lease(full, token):
                time.sleep(POLL_SECONDS)
                value = self.backend.get(full)
                if value is not None:
                    return value, CacheStatus.HIT
                if time.monotonic() > deadline:
                    return loader(), CacheStatus.MISS  # leader is stuck; do not pile up
            # A leader may have stored the value between our miss and our lease.
            value = self.backend.get(full)
            if value is not None:
                self.backend.release_lease(full, token)
                return value, CacheStatus.HIT
        except CacheError as exc:
            self._trip(exc)
            return loader(), CacheStatus.BYPASS
        try:
            value = loader()
        except BaseException:
            self._quietly(lambda: self.backend.release_lease(full, token))
            raise
        self._quietly(lambda: self.backend.set_if_leased(full, value, self._ttl(), token))
        return value, CacheStatus.MISS

    def peek(self, key: str) -> bytes | None:
        """The cached value, or None on a miss or while the cache is unusable (never raises)."""
        if not self._usable():
            return None
        try:
            return self.backend.get(KEY_PREFIX + key)
        except CacheError as exc:
            self._trip(exc)
            return None

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
