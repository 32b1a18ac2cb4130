"""A bounded mixed load through nginx: product reads, and orders retried like a real client.

Readers fetch product details and a list page. Writers place one-line orders with an
Idempotency-Key and, when an attempt gets no answer or a 502/503/504, retry it with the
same key (bounded) until it is placed; now and then a writer cancels its latest order. Every
attempt is recorded with its start time, so a drill can judge exactly the requests it sent
while a dependency was down. Every loop stops at its time or count bound.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .stack import Reply, call

RETRYABLE = frozenset({0, 502, 503, 504})
MAX_SECONDS = 90  # a load never runs longer, whatever the drill does
MAX_REQUESTS = 50_000
RETRY_SECONDS = 30  # an order is retried this long, then counted as failed
ADDRESS = {
    "name": "Asha Verma",
    "line1": "12 MG Road",
    "city": "Bengaluru",
    "state": "Karnataka",
    "pincode": "560001",
    "phone": "9876543210",
}


@dataclass(frozen=True)
class Attempt:
    """One request of the load."""

    kind: str  # "read", "order" or "cancel"
    started: float  # time.monotonic() when sent
    seconds: float
    status: int  # 0: no response
    cache: str | None  # X-Cache of reads
    problem: bool  # the body is problem+json
    retry: int = 0  # 0 for a first attempt

    @property
    def ok(self) -> bool:
        """What a healthy service answers: 200 reads and cancels, 201 orders.

        A retried cancel may find its first attempt went through: 409, already cancelled.
        """
        if self.kind == "read":
            return self.status == 200
        if self.kind == "order":
            return self.status == 201
        return self.status == 200 or (self.status == 409 and self.retry > 0)

    @property
    def ended(self) -> float:
        """time.monotonic() when the answer (or the error) came."""
        return self.started + self.seconds


@dataclass
class Order:
    """An order as one client saw it: its key, and the id of the 201 (None if never)."""

    key: str
    user: int
    product_id: int
    order_id: int | None = None
    attempts: int = 0
    cancelled: bool = False


@dataclass
class Load:
    """Reader and writer threads against nginx on `port`, from start() until stop()."""

    port: int
    tokens: list[str]  # one customer per writer
    read_ids: list[int]
    order_ids: list[int]
    readers: int = 2
    cancel_every: int = 10
    attempts: list[Attempt] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        """Start every thread."""
        self._deadline = time.monotonic() + MAX_SECONDS
        targets = [self._reader] * self.readers + [
            (lambda n=n: self._writer(n)) for n in range(len(self.tokens))
        ]
        self._threads = [threading.Thread(target=t, daemon=True) for t in targets]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Ask every thread to finish (a pending order still gets its bounded retries)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=RETRY_SECONDS + 15)
        assert not any(t.is_alive() for t in self._threads), "load threads did not finish"

    def _going(self) -> bool:
        return (
            not self._stop.is_set()
            and time.monotonic() < self._deadline
            and len(self.attempts) < MAX_REQUESTS
        )

    def _record(self, kind: str, reply: Reply, retry: int = 0) -> None:
        self.attempts.append(
            Attempt(
                kind=kind,
                started=time.monotonic() - reply.seconds,
                seconds=reply.seconds,
                status=reply.status,
                cache=reply.headers.get("x-cache"),
                problem=reply.status >= 400 and reply.is_problem,
                retry=retry,
            )
        )

    def _reader(self) -> None:
        rng = random.Random()
        while self._going():
            if rng.random() < 0.8:
                path = f"/api/v1/products/{rng.choice(self.read_ids)}"
            else:
                path = "/api/v1/products?category=mobiles&sort=price&limit=10"
            self._record("read", call(self.port, "GET", path))
            time.sleep(0.01)

    def _writer(self, n: int) -> None:
        rng = random.Random()
        auth = {"Authorization": f"Bearer {self.tokens[n]}"}
        while self._going():
            order = Order(key=uuid.uuid4().hex, user=n, product_id=rng.choice(self.order_ids))
            self.orders.append(order)
            body = {
                "items": [{"product_id": order.product_id, "quantity": 1}],
                "shipping_address": ADDRESS,
            }
            reply, order.attempts = self._until_answered(
                "order", "POST", "/api/v1/orders", body, auth | {"Idempotency-Key": order.key}
            )
            if reply.status == 201:
                order.order_id = int(reply.json()["id"])
            if order.order_id is not None and rng.randrange(self.cancel_every) == 0:
                path = f"/api/v1/orders/{order.order_id}/cancel"
                cancel, retries = self._until_answered("cancel", "POST", path, None, auth)
                # A retried cancel whose first attempt went through answers 409 (cancelled).
                order.cancelled = cancel.status == 200 or (cancel.status == 409 and retries > 0)
            time.sleep(0.05)

    def _until_answered(
        self, kind: str, method: str, path: str, body: Any, headers: dict[str, str]
    ) -> tuple[Reply, int]:
        """Send; retry on no answer or 502/503/504, same request, for RETRY_SECONDS at most.

        Returns the last reply and how many retries it took.
        """
        give_up = time.monotonic() + RETRY_SECONDS
        retry = 0
        while True:
            reply = call(self.port, method, path, body, headers)
            self._record(kind, reply, retry)
            if reply.status not in RETRYABLE or time.monotonic() > give_up:
                return reply, retry
            retry += 1
            time.sleep(min(0.25 * retry, 1.0))

    # -- figures ------------------------------------------------------------------
    def between(self, start: float, end: float) -> list[Attempt]:
        """Attempts sent at or after `start` that were answered by `end`."""
        return [a for a in self.attempts if a.started >= start and a.ended <= end]

    def figures(self) -> dict[str, Any]:
        """Counts over the whole load."""
        attempts = list(self.attempts)
        return {
            "requests": len(attempts),
            "reads": sum(a.kind == "read" for a in attempts),
            "writes": sum(a.kind != "read" for a in attempts),
            "failed": sum(not a.ok for a in attempts),
            "status_5xx": sum(a.status >= 500 for a in attempts),
            "status_500": sum(a.status == 500 for a in attempts),
            "no_response": sum(a.status == 0 for a in attempts),
            "retries": sum(a.retry > 0 for a in attempts),
            "orders_placed": sum(o.order_id is not None for o in self.orders),
            "orders_not_placed": sum(o.order_id is None for o in self.orders),
            "max_latency_s": round(max((a.seconds for a in attempts), default=0.0), 3),
        }
