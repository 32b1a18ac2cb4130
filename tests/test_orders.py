"""Cart, orders, idempotency, lifecycle and access rules, on both backends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flipkart_api import create_app
from flipkart_api.uow import UnitOfWork

from .conftest import bearer, sqlite_settings

ADDRESS = {
    "name": "Asha Verma",
    "line1": "12 MG Road",
    "city": "Bengaluru",
    "state": "Karnataka",
    "pincode": "560001",
    "phone": "9876543210",
}


@pytest.fixture
def other_headers(client: FlaskClient) -> dict[str, str]:
    """A second customer."""
    body = {"email": "vikram@example.in", "password": "another-pass-1", "name": "Vikram"}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    return bearer(client, body["email"], body["password"])


def stock(client: FlaskClient, product_id: int) -> int:
    """The product's stock as the API shows it (through the cache)."""
    value: int = client.get(f"/api/v1/products/{product_id}").get_json()["stock"]
    return value


def in_stock_ids(client: FlaskClient, count: int) -> list[int]:
    """Ids of products with at least 5 units."""
    items = client.get("/api/v1/products?in_stock=true&limit=100").get_json()["items"]
    return [p["id"] for p in items if p["stock"] >= 5][:count]


def order(client: FlaskClient, headers: dict[str, str], lines: list[tuple[int, int]], **extra: Any):  # type: ignore[no-untyped-def]
    """POST an order for (product_id, quantity) lines."""
    body = {
        "items": [{"product_id": p, "quantity": q} for p, q in lines],
        "shipping_address": ADDRESS,
    }
    return client.post("/api/v1/orders", json=body, headers=headers, **extra)


# -- cart -----------------------------------------------------------------------------
def test_cart_lifecycle(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str]
) -> None:
    a, b = in_stock_ids(client, 2)
    assert client.get("/api/v1/cart").status_code == 401
    empty = client.get("/api/v1/cart", headers=customer_headers).get_json()
    assert empty == {"items": [], "total": 0, "currency": "INR"}
    client.put(f"/api/v1/cart/items/{a}", json={"quantity": 2}, headers=customer_headers)
    cart = client.put(f"/api/v1/cart/items/{b}", json={"quantity": 1}, headers=customer_headers)
    assert cart.status_code == 200
    body = cart.get_json()
    assert [i["product_id"] for i in body["items"]] == [a, b]
    line = body["items"][0]
    assert set(line) == {"product_id", "name", "unit_price", "quantity", "line_total", "in_stock"}
    assert line["line_total"] == line["unit_price"] * 2
    assert body["total"] == sum(i["line_total"] for i in body["items"])
    changed = client.put(f"/api/v1/cart/items/{a}", json={"quantity": 5}, headers=customer_headers)
    assert changed.get_json()["items"][0]["quantity"] == 5
    after = client.delete(f"/api/v1/cart/items/{a}", headers=customer_headers).get_json()
    assert [i["product_id"] for i in after["items"]] == [b]


