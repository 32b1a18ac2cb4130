"""The stores behind the cache: Redis, or a bounded in-process LRU with the same guarantees.

Each keeps a value and its *lease* (key + ":lease") and can store a value only while the
lease it was given survives (compare-lease-and-set), atomically: a Lua script in Redis, a
lock in process. Generation counters (list namespaces) live beside the values. Every
failure or timeout of Redis surfaces as CacheError; cache.py decides what to do about it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, TypeVar, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

T = TypeVar("T")

LEASE_MS = 5000  # longer than any sane loader; expires by itself if the holder dies


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
