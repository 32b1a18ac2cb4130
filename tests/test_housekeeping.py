"""Housekeeping and the events nobody sees directly: stock.low, user.registered, expiry.

Both backends. The housekeeping run is the one the worker schedules every minute
(events/housekeeping.py), called here directly with the clock moved by the data.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from flipkart_api.auth.models import RevokedToken
from flipkart_api.catalog.models import Product
from flipkart_api.db import session
from flipkart_api.events.housekeeping import run_housekeeping
from flipkart_api.events.models import Delivery, OutboxEvent
from flipkart_api.orders.models import IdempotencyKey, Order
from flipkart_api.orm import utcnow
from flipkart_api.uow import UnitOfWork

from .test_events import ADDRESS, events


def _order(
    client: FlaskClient, headers: dict[str, str], quantity: int, key: str | None = None
) -> Any:
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(
        "/api/v1/orders",
        json={"items": [{"product_id": 1, "quantity": quantity}], "shipping_address": ADDRESS},
        headers=headers | extra,
    )


def _set_stock(app: Flask, stock: int) -> None:
    with app.app_context():
        sess = session()
        with UnitOfWork(sess):
            sess.execute(update(Product).where(Product.id == 1).values(stock=stock))


def _age(app: Flask, model: Any, column: Any, hours: float) -> None:
    """Move every row's `column` back by `hours` (the data gets old, not the clock)."""
    with app.app_context():
        sess = session()
        with UnitOfWork(sess):
            sess.execute(update(model).values({column: utcnow() - dt.timedelta(hours=hours)}))


def test_stock_low_is_published_once_when_an_order_crosses_the_threshold(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str]
) -> None:
    """7 -> 6 (above 5): nothing; 6 -> 4: stock.low; 4 -> 3: nothing more."""
    _set_stock(seeded, 7)
    for quantity in (1, 2, 1):
        assert _order(client, customer_headers, quantity).status_code == 201
    assert [e for e in events(seeded) if e[0] == "stock.low"] == [("stock.low", "product:1")]
    with seeded.app_context():
        payload = session().scalar(
            select(OutboxEvent.payload).where(OutboxEvent.type == "stock.low")
        )
    assert payload == {"product_id": 1, "sku": payload["sku"], "stock": 4, "threshold": 5}


def test_registering_publishes_user_registered(client: FlaskClient, app: Flask) -> None:
    """The sign-up and its event commit together."""
    body = {"email": "new@example.in", "password": "correct-horse-1", "name": "New"}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    assert client.post("/api/v1/auth/register", json=body).status_code == 409
    assert [e for e in events(app) if e[0] == "user.registered"] == [("user.registered", "user:1")]


def test_unconfirmed_orders_are_cancelled_with_their_stock_back(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    """Past ORDER_CONFIRM_TIMEOUT_MINUTES a placed order is cancelled; a confirmed one stays."""
    _set_stock(seeded, 100)
    stale = _order(client, customer_headers, 3).get_json()["id"]
    kept = _order(client, customer_headers, 2).get_json()["id"]
    assert (
        client.post(
            f"/api/v1/orders/{kept}/status", json={"status": "confirmed"}, headers=admin_headers
        ).status_code
        == 200
    )
    _age(seeded, Order, "created_at", hours=25)
    settings = seeded.config["SETTINGS"]
    with seeded.app_context():
        done = run_housekeeping(session(), settings)
        sess = session()
        statuses = dict(sess.execute(select(Order.id, Order.status)).all())
        stock = sess.scalar(select(Product.stock).where(Product.id == 1))
    assert done["unconfirmed_orders"] == 1
    assert statuses == {stale: "cancelled", kept: "confirmed"}
    assert stock == 98
    with seeded.app_context():
        cancelled = session().scalar(
            select(OutboxEvent.payload).where(OutboxEvent.type == "order.cancelled")
        )
    assert cancelled["reason"] == "unconfirmed"
    assert cancelled["previous_status"] == "placed"


def test_expired_keys_tokens_and_old_delivered_events_are_purged(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str]
) -> None:
    """What grew forever: keys past their TTL, revoked tokens past expiry, old finished events."""
    assert _order(client, customer_headers, 1, key="k-1").status_code == 201
    assert client.post("/api/v1/auth/logout", json={}, headers=customer_headers).status_code == 204
    settings = seeded.config["SETTINGS"]
    with seeded.app_context():
        sess = session()
        with UnitOfWork(sess):
            pending_event = OutboxEvent(
                event_id="evt_pending", type="order.placed", subject="order:999",
                payload={}, created_at=utcnow(), dispatched_at=utcnow(),
            )  # fmt: skip
            sess.add(pending_event)
            sess.flush()
            sess.add(
                Delivery(
                    event_id=pending_event.id, channel="webhook", lock_key="x", status="pending"
                )
            )
    _age(seeded, IdempotencyKey, "created_at", hours=settings.idempotency_ttl_hours + 1)
    _age(seeded, RevokedToken, "expires_at", hours=1)
    _age(seeded, OutboxEvent, "created_at", hours=24 * (settings.event_retention_days + 1))
    with seeded.app_context():
        with UnitOfWork(session()):
            session().execute(update(OutboxEvent).values(dispatched_at=utcnow()))
        done = run_housekeeping(session(), settings)
        sess = session()
        left = {
            "keys": sess.scalar(select(func.count()).select_from(IdempotencyKey)),
            "tokens": sess.scalar(select(func.count()).select_from(RevokedToken)),
            "events": list(sess.scalars(select(OutboxEvent.event_id))),
        }
    assert done["idempotency_keys"] == 1
    assert done["revoked_tokens"] == 1
    # Everything old and finished goes; an event with a delivery still pending stays.
    assert left == {"keys": 0, "tokens": 0, "events": ["evt_pending"]}