def test_cart_prices_are_current(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    (a,) = in_stock_ids(client, 1)
    client.put(f"/api/v1/cart/items/{a}", json={"quantity": 1}, headers=customer_headers)
    client.patch(f"/api/v1/products/{a}", json={"price": 100}, headers=admin_headers)
    assert client.get("/api/v1/cart", headers=customer_headers).get_json()["total"] == 100


@pytest.mark.parametrize(
    ("product", "quantity", "status"), [(999999, 1, 404), (1, 0, 422), (1, 11, 422), (1, "2", 422)]
)
def test_cart_rejects(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    product: int,
    quantity: Any,
    status: int,
) -> None:
    response = client.put(
        f"/api/v1/cart/items/{product}", json={"quantity": quantity}, headers=customer_headers
    )
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"


# -- placing orders -----------------------------------------------------------------------
def test_place_order_captures_prices_and_takes_stock(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    a, b = in_stock_ids(client, 2)
    before_a, before_b = stock(client, a), stock(client, b)  # also warms the cache
    response = order(client, customer_headers, [(a, 2), (b, 1)])
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/orders/{body['id']}")
    assert body["status"] == "placed"
    assert body["currency"] == "INR"
    assert set(body) == {
        "id",
        "status",
        "items",
        "total",
        "currency",
        "shipping_address",
        "created_at",
        "updated_at",
    }
    assert [(i["product_id"], i["quantity"]) for i in body["items"]] == [(a, 2), (b, 1)]
    assert set(body["items"][0]) == {
        "product_id",
        "sku",
        "name",
        "unit_price",
        "quantity",
        "line_total",
    }
    assert body["total"] == sum(i["unit_price"] * i["quantity"] for i in body["items"])
    assert body["shipping_address"]["pincode"] == "560001"
    # Stock fell, and the cached product detail shows it (invalidated by the order).
    assert (stock(client, a), stock(client, b)) == (before_a - 2, before_b - 1)
    # A later price change does not rewrite the order.
    client.patch(f"/api/v1/products/{a}", json={"price": 1}, headers=admin_headers)
    again = client.get(f"/api/v1/orders/{body['id']}", headers=customer_headers).get_json()
    assert again["items"][0]["unit_price"] == body["items"][0]["unit_price"]


def test_order_from_cart_empties_it(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str]
) -> None:
    a, b = in_stock_ids(client, 2)
    client.put(f"/api/v1/cart/items/{a}", json={"quantity": 3}, headers=customer_headers)
    client.put(f"/api/v1/cart/items/{b}", json={"quantity": 1}, headers=customer_headers)
    response = client.post(
        "/api/v1/orders",
        json={"from_cart": True, "shipping_address": ADDRESS},
        headers=customer_headers,
    )
    assert response.status_code == 201
    assert sorted((i["product_id"], i["quantity"]) for i in response.get_json()["items"]) == sorted(
        [(a, 3), (b, 1)]
    )
    assert client.get("/api/v1/cart", headers=customer_headers).get_json()["items"] == []
    empty = client.post(
        "/api/v1/orders",
        json={"from_cart": True, "shipping_address": ADDRESS},
        headers=customer_headers,
    )
    assert empty.status_code == 422


def test_out_of_stock_is_409_and_changes_nothing(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    a, b = in_stock_ids(client, 2)
    client.patch(f"/api/v1/products/{b}", json={"stock": 1}, headers=admin_headers)
    before_a = stock(client, a)
    response = order(client, customer_headers, [(a, 1), (b, 2)])
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert str(b) in response.get_json()["detail"]
    assert str(a) not in response.get_json()["detail"].split(":")[-1]
    assert (stock(client, a), stock(client, b)) == (before_a, 1)
    assert client.get("/api/v1/orders", headers=customer_headers).get_json()["items"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"items": [], "shipping_address": ADDRESS},
        {
            "items": [{"product_id": 1, "quantity": 1}, {"product_id": 1, "quantity": 2}],
            "shipping_address": ADDRESS,
        },
        {"items": [{"product_id": 999999, "quantity": 1}], "shipping_address": ADDRESS},
        {"items": [{"product_id": 1, "quantity": 0}], "shipping_address": ADDRESS},
        {
            "items": [{"product_id": 1, "quantity": 1}],
            "shipping_address": ADDRESS | {"pincode": "12345"},
        },
        {
            "items": [{"product_id": 1, "quantity": 1}],
            "shipping_address": ADDRESS | {"phone": "98765-43210"},
        },
        {
            "items": [{"product_id": 1, "quantity": 1}],
            "from_cart": True,
            "shipping_address": ADDRESS,
        },
        {"items": [{"product_id": 1, "quantity": 1}]},
        {"shipping_address": ADDRESS},
    ],
)
def test_invalid_orders_are_422(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str], body: dict[str, Any]
) -> None:
    response = client.post("/api/v1/orders", json=body, headers=customer_headers)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"]


# -- idempotency ------------------------------------------------------------------------------
def test_idempotent_replay_and_reuse(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str]
) -> None:
    a, b = in_stock_ids(client, 2)
    headers = customer_headers | {"Idempotency-Key": "checkout-7f3a"}
    first = order(client, headers, [(a, 1)])
    before = stock(client, a)
    replay = order(client, headers, [(a, 1)])
    assert first.status_code == replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert replay.get_json() == first.get_json()
    assert replay.headers["Location"] == first.headers["Location"]
    # the response built while placing is exactly what reading the order back gives
    assert client.get(first.headers["Location"], headers=customer_headers).get_json() == (
        first.get_json()
    )
    assert stock(client, a) == before
    assert len(client.get("/api/v1/orders", headers=customer_headers).get_json()["items"]) == 1
    different = order(client, headers, [(b, 1)])
    assert different.status_code == 422
    too_long = order(client, customer_headers | {"Idempotency-Key": "k" * 256}, [(a, 1)])
    assert too_long.status_code == 422


def test_a_key_past_its_ttl_is_claimed_afresh(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str]
) -> None:
    from sqlalchemy import update

    from flipkart_api import db, orm
    from flipkart_api.orders.models import IdempotencyKey

    a, b = in_stock_ids(client, 2)
    headers = customer_headers | {"Idempotency-Key": "old-key"}
    first = order(client, headers, [(a, 1)])
    ttl = seeded.config["SETTINGS"].idempotency_ttl_hours
    with seeded.app_context():
        sess = db.session()
        aged = orm.utcnow() - dt.timedelta(hours=ttl, minutes=1)
        with UnitOfWork(sess):
            sess.execute(update(IdempotencyKey).values(created_at=aged))
    again = order(client, headers, [(b, 1)])  # another body: no 422 once the key expired
    assert first.status_code == again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert again.get_json()["id"] != first.get_json()["id"]
    replay = order(client, headers, [(b, 1)])
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == again.get_json()


def test_keys_are_per_user(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    other_headers: dict[str, str],
) -> None:
    (a,) = in_stock_ids(client, 1)
    mine = order(client, customer_headers | {"Idempotency-Key": "same"}, [(a, 1)])
    theirs = order(client, other_headers | {"Idempotency-Key": "same"}, [(a, 1)])
    assert mine.status_code == theirs.status_code == 201
    assert mine.get_json()["id"] != theirs.get_json()["id"]
    assert "Idempotent-Replayed" not in theirs.headers


