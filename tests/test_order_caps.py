"""Open-order caps: a customer's unconfirmed orders hold at most 5 orders and 50 units."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flipkart_api import create_app
from flipkart_api.auth.service import create_admin
from flipkart_api.db import session
from flipkart_api.settings import load_settings

from .conftest import bearer, sqlite_settings
from .test_orders import ADDRESS, order, stock


def _products(client: FlaskClient, admin: dict[str, str], count: int) -> list[int]:
    """Products with plenty of stock, so only the caps can refuse an order."""
    client.post("/api/v1/categories", json={"name": "Hoard"}, headers=admin)
    ids = []
    for i in range(count):
        body = {
            "sku": f"HOARD-{i}",
            "name": f"Hoardable {i}",
            "category": "hoard",
            "price": 100,
            "mrp": 100,
            "stock": 1000,
        }
        response = client.post("/api/v1/products", json=body, headers=admin)
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["id"])
    return ids


def _status(client: FlaskClient, admin: dict[str, str], order_id: int, status: str) -> None:
    path = f"/api/v1/orders/{order_id}/status"
    assert client.post(path, json={"status": status}, headers=admin).status_code == 200


def test_five_unconfirmed_orders_then_409_until_one_is_freed(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    (a,) = _products(client, admin_headers, 1)
    keys = [{"Idempotency-Key": f"cap-{i}"} for i in range(5)]
    placed = [order(client, customer_headers | k, [(a, 1)]) for k in keys]
    assert [r.status_code for r in placed] == [201] * 5
    before = stock(client, a)
    refused = order(client, customer_headers, [(a, 1)])
    assert refused.status_code == 409
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["detail"].startswith(
        "You have 5 unconfirmed orders, the most allowed;"
    )
    assert stock(client, a) == before  # nothing was reserved
    # A replay creates nothing, so the cap does not stand in its way.
    replay = order(client, customer_headers | keys[0], [(a, 1)])
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    # Another customer has slots of their own.
    other = {"email": "neha@example.in", "password": "another-pass-1", "name": "Neha"}
    assert client.post("/api/v1/auth/register", json=other).status_code == 201
    other_headers = bearer(client, other["email"], other["password"])
    assert order(client, other_headers, [(a, 1)]).status_code == 201
    # An admin's confirmation frees a slot; so does the customer's cancel.
    _status(client, admin_headers, placed[0].get_json()["id"], "confirmed")
    assert order(client, customer_headers, [(a, 1)]).status_code == 201
    assert order(client, customer_headers, [(a, 1)]).status_code == 409
    cancel = f"/api/v1/orders/{placed[1].get_json()['id']}/cancel"
    assert client.post(cancel, headers=customer_headers).status_code == 200
    assert order(client, customer_headers, [(a, 1)]).status_code == 201
    # A confirmed order that is later cancelled by an admin never held a slot twice.
    _status(client, admin_headers, placed[0].get_json()["id"], "cancelled")
    assert order(client, customer_headers, [(a, 1)]).status_code == 409


def test_fifty_units_in_unconfirmed_orders_then_409(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    ids = _products(client, admin_headers, 6)
    twenty = [(ids[0], 10), (ids[1], 10)]
    assert order(client, customer_headers, twenty).status_code == 201
    assert order(client, customer_headers, twenty).status_code == 201
    refused = order(client, customer_headers, [(ids[2], 10), (ids[3], 1)])
    assert refused.status_code == 409
    detail = refused.get_json()["detail"]
    assert "hold 40 units and this order 11; at most 50 units" in detail
    assert order(client, customer_headers, [(ids[2], 10)]).status_code == 201  # exactly 50
    assert order(client, customer_headers, [(ids[2], 1)]).status_code == 409
    # One order larger than the cap can never be placed, whatever is open.
    other = {"email": "neha@example.in", "password": "another-pass-1", "name": "Neha"}
    assert client.post("/api/v1/auth/register", json=other).status_code == 201
    other_headers = bearer(client, other["email"], other["password"])
    huge = order(client, other_headers, [(pid, 10) for pid in ids])
    assert huge.status_code == 409
    assert huge.get_json()["detail"].startswith("This order holds 60 units; at most 50")


def test_orders_from_the_cart_count_too(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    ids = _products(client, admin_headers, 6)
    for pid in ids:
        client.put(f"/api/v1/cart/items/{pid}", json={"quantity": 10}, headers=customer_headers)
    from_cart = {"from_cart": True, "shipping_address": ADDRESS}
    response = client.post("/api/v1/orders", json=from_cart, headers=customer_headers)
    assert response.status_code == 409
    assert "60 units" in response.get_json()["detail"]
    cart = client.get("/api/v1/cart", headers=customer_headers).get_json()
    assert len(cart["items"]) == 6  # the cart is kept for the customer to trim


def test_zero_turns_the_caps_off(tmp_path: Path, sqlite_template: Path) -> None:
    settings = sqlite_settings(
        tmp_path, sqlite_template, orders_max_open=0, orders_max_open_units=0
    )
    app = create_app(settings)
    client = app.test_client()
    with app.app_context():
        create_admin(session(), "admin@example.in", "admin-password-1")
    admin = bearer(client, "admin@example.in", "admin-password-1")
    ids = _products(client, admin, 6)
    codes = [order(client, admin, [(pid, 10) for pid in ids]).status_code for _ in range(7)]
    assert codes == [201] * 7
    app.extensions["db_engine"].dispose()


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, (5, 50)), ({"ORDERS_MAX_OPEN": "2", "ORDERS_MAX_OPEN_UNITS": "0"}, (2, 0))],
)
def test_cap_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: tuple[int, int]
) -> None:
    for name in ("ORDERS_MAX_OPEN", "ORDERS_MAX_OPEN_UNITS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(app_env="test")
    assert (settings.orders_max_open, settings.orders_max_open_units) == expected
