"""`flipkart-api worker` as a process on real PostgreSQL, and the embedded worker in `serve`.

- Probes: /livez and /readyz answer 200, /metrics counts the delivery and the empty queue.
- SIGTERM while a delivery is on its way: the worker finishes it, exits 0, sends it once.
- The embedded default (SQLite, `flipkart-api serve`) delivers by itself, no worker process.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from flipkart_api import create_app
from flipkart_api.db import session
from flipkart_api.events.models import Delivery
from flipkart_api.settings import load_settings

from . import servers
from .faults.stack import CLI, Replica, call, production_env
from .receivers import WebhookReceiver
from .test_events import ADDRESS, subscribe
from .worker_process import WorkerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
FAST = {
    "WEBHOOK_ALLOW_PRIVATE": "true",
    "DELIVERY_RETRY_BASE_SECONDS": "0.2",
    "WORKER_POLL_SECONDS": "0.2",
    "WORKER_STALLED_SECONDS": "3",
}


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, pg_server: servers.PostgresServer
) -> Iterator[tuple[dict[str, str], Flask, Path]]:
    """A migrated, seeded database; the worker's environment; an app on the same database."""
    workdir = tmp_path_factory.mktemp("worker")
    redis = servers.start_redis()
    url = pg_server.create_database(f"flipkart_worker_{os.getpid()}")
    env = production_env(workdir, url, redis.url(0), redis.url(1)) | FAST
    for args in (["migrate"], ["seed", "--products", "20", "-q"]):
        done = subprocess.run([CLI, *args], env=env, capture_output=True, timeout=180)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    app = create_app(
        load_settings(
            app_env="test",
            database_url=url,
            redis_url=redis.url(0),
            secret_key=env["SECRET_KEY"],
            ratelimit_enabled=False,
        )
    )
    yield env, app, workdir
    app.extensions["db_engine"].dispose()
    redis.stop()


def place_order(app: Flask, email: str) -> int:
    """Register `email` and place an order of product 1 through the app; the order id."""
    client = app.test_client()
    body = {"email": email, "password": "correct-horse-1", "name": "Asha"}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    credentials = {k: body[k] for k in ("email", "password")}
    token = client.post("/api/v1/auth/token", json=credentials).get_json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    response = client.post(
        "/api/v1/orders",
        json={"items": [{"product_id": 1, "quantity": 1}], "shipping_address": ADDRESS},
        headers=headers,
    )
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def wait_for(condition: object, seconds: float = 20) -> None:
    """Poll `condition()` until true; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def statuses(app: Flask) -> list[str]:
    """Every delivery's status, in order."""
    with app.app_context():
        sess = session()
        found = list(sess.scalars(select(Delivery.status).order_by(Delivery.id)))
        sess.rollback()
        return found


def test_the_worker_delivers_and_says_so_on_its_probes_and_metrics(
    stack: tuple[dict[str, str], Flask, Path],
) -> None:
    env, app, workdir = stack
    receiver = WebhookReceiver()
    worker = WorkerProcess(servers.free_port(), env, workdir / "worker-1.log")
    try:
        endpoint, _ = subscribe(app, receiver.url, ["order.placed"])
        worker.start()
        assert worker.probe("/livez") == 200
        order_id = place_order(app, "probe@example.in")
        wait_for(lambda: len(receiver.received) == 1)
        assert receiver.bodies()[0]["data"]["order"]["id"] == order_id
        delivered = 'flipkart_deliveries_total{channel="webhook",outcome="delivered"} 1.0'
        wait_for(lambda: delivered in worker.metrics())
        text = worker.metrics()
        assert 'flipkart_deliveries_pending{channel="webhook"} 0.0' in text
        assert "flipkart_outbox_undispatched 0.0" in text
    finally:
        worker.stop()
        receiver.close()
        with app.app_context():
            from flipkart_api.events.models import WebhookEndpoint
            from flipkart_api.uow import UnitOfWork

            sess = session()
            with UnitOfWork(sess):
                sess.delete(sess.get(WebhookEndpoint, endpoint))


def test_sigterm_finishes_the_delivery_on_its_way_and_exits_0(
    stack: tuple[dict[str, str], Flask, Path],
) -> None:
    env, app, workdir = stack
    receiver = WebhookReceiver(delay=3.0)
    worker = WorkerProcess(servers.free_port(), env, workdir / "worker-2.log")
    try:
        subscribe(app, receiver.url, ["order.placed"])
        worker.start()
        place_order(app, "sigterm@example.in")
        wait_for(lambda: receiver.in_flight > 0)  # the delivery is on its way
        code, seconds = worker.terminate()
        assert code == 0, worker.log()[-2000:]
        assert seconds < 25
        assert statuses(app)[-1] == "delivered"
        time.sleep(1)
        assert len(receiver.received) == 1
    finally:
        worker.stop()
        receiver.close()


def test_the_embedded_default_delivers_from_the_server_itself(tmp_path: Path) -> None:
    """SQLite, `flipkart-api serve`, no worker process: the webhook still arrives."""
    receiver = WebhookReceiver()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "WORKER_EMBEDDED": "true",
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "RATELIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        "HOST": "127.0.0.1",
    }
    for args in (["migrate"], ["seed", "--products", "5", "-q"]):
        done = subprocess.run([CLI, *args], env=env, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    app = create_app(load_settings(app_env="test", instance_dir=tmp_path / "instance"))
    subscribe(app, receiver.url, ["order.placed"])
    server = Replica(servers.free_port(), env, tmp_path / "serve.log")
    try:
        server.start()
        body = {"email": "embedded@example.in", "password": "correct-horse-1", "name": "Asha"}
        assert call(server.port, "POST", "/api/v1/auth/register", body).status == 201
        credentials = {k: body[k] for k in ("email", "password")}
        token = call(server.port, "POST", "/api/v1/auth/token", credentials).json()["access_token"]
        placed = call(
            server.port,
            "POST",
            "/api/v1/orders",
            {"items": [{"product_id": 1, "quantity": 1}], "shipping_address": ADDRESS},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert placed.status == 201
        wait_for(lambda: len(receiver.received) == 1, seconds=15)
        assert receiver.bodies()[0]["type"] == "order.placed"
    finally:
        server.stop()
        receiver.close()
        app.extensions["db_engine"].dispose()
