"""A client that goes over its sign-up limit, from an address of its own, through nginx.

The load is 127.0.0.1; nginx appends the peer address to X-Forwarded-For and the app
(PROXY_HOPS=1) takes that last entry, so a header cannot make another client: the probe
connects from another loopback address instead (127.0.0.2 ...), as a second machine would.
Its requests are `POST /auth/register` with an empty body: the limit is counted before the
body is read, so each one is a 422 until the limit, then a 429, with no password hashing.
It stays under nginx's own 5 r/s on /api/v1/auth/, so every 429 it gets is the app's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import redis

from .stack import Reply, call

REGISTER = "/api/v1/auth/register"
PACE_SECONDS = 0.25  # 4 r/s: under nginx's limit_req rate=5r/s for /api/v1/auth/
APP_429 = "Too many requests: the limit is "


@dataclass
class Probe:
    """One client address and every answer it got."""

    port: int
    source: str
    replies: list[tuple[float, Reply]] = field(default_factory=list)  # (sent at, reply)

    def send(self) -> Reply:
        """One register attempt."""
        sent = time.monotonic()
        reply = call(self.port, "POST", REGISTER, {}, source=self.source)
        self.replies.append((sent, reply))
        return reply

    def until_limited(self, most: int) -> list[int]:
        """Statuses of paced attempts up to and including the first 429 (at most `most`)."""
        statuses = []
        for _ in range(most):
            statuses.append(self.send().status)
            if statuses[-1] == 429:
                break
            time.sleep(PACE_SECONDS)
        return statuses

    def during(self, stop: threading.Event) -> threading.Thread:
        """Send paced attempts in a thread until `stop` is set."""

        def run() -> None:
            while not stop.is_set():
                self.send()
                stop.wait(PACE_SECONDS)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def between(self, start: float, end: float) -> list[Reply]:
        """Replies to attempts sent in [start, end]."""
        return [reply for sent, reply in self.replies if start <= sent <= end]


def is_app_429(reply: Reply) -> bool:
    """A 429 problem from the app's limiter (nginx's own says 'Slow down.')."""
    return reply.status == 429 and reply.is_problem and reply.json()["detail"].startswith(APP_429)


def counted(limits_redis_url: str, source: str) -> int:
    """Hits the limiter Redis holds for this client address (every limit, every window)."""
    with redis.Redis.from_url(limits_redis_url) as client:
        keys = list(client.scan_iter(f"*/{source}/*"))
        return sum(int(client.get(key) or 0) for key in keys)
