"""The outbox and the worker on both backends: nothing for a rollback, everything, in order.

Deliveries go to a real HTTP receiver on 127.0.0.1 and are made by the worker's own code
(the embedded loop on SQLite, a procrastinate worker on PostgreSQL: receivers.drain).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from standardwebhooks import Webhook

from flipkart_api import create_app
from flipkart_api.db import session
from flipkart_api.events.fanout import RELAY_LOCK, fan_out_pending
from flipkart_api.events.models import Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint
from flipkart_api.events.signing import new_secret
from flipkart_api.settings import Settings, load_settings
from flipkart_api.uow import UnitOfWork

from .receivers import Inbox, WebhookReceiver, drain, drain_until, start_smtp
from .test_orders import ADDRESS

FAST = {
    "webhook_allow_private": True,
    "delivery_retry_base_seconds": 0.05,
    "delivery_retry_max_seconds": 0.2,
    "worker_poll_seconds": 0.05,
}


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    """The backend's settings with retries in milliseconds and 127.0.0.1 receivers allowed."""
    return load_settings(**(settings.model_dump() | FAST))


@pytest.fixture
def app(fast_settings: Settings) -> Iterator[Flask]:
    """The app on those settings."""
    application = create_app(fast_settings)
    yield application
    application.extensions["db_engine"].dispose()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver on 127.0.0.1."""
    server = WebhookReceiver()
    yield server
    server.close()


def subscribe(app: Flask, url: str, types: list[str] | None = None) -> tuple[int, str]:
    """A webhook endpoint (id, secret) for `types` (all when None)."""
    secret = new_secret()
    with app.app_context():
        sess = session()
        endpoint = WebhookEndpoint(url=url, event_types=types or [], secret=secret, enabled=True)
        with UnitOfWork(sess):
            sess.add(endpoint)
        return endpoint.id, secret


def order(client: FlaskClient, headers: dict[str, str], quantity: int = 1) -> dict[str, Any]:
    """Place an order of product 1."""
    response = client.post(
        "/api/v1/orders",
        json={"items": [{"product_id": 1, "quantity": quantity}], "shipping_address": ADDRESS},
        headers=headers,
    )
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def move(client: FlaskClient, order_id: int, status: str, admin: dict[str, str]) -> None:
    """An admin moves the order along its lifecycle."""
    response = client.post(
        f"/api/v1/orders/{order_id}/status", json={"status": status}, headers=admin
    )
    assert response.status_code == 200, response.get_json()


def events(app: Flask) -> list[tuple[str, str]]:
    """(type, subject) of every outbox event, in order."""
    with app.app_context():
        sess = session()
        rows = sess.execute(select(OutboxEvent.type, OutboxEvent.subject).order_by(OutboxEvent.id))
        return [(t, s) for t, s in rows]


def deliveries(app: Flask) -> list[Delivery]:
    """Every delivery, in order."""
    with app.app_context():
        sess = session()
        rows = list(sess.scalars(select(Delivery).order_by(Delivery.id)))
        sess.expunge_all()
        return rows


def test_an_order_publishes_in_its_transaction_and_a_refused_one_publishes_nothing(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str]
) -> None:
    """order.placed commits with the order; an order refused for stock leaves no event."""
    placed = order(client, customer_headers)
    response = client.post(
        "/api/v1/orders",
        json={"items": [{"product_id": 1, "quantity": 10**6}], "shipping_address": ADDRESS},
        headers=customer_headers,
    )
    assert response.status_code in (409, 422)
    kinds = events(seeded)
    assert ("order.placed", f"order:{placed['id']}") in kinds
    assert [k for k in kinds if k[0] == "order.placed"] == [
        ("order.placed", f"order:{placed['id']}")
    ]
    assert ("user.registered", "user:1") in kinds or any(k[0] == "user.registered" for k in kinds)


def test_webhooks_arrive_signed_once_each_in_the_orders_order(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    admin_headers: dict[str, str],
    receiver: WebhookReceiver,
) -> None:
    """placed -> confirmed -> shipped: three signed requests, in that order, ids stable."""
    _, secret = subscribe(
        seeded, receiver.url, ["order.placed", "order.confirmed", "order.shipped"]
    )
    placed = order(client, customer_headers)
    for status in ("confirmed", "shipped"):
        move(client, placed["id"], status, admin_headers)
    drain_until(seeded, lambda: len(receiver.received) >= 3)
    drain(seeded)
    assert [b["type"] for b in receiver.bodies()] == [
        "order.placed", "order.confirmed", "order.shipped",
    ]  # fmt: skip
    webhook = Webhook(secret)
    for request in receiver.received:
        payload = webhook.verify(request.body, request.headers)
        assert payload["data"]["order"]["id"] == placed["id"]
        assert request.headers["webhook-id"] == payload["id"]
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 3
    assert all(d.status == "delivered" for d in deliveries(seeded))


def test_a_failing_receiver_gets_retries_with_the_same_id_then_the_next_event(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    """Two 500s then 200: three attempts logged, one id; the next event waits its turn."""
    receiver = WebhookReceiver(statuses=[500, 503])
    try:
        subscribe(seeded, receiver.url, ["order.placed", "order.confirmed"])
        placed = order(client, customer_headers)
        move(client, placed["id"], "confirmed", admin_headers)
        drain_until(seeded, lambda: len(receiver.received) >= 4)
        types = [b["type"] for b in receiver.bodies()]
        assert types == ["order.placed"] * 3 + ["order.confirmed"]
        assert len({r.headers["webhook-id"] for r in receiver.received[:3]}) == 1
        first = deliveries(seeded)[0]
        assert (first.status, first.attempts) == ("delivered", 3)
        with seeded.app_context():
            attempts = list(
                session().execute(
                    select(DeliveryAttempt.ok, DeliveryAttempt.status_code)
                    .where(DeliveryAttempt.delivery_id == first.id)
                    .order_by(DeliveryAttempt.id)
                )
            )
        assert attempts == [(False, 500), (False, 503), (True, 200)]
    finally:
        receiver.close()


def test_after_the_last_attempt_a_delivery_is_dead_and_the_next_one_goes(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    admin_headers: dict[str, str],
    fast_settings: Settings,
) -> None:
    """DELIVERY_MAX_ATTEMPTS failures: dead-lettered; later events are not held forever."""
    receiver = WebhookReceiver(statuses=[500, 500, 500])
    app = create_app(load_settings(**(fast_settings.model_dump() | {"delivery_max_attempts": 3})))
    try:
        subscribe(app, receiver.url, ["order.placed", "order.confirmed"])
        placed = order(client, customer_headers)
        move(client, placed["id"], "confirmed", admin_headers)
        drain_until(app, lambda: len(receiver.received) >= 4)
        assert [b["type"] for b in receiver.bodies()] == ["order.placed"] * 3 + ["order.confirmed"]
        first, second = deliveries(app)
        assert (first.status, first.attempts, first.last_status_code) == ("dead", 3, 500)
        assert second.status == "delivered"
    finally:
        receiver.close()
        app.extensions["db_engine"].dispose()


def test_a_fan_out_runs_once_however_often_it_is_asked(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str], receiver: WebhookReceiver
) -> None:
    """The claim and the deliveries commit together: a second fan-out creates nothing."""
    subscribe(seeded, receiver.url, ["order.placed"])
    order(client, customer_headers)
    with seeded.app_context():
        sess = session()
        first = fan_out_pending(sess, seeded.config["SETTINGS"])
        again = fan_out_pending(sess, seeded.config["SETTINGS"])
    assert first[0] == 2  # the customer's user.registered, then order.placed
    assert len(first[1]) == 1
    assert again == (0, [])


def test_a_batch_fans_out_in_event_order_and_leaves_the_rest(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str], receiver: WebhookReceiver
) -> None:
    """Oldest first, at most `limit` a batch; deliveries' ids follow the events' order."""
    subscribe(seeded, receiver.url, ["order.placed"])
    for _ in range(3):
        order(client, customer_headers)
    with seeded.app_context():
        sess = session()
        taken, first = fan_out_pending(sess, seeded.config["SETTINGS"], limit=3)
        taken_after, rest = fan_out_pending(sess, seeded.config["SETTINGS"], limit=3)
        events = sess.execute(
            select(Delivery.id, OutboxEvent.id).join(OutboxEvent).order_by(Delivery.id)
        ).all()
    # user.registered and two orders, then the third order
    assert (taken, len(first), taken_after, len(rest)) == (3, 2, 1, 1)
    assert [event for _, event in events] == sorted(event for _, event in events)


def test_private_addresses_are_refused_unless_allowed(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str], settings: Settings
) -> None:
    """WEBHOOK_ALLOW_PRIVATE off: a 127.0.0.1 endpoint is dead at once, nothing was sent."""
    receiver = WebhookReceiver()
    app = create_app(
        load_settings(**(settings.model_dump() | FAST | {"webhook_allow_private": False}))
    )
    try:
        subscribe(app, receiver.url, ["order.placed"])
        order(client, customer_headers)
        drain(app)
        (delivery,) = deliveries(app)
        assert delivery.status == "dead"
        assert "refused" in (delivery.last_error or "")
        assert receiver.received == []
    finally:
        receiver.close()
        app.extensions["db_engine"].dispose()


def test_postgres_jobs_are_deferred_with_their_deliveries_one_relay_at_a_time(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str], backend: str,
    receiver: WebhookReceiver,
) -> None:  # fmt: skip
    """The write inserts no job; the relay defers one per delivery, locked by receiver and
    order; while another relay holds the lock, this one takes nothing (PostgreSQL)."""
    if backend != "postgres":
        pytest.skip("procrastinate is the PostgreSQL queue")
    subscribe(seeded, receiver.url, ["order.placed"])
    order(client, customer_headers)
    settings = seeded.config["SETTINGS"]
    with seeded.app_context():
        sess = session()
        assert sess.scalar(text("SELECT count(*) FROM procrastinate_jobs")) == 0
        sess.rollback()
        other = seeded.extensions["db_engine"].connect()
        try:
            other.execute(select(func.pg_advisory_xact_lock(RELAY_LOCK)))
            assert fan_out_pending(sess, settings) == (0, [])
        finally:
            other.close()  # its transaction ends, and the lock with it
        taken, (delivery_id,) = fan_out_pending(sess, settings)
        jobs = sess.execute(
            text("SELECT task_name, args->>'delivery_id', lock FROM procrastinate_jobs")
        ).all()
        lock_key = sess.scalar(select(Delivery.lock_key).where(Delivery.id == delivery_id))
    assert taken == 2  # user.registered (no subscriber) and order.placed
    assert jobs == [("flipkart:deliver", str(delivery_id), lock_key)]
    assert lock_key is not None
    assert lock_key.startswith("webhook:")
    assert ":order:" in lock_key


def test_sqlite_settings_turn_the_embedded_worker_on_outside_tests(tmp_path: Path) -> None:
    """The embedded default delivers by itself; tests and PostgreSQL do not start a thread."""
    assert load_settings(instance_dir=tmp_path).effective_worker_embedded
    assert not load_settings(instance_dir=tmp_path, app_env="test").effective_worker_embedded
    assert not load_settings(
        database_url="postgresql://x@localhost/db", secret_key="k" * 40
    ).effective_worker_embedded


def test_the_customer_gets_an_email_per_status_through_a_real_smtp_server(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    admin_headers: dict[str, str],
    fast_settings: Settings,
) -> None:
    """SMTP_URL set: order.placed and order.confirmed each arrive once, text and HTML."""
    inbox = Inbox()
    controller, port = start_smtp(inbox)
    app = create_app(
        load_settings(**(fast_settings.model_dump() | {"smtp_url": f"smtp://127.0.0.1:{port}"}))
    )
    try:
        placed = order(client, customer_headers)
        move(client, placed["id"], "confirmed", admin_headers)
        drain_until(app, lambda: len(inbox.received) >= 2)
        first, second = inbox.received
        assert first.rcpt_tos == ["asha@example.in"]
        assert f"#{placed['id']}" in str(first.message["Subject"])
        assert "confirmed" in str(second.message["Subject"])
        kinds = [part.get_content_type() for part in first.message.iter_parts()]
        assert kinds == ["text/plain", "text/html"]
        assert first.message["Message-ID"] != second.message["Message-ID"]
        assert {d.channel for d in deliveries(app)} == {"email"}
        assert all(d.status == "delivered" for d in deliveries(app))
    finally:
        controller.stop()
        app.extensions["db_engine"].dispose()


def test_smtp_down_keeps_the_email_until_it_is_back(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str], fast_settings: Settings
) -> None:
    """Nothing listening: the email stays pending (retried); a server on that port gets it."""
    from .servers import free_port

    port = free_port()
    app = create_app(
        load_settings(**(fast_settings.model_dump() | {"smtp_url": f"smtp://127.0.0.1:{port}"}))
    )
    try:
        order(client, customer_headers)
        drain(app)
        (delivery,) = deliveries(app)
        assert delivery.status == "pending"
        assert delivery.attempts >= 1
        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, server_hostname="mx.test")
        controller.start()
        try:
            drain_until(app, lambda: len(inbox.received) == 1)
        finally:
            controller.stop()
        assert deliveries(app)[0].status == "delivered"
    finally:
        app.extensions["db_engine"].dispose()


def test_events_enabled_false_publishes_nothing(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str], settings: Settings
) -> None:
    """EVENTS_ENABLED=false (the bench's baseline): orders work, the outbox stays empty."""
    app = create_app(load_settings(**(settings.model_dump() | {"events_enabled": False})))
    try:
        before = events(app)
        order(app.test_client(), customer_headers)
        assert events(app) == before
    finally:
        app.extensions["db_engine"].dispose()
