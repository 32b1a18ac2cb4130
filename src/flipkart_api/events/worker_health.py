"""The worker's own probes and metrics on WORKER_HEALTH_PORT: /livez, /readyz, /metrics.

/livez says the worker's loop is turning (a heartbeat at most LIVE_SECONDS old); a long
delivery runs in a thread of its own, so it never makes the worker look dead. /readyz adds
that the database answers. /metrics is the worker's registry with the queue read at scrape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

LIVE_SECONDS = 10.0


class HealthServer:
    """A small threaded HTTP server; `beat()` from the worker's loop keeps /livez green."""

    def __init__(
        self, host: str, port: int, ready: Callable[[], bool], registry: CollectorRegistry
    ) -> None:
        self.ready = ready
        self.registry = registry
        self.last_beat = time.monotonic()
        self.started = False
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="worker-health", daemon=True
        )

    @property
    def port(self) -> int:
        """The port it listens on (the one asked for, or the one given for 0)."""
        return int(self._server.server_address[1])

    def beat(self) -> None:
        """The loop is alive."""
        self.last_beat = time.monotonic()

    def alive(self) -> bool:
        """The last beat is recent enough."""
        return time.monotonic() - self.last_beat < LIVE_SECONDS

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()


def _handler(health: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/livez":
                self._answer(
                    200 if health.alive() else 503, b"ok\n" if health.alive() else b"stalled\n"
                )
            elif self.path == "/readyz":
                ok = health.alive() and health.started and _safe(health.ready)
                self._answer(200 if ok else 503, b"ready\n" if ok else b"not ready\n")
            elif self.path == "/metrics":
                self._answer(200, generate_latest(health.registry), CONTENT_TYPE_LATEST)
            else:
                self._answer(404, b"not found\n")

        def _answer(self, status: int, body: bytes, kind: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes every few seconds are not news."""

    return Handler


def _safe(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except Exception:
        return False
