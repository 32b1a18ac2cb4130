"""Purges to the HTTP cache in front (Varnish) by surrogate key, after commit, on every instance.

Cached catalog answers carry their surrogate keys (`xkey: p42`, `xkey: products`; the
catalog service names them). After a write commits, `Edge.purge(keys)` sends one
`PURGE /` with `xkey-purge: <keys>` to every address of every EDGE_PURGE_URLS entry (names
are resolved on each purge, so Swarm tasks and Kubernetes pods can come and go), and returns
only when each has answered: the write's response is sent after the purge, never before.
Each thread keeps one connection alive per instance (http.client: half the CPU per purge of
urllib3's pool, 0.17 against 0.35 ms measured against varnishd); each attempt has a short
timeout, and a kept connection the instance closed while idle is replaced at once.

A purge that cannot be delivered is kept per URL and retried every second by a background
thread until it lands, or until EDGE_TTL_SECONDS have passed: by then every answer it meant
to drop has expired, and the cache revalidates with the app (ETag -> 304) before serving it
again. That is the staleness bound when an instance is unreachable (docs/reliability.md).
"""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from flask import Flask, current_app

from . import metrics
from .settings import Settings

log = logging.getLogger(__name__)

PURGE_HEADER = "xkey-purge"
RETRY_SECONDS = 1.0
# What a kept-alive connection the instance has closed meanwhile (its idle timeout) raises:
# the PURGE goes once more on a new connection. Anything else is a failure.
_CLOSED = (ConnectionResetError, BrokenPipeError)  # RemoteDisconnected is a reset


class _Connections(threading.local):
    """This thread's open connection per instance address (http.client is per thread)."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, int], http.client.HTTPConnection] = {}


class PurgeFailed(Exception):
    """An instance did not confirm a purge."""


class Edge:
    """The HTTP cache instances this app purges; with no URLs, purging does nothing."""

    def __init__(self, urls: Sequence[str], timeout: float, ttl_seconds: int) -> None:
        self.urls = tuple(urls)
        self.ttl_seconds = ttl_seconds
        self._timeout = timeout
        self._connections = _Connections()
        self._kept: set[http.client.HTTPConnection] = set()  # every thread's, to close them
        self._closer = weakref.finalize(self, _close_all, self._kept)
        self._pending: dict[str, tuple[set[str], float]] = {}  # url -> (keys, first failure)
        self._lock = threading.Lock()
        self._retrier: threading.Thread | None = None

    @property
    def shared_ttl(self) -> int | None:
        """s-maxage for shared caches: only when there is a cache this app purges."""
        return self.ttl_seconds if self.urls else None

    def purge(self, keys: Iterable[str]) -> None:
        """Drop every cached answer tagged with any of `keys`, on every instance, now.

        Never raises: a failure is logged and retried in the background (see the module).
        """
        wanted = sorted(set(keys))
        if not wanted or not self.urls:
            return
        for url in self.urls:
            try:
                self._purge_url(url, wanted)
            except PurgeFailed as exc:
                log.warning("HTTP cache purge of %s failed (%s); retrying", url, exc)
                self._remember(url, wanted)

    def close(self) -> None:
        """Close the kept connections (also done when the purger is garbage collected)."""
        self._closer()

    def pending(self) -> dict[str, set[str]]:
        """Keys still to be purged, per URL (for tests and /health)."""
        with self._lock:
            return {url: set(keys) for url, (keys, _) in self._pending.items()}

    def _purge_url(self, url: str, keys: list[str]) -> None:
        """PURGE every address `url`'s host resolves to (raises PurgeFailed)."""
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 80
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            metrics.EDGE_PURGES.labels("failed").inc()
            raise PurgeFailed(f"cannot resolve {host}: {exc}") from None
        addresses = sorted({str(info[4][0]) for info in infos})
        headers = {PURGE_HEADER: " ".join(keys), "Host": parts.netloc}
        for address in addresses:
            try:
                status = self._send(address, port, headers)
            except (OSError, http.client.HTTPException) as exc:
                metrics.EDGE_PURGES.labels("failed").inc()
                raise PurgeFailed(f"{address}: {type(exc).__name__}") from None
            if status != 200:
                metrics.EDGE_PURGES.labels("failed").inc()
                raise PurgeFailed(f"{address} answered {status}")
            metrics.EDGE_PURGES.labels("ok").inc()

    def _send(self, address: str, port: int, headers: dict[str, str]) -> int:
        """PURGE / to one address on this thread's kept connection; its status."""
        kept = self._connections.open.pop((address, port), None)
        if kept is not None:
            try:
                return self._exchange(kept, address, port, headers)
            except _CLOSED:
                pass  # closed by the instance while idle: once more, on a new connection
        fresh = http.client.HTTPConnection(address, port, timeout=self._timeout)
        with self._lock:
            self._kept.add(fresh)
        return self._exchange(fresh, address, port, headers)

    def _exchange(
        self, conn: http.client.HTTPConnection, address: str, port: int, headers: dict[str, str]
    ) -> int:
        try:
            conn.request("PURGE", "/", headers=headers)
            response = conn.getresponse()
            response.read()
        except BaseException:
            self._drop(conn)
            raise
        if response.will_close:
            self._drop(conn)
        else:
            self._connections.open[(address, port)] = conn
        return response.status

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        with self._lock:
            self._kept.discard(conn)

    def _remember(self, url: str, keys: list[str]) -> None:
        with self._lock:
            held, since = self._pending.get(url, (set(), time.monotonic()))
            held.update(keys)
            self._pending[url] = (held, since)
            if self._retrier is None or not self._retrier.is_alive():
                self._retrier = threading.Thread(target=self._retry, name="edge-purge", daemon=True)
                self._retrier.start()

    def _retry(self) -> None:
        """Redeliver pending purges until none is left (or what they target has expired)."""
        while True:
            time.sleep(RETRY_SECONDS)
            with self._lock:
                work = {url: (set(keys), since) for url, (keys, since) in self._pending.items()}
            if not work:
                return
            for url, (keys, since) in work.items():
                expired = time.monotonic() - since > self.ttl_seconds
                try:
                    if not expired:
                        self._purge_url(url, sorted(keys))
                except PurgeFailed:
                    continue
                with self._lock:
                    held, first = self._pending.pop(url, (set(), since))
                    late = held - keys  # added while we were purging: keep them
                    if late:
                        self._pending[url] = (late, first)
                if expired:
                    log.warning("gave up purging %s: its answers have expired", url)
                else:
                    log.info("HTTP cache purge of %s delivered after a failure", url)


def _close_all(connections: set[http.client.HTTPConnection]) -> None:
    for conn in list(connections):
        conn.close()
    connections.clear()


def build_edge(settings: Settings) -> Edge:
    """The instances EDGE_PURGE_URLS names (none: no purges)."""
    return Edge(
        settings.edge_purge_targets, settings.edge_purge_timeout_seconds, settings.edge_ttl_seconds
    )


def init_app(app: Flask, settings: Settings) -> None:
    """Attach the edge purger to the app."""
    app.extensions["edge"] = build_edge(settings)


def edge() -> Edge:
    """The current app's edge purger."""
    e: Edge = current_app.extensions["edge"]
    return e
