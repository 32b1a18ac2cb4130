"""The event drills' own stack: PostgreSQL, Redis, worker processes, an app to place orders.

The drills own this PostgreSQL (one of them restarts it), so nothing else in the session is
hit by it. Orders are placed through a Flask app on the same database (the web side of the
outbox); deliveries are made by real `flipkart-api worker` processes (tests/worker_process.py)
to real receivers (tests/receivers.py). `tally` checks what a webhook receiver got against
the committed outbox: every event at least once, under its own webhook-id.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import create_engine, text

from flipkart_api import create_app
from flipkart_api.auth.service import create_admin
from flipkart_api.db import session
from flipkart_api.settings import load_settings

from .. import servers
from ..receivers import WebhookReceiver
from ..test_events import ADDRESS, subscribe
from ..worker_process import WorkerProcess
from .stack import CLI, production_env

# Retries in fractions of a second and stalled jobs taken back after 3 s, as in
# tests/test_worker_process.py: the drills measure the machinery, not the production waits.
FAST = {
    "WEBHOOK_ALLOW_PRIVATE": "true",
    "DELIVERY_RETRY_BASE_SECONDS": "0.2",
    "WORKER_POLL_SECONDS": "0.2",
    "WORKER_STALLED_SECONDS": "3",
}
CUSTOMERS = 4
ORDER_TYPES = ["order.placed", "order.confirmed"]
ADMIN = ("events-admin@example.in", "events-admin-password-1")
PASSWORD = "correct-horse-1"


@dataclass
class EventStack:
    """Everything the event drills drive and check."""

    workdir: Path
    pg: servers.PostgresServer
    redis: servers.RedisServer
    url: str
    env: dict[str, str]  # a worker's environment (production settings + FAST)
    app: Flask
    admin: dict[str, str] = field(default_factory=dict)
    customers: list[dict[str, str]] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)
    placed: int = 0

    def worker(self, name: str, **extra: str) -> WorkerProcess:
        """Start a worker (log: workdir/`name`.log) with `extra` environment; ready."""
        process = WorkerProcess(servers.free_port(), self.env | extra, self.workdir / f"{name}.log")
        self.workers.append(process)
        process.start()
        return process

    def subscribe(self, url: str, types: list[str] | None = None) -> int:
        """The only enabled webhook endpoint from now on: `url`, for `types` (order events)."""
        self.disable_endpoints()
        endpoint, _ = subscribe(self.app, url, types or ORDER_TYPES)
        return endpoint

    def disable_endpoints(self) -> None:
        """No endpoint gets anything more (what is still pending for them dies)."""
        self.sql("UPDATE webhook_endpoints SET enabled = false")

    def try_order(self) -> int | None:
        """Place one order (customers and products in turn); its id, or None if refused."""
        client = self.app.test_client()
        headers = self.customers[self.placed % len(self.customers)]
        product = 1 + self.placed % 10
        self.placed += 1
        body = {"items": [{"product_id": product, "quantity": 1}], "shipping_address": ADDRESS}
        response = client.post("/api/v1/orders", json=body, headers=headers)
        return int(response.get_json()["id"]) if response.status_code == 201 else None

    def orders(self, count: int) -> list[int]:
        """Place `count` orders, each of which must be accepted."""
        ids = [self.try_order() for _ in range(count)]
        assert None not in ids, "an order was refused with the database up"
        return [i for i in ids if i is not None]

    def confirm(self, order_id: int) -> None:
        """An admin confirms the order (order.confirmed)."""
        client = self.app.test_client()
        path = f"/api/v1/orders/{order_id}/status"
        response = client.post(path, json={"status": "confirmed"}, headers=self.admin)
        assert response.status_code == 200, response.get_json()

    def sql(self, statement: str, **params: Any) -> list[Any]:
        """Rows of one statement (committed) against the drills' database."""
        engine = create_engine(self.url)
        try:
            with engine.begin() as conn:
                result = conn.execute(text(statement), params)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()

    def last_event(self) -> int:
        """The newest outbox row's key (0: none): a drill's events are those after it."""
        return int(self.sql("SELECT coalesce(max(id), 0) AS pk FROM outbox_events")[0].pk)

    def events_after(self, pk: int, types: Iterable[str] = ORDER_TYPES) -> list[Any]:
        """Committed outbox events of `types` after `pk`: (event_id, type, subject), in order."""
        return self.sql(
            "SELECT event_id, type, subject FROM outbox_events"
            " WHERE id > :pk AND type = ANY(:types) ORDER BY id",
            pk=pk,
            types=list(types),
        )

    def deliveries_after(self, pk: int) -> dict[str, int]:
        """Deliveries of the events after `pk` by "channel status (last error)": what is stuck."""
        rows = self.sql(
            "SELECT channel, status, last_error, count(*) AS n FROM deliveries"
            " WHERE event_id > :pk GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            pk=pk,
        )
        return {f"{r.channel} {r.status} ({r.last_error or 'ok'})": r.n for r in rows}

    def stop_workers(self) -> None:
        """Stop every worker still running (SIGTERM, SIGKILL if it hangs)."""
        for process in self.workers:
            process.stop()

    def keep_logs(self, target: Path) -> None:
        """Copy the workers' logs to `target` (build/faults-logs) as events-<name>.log."""
        target.mkdir(parents=True, exist_ok=True)
        for log in self.workdir.glob("*.log"):
            shutil.copy(log, target / f"events-{log.name}")
        if self.pg.logfile.is_file():
            shutil.copy(self.pg.logfile, target / "events-postgres.log")