# -- reading ------------------------------------------------------------------------------------
def test_listing_is_own_newest_first_and_paginated(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    other_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    (a,) = in_stock_ids(client, 1)
    mine = [order(client, customer_headers, [(a, 1)]).get_json()["id"] for _ in range(5)]
    theirs = order(client, other_headers, [(a, 1)]).get_json()["id"]
    seen, url = [], "/api/v1/orders?limit=2"
    while url:
        page = client.get(url, headers=customer_headers).get_json()
        seen += [o["id"] for o in page["items"]]
        url = f"/api/v1/orders?limit=2&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    assert seen == mine[::-1]
    everything = client.get("/api/v1/orders?limit=100", headers=admin_headers).get_json()["items"]
    assert {o["id"] for o in everything} == set(mine) | {theirs}
    assert client.get(f"/api/v1/orders/{theirs}", headers=customer_headers).status_code == 404
    assert client.get(f"/api/v1/orders/{theirs}", headers=admin_headers).status_code == 200
    assert client.get("/api/v1/orders/999999", headers=customer_headers).status_code == 404
    assert client.get("/api/v1/orders?cursor=garbage", headers=customer_headers).status_code == 422


# -- lifecycle ----------------------------------------------------------------------------------
ALLOWED = [
    ("placed", "confirmed"),
    ("confirmed", "shipped"),
    ("shipped", "delivered"),
    ("placed", "cancelled"),
    ("confirmed", "cancelled"),
]
# How to reach each status from 'placed'.
PATHS = {
    "placed": [],
    "confirmed": ["confirmed"],
    "shipped": ["confirmed", "shipped"],
    "delivered": ["confirmed", "shipped", "delivered"],
    "cancelled": ["cancelled"],
}
STATUSES = list(PATHS)


@pytest.mark.parametrize("start", STATUSES)
def test_every_transition(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    admin_headers: dict[str, str],
    start: str,
) -> None:
    (a,) = in_stock_ids(client, 1)
    for target in STATUSES:
        oid = order(client, customer_headers, [(a, 1)]).get_json()["id"]
        for step in PATHS[start]:
            assert (
                client.post(
                    f"/api/v1/orders/{oid}/status", json={"status": step}, headers=admin_headers
                ).status_code
                == 200
            )
        response = client.post(
            f"/api/v1/orders/{oid}/status", json={"status": target}, headers=admin_headers
        )
        expected = 200 if (start, target) in ALLOWED else 409
        assert response.status_code == expected, (start, target)
        if expected == 200:
            assert response.get_json()["status"] == target


def test_cancel_restores_stock_exactly_once(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    other_headers: dict[str, str],
) -> None:
    a, b = in_stock_ids(client, 2)
    before = stock(client, a), stock(client, b)
    oid = order(client, customer_headers, [(a, 3), (b, 1)]).get_json()["id"]
    assert client.post(f"/api/v1/orders/{oid}/cancel", headers=other_headers).status_code == 404
    cancelled = client.post(f"/api/v1/orders/{oid}/cancel", headers=customer_headers)
    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "cancelled"
    assert (stock(client, a), stock(client, b)) == before
    again = client.post(f"/api/v1/orders/{oid}/cancel", headers=customer_headers)
    assert again.status_code == 409
    assert (stock(client, a), stock(client, b)) == before


def test_customers_cannot_drive_the_lifecycle(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    (a,) = in_stock_ids(client, 1)
    oid = order(client, customer_headers, [(a, 1)]).get_json()["id"]
    forbidden = client.post(
        f"/api/v1/orders/{oid}/status", json={"status": "shipped"}, headers=customer_headers
    )
    assert forbidden.status_code == 403
    client.post(f"/api/v1/orders/{oid}/status", json={"status": "confirmed"}, headers=admin_headers)
    client.post(f"/api/v1/orders/{oid}/status", json={"status": "shipped"}, headers=admin_headers)
    assert client.post(f"/api/v1/orders/{oid}/cancel", headers=customer_headers).status_code == 409
    bogus = client.post(
        f"/api/v1/orders/{oid}/status", json={"status": "lost"}, headers=admin_headers
    )
    assert bogus.status_code == 422


# -- rate limits ----------------------------------------------------------------------------------
def test_rate_limit_is_429_problem_with_retry_after(tmp_path, sqlite_template) -> None:  # type: ignore[no-untyped-def]
    app = create_app(
        sqlite_settings(
            tmp_path, sqlite_template, ratelimit_enabled=True, ratelimit_register="2/minute"
        )
    )
    client = app.test_client()
    codes = []
    for i in range(3):
        body = {"email": f"user{i}@example.in", "password": "password-123", "name": "U"}
        response = client.post("/api/v1/auth/register", json=body)
        codes.append(response.status_code)
    assert codes == [201, 201, 429]
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
