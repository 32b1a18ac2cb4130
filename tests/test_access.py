"""Access control: admin routes from the OpenAPI document, IDOR, deleted users, login timing."""

from __future__ import annotations

import statistics
import time
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete

from flipkart_api.auth.models import User
from flipkart_api.db import session
from flipkart_api.uow import UnitOfWork

from .conftest import bearer
from .test_orders import ADDRESS, in_stock_ids, order

# Sample path values and bodies: enough to get past validation to the authorization check.
PATH_VALUES = {"product_id": "1", "order_id": "1"}


def _admin_operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, path) of every operation whose security requires the admin role."""
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for requirement in operation.get("security", []):
                if "admin" in requirement.get("BearerAuth", []):
                    found.append((method, path))
    return found


def test_customers_get_403_on_every_admin_route(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str]
) -> None:
    spec = client.get("/openapi.json").get_json()
    operations = _admin_operations(spec)
    assert len(operations) >= 5  # categories, products x3, order status (guards the lookup)
    for method, path in operations:
        url = path.format(**PATH_VALUES)
        response = client.open(url, method=method.upper(), json={}, headers=customer_headers)
        assert response.status_code == 403, (method, path, response.status_code)
        anonymous = client.open(url, method=method.upper(), json={})
        assert anonymous.status_code == 401, (method, path)


def test_no_user_reaches_another_users_order_or_cart(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str]
) -> None:
    intruder = {"email": "mallory@example.in", "password": "mallory-pass-1", "name": "Mallory"}
    client.post("/api/v1/auth/register", json=intruder)
    mallory = bearer(client, intruder["email"], intruder["password"])
    a, b = in_stock_ids(client, 2)
    client.put(f"/api/v1/cart/items/{a}", json={"quantity": 2}, headers=customer_headers)
    victim_order = order(client, customer_headers, [(b, 1)]).get_json()["id"]
    # Every id-taking route a customer may call, aimed at the victim's order.
    assert client.get(f"/api/v1/orders/{victim_order}", headers=mallory).status_code == 404
    assert client.post(f"/api/v1/orders/{victim_order}/cancel", headers=mallory).status_code == 404
    status = client.post(
        f"/api/v1/orders/{victim_order}/status", json={"status": "cancelled"}, headers=mallory
    )
    assert status.status_code == 403
    assert all(
        o["id"] != victim_order
        for o in client.get("/api/v1/orders", headers=mallory).get_json()["items"]
    )
    # Carts are addressed by the token, never by a user id: Mallory only ever sees her own.
    client.delete(f"/api/v1/cart/items/{a}", headers=mallory)
    assert client.get("/api/v1/cart", headers=mallory).get_json()["items"] == []
    victim_cart = client.get("/api/v1/cart", headers=customer_headers).get_json()["items"]
    assert [(i["product_id"], i["quantity"]) for i in victim_cart] == [(a, 2)]
    mallory_order = client.post(
        "/api/v1/orders", json={"from_cart": True, "shipping_address": ADDRESS}, headers=mallory
    )
    assert mallory_order.status_code == 422  # her own, empty cart; not the victim's
    assert (
        client.get(f"/api/v1/orders/{victim_order}", headers=customer_headers).get_json()["status"]
        == "placed"
    )


def test_token_of_a_deleted_user_is_rejected(
    app: Flask, client: FlaskClient, customer_headers: dict[str, str]
) -> None:
    assert client.get("/api/v1/users/me", headers=customer_headers).status_code == 200
    with app.app_context(), UnitOfWork(session()):
        session().execute(delete(User).where(User.email == "asha@example.in"))
    assert client.get("/api/v1/users/me", headers=customer_headers).status_code == 401


def test_login_timing_does_not_reveal_whether_an_email_exists(client: FlaskClient) -> None:
    """Unknown emails do the same argon2 work: median CPU times within 35% of each other.

    CPU time of this process (the app runs in it), sampled alternately, so the load of a
    shared machine cannot tilt one side; wall time would measure the neighbours too.
    """
    client.post(
        "/api/v1/auth/register",
        json={"email": "known@example.in", "password": "known-pass-1", "name": "K"},
    )
    samples: dict[str, list[float]] = {"known@example.in": [], "nobody@example.in": []}
    for _ in range(11):
        for email, times in samples.items():
            started = time.process_time()
            response = client.post(
                "/api/v1/auth/token", json={"email": email, "password": "wrong-pass-1"}
            )
            times.append((time.process_time() - started) * 1000)
            assert response.status_code == 401
    known, unknown = (statistics.median(times) for times in samples.values())
    assert known > 5, "a login should cost argon2 work"
    assert 0.65 < unknown / known < 1.35, (known, unknown)