def start_event_stack(workdir: Path) -> EventStack:
    """A PostgreSQL and a Redis of their own, migrated and seeded; customers and an admin."""
    pg = servers.start_postgres()
    redis = servers.start_redis()
    url = pg.create_database("events")
    env = production_env(workdir, url, redis.url(0), redis.url(1)) | FAST
    for args in (["migrate"], ["seed", "--products", "20", "-q"]):
        done = subprocess.run([CLI, *args], env=env, capture_output=True, timeout=180)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    settings = load_settings(
        app_env="test",
        database_url=url,
        redis_url=redis.url(0),
        secret_key=env["SECRET_KEY"],
        ratelimit_enabled=False,
        log_level="ERROR",  # its 503s while PostgreSQL is down are the drill, not news
        orders_max_open=0,  # a few customers place every order of the drills
        orders_max_open_units=0,
    )
    stack = EventStack(workdir, pg, redis, url, env, create_app(settings))
    stack.sql("UPDATE products SET stock = 1000000")  # no order is ever short of stock
    with stack.app.app_context():
        create_admin(session(), *ADMIN)
    client = stack.app.test_client()
    stack.admin = _bearer(stack.app, *ADMIN)
    for n in range(CUSTOMERS):
        body = {"email": f"events{n}@example.in", "password": PASSWORD, "name": "Asha"}
        assert client.post("/api/v1/auth/register", json=body).status_code == 201
        stack.customers.append(_bearer(stack.app, body["email"], PASSWORD))
    return stack


def stop_event_stack(stack: EventStack) -> None:
    """Workers, the app's pool, the servers: all stopped by what we started."""
    stack.stop_workers()
    stack.app.extensions["db_engine"].dispose()
    stack.redis.stop()
    stack.pg.stop()


def _bearer(app: Flask, email: str, password: str) -> dict[str, str]:
    reply = app.test_client().post(
        "/api/v1/auth/token", json={"email": email, "password": password}
    )
    assert reply.status_code == 200, reply.get_json()
    return {"Authorization": f"Bearer {reply.get_json()['access_token']}"}


def tally(receiver: WebhookReceiver, events: list[Any]) -> dict[str, Any]:
    """What the receiver got against the committed `events`.

    Each request's webhook-id must be its body's id and one of the events; `duplicates` is
    how many requests repeated an id already received (a retry after a failure).
    """
    with receiver.lock:
        got = list(receiver.received)
    ids = [r.headers.get("webhook-id") for r in got]
    mismatched = sum(r.headers.get("webhook-id") != r.json()["id"] for r in got)
    expected = {e.event_id for e in events}
    counts = Counter(ids)
    return {
        "events": len(expected),
        "requests": len(got),
        "missing": len(expected - set(ids)),
        "unexpected": len(set(ids) - expected),
        "duplicates": sum(n - 1 for n in counts.values() if n > 1),
        "ids_received_twice_or_more": sum(n > 1 for n in counts.values()),
        "webhook_id_not_body_id": mismatched,
    }


def wait_until(done: Callable[[], bool], seconds: float) -> float | None:
    """Poll `done()` every 0.1 s: the seconds it took, None if not within `seconds`.

    None rather than a failure, so that a drill records its figures before it asserts.
    """
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > seconds:
            return None
        time.sleep(0.1)
    return round(time.monotonic() - started, 2)


def delivered_count(metrics: str, channel: str = "webhook") -> int:
    """flipkart_deliveries_total{channel, outcome="delivered"} from one worker's /metrics."""
    prefix = f'flipkart_deliveries_total{{channel="{channel}",outcome="delivered"}} '
    for line in metrics.splitlines():
        if line.startswith(prefix):
            return int(float(line.removeprefix(prefix)))
    return 0
