"""Access control: every route against a table of who may call it, IDOR, deleted users, timing."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete

from flipkart_api.auth.models import User
from flipkart_api.auth.routes import bearer as bearer_auth
from flipkart_api.auth.service import create_admin
from flipkart_api.db import session
from flipkart_api.uow import UnitOfWork

from .conftest import ADMIN as ADMIN_USER
from .conftest import bearer
from .test_orders import ADDRESS, in_stock_ids, order

PUBLIC, USER, ADMIN = "anyone", "a signed-in user", "an admin"
# Who may call each route of the app, written down here and not read from the routes' own
# security metadata: a route that forgets `roles=["admin"]` would otherwise vouch for itself.
# Every route in the URL map must be listed, so a new one is a decision in this table.
EXPECTED_ACCESS: dict[tuple[str, str], str] = {
    ("GET", "/static/<path:filename>"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/docs/assets/<version>/<name>"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("GET", "/health"): PUBLIC,
    ("GET", "/livez"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("POST", "/api/v1/auth/register"): PUBLIC,
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): USER,
    ("GET", "/api/v1/users/me"): USER,
    ("POST", "/api/v1/users/me/password"): USER,
    ("GET", "/api/v1/categories"): PUBLIC,
    ("POST", "/api/v1/categories"): ADMIN,
    ("GET", "/api/v1/products"): PUBLIC,
    ("GET", "/api/v1/products/<int:product_id>"): PUBLIC,
    ("GET", "/api/v1/search/suggest"): PUBLIC,
    ("POST", "/api/v1/products"): ADMIN,
    ("PATCH", "/api/v1/products/<int:product_id>"): ADMIN,
    ("DELETE", "/api/v1/products/<int:product_id>"): ADMIN,
    ("GET", "/api/v1/cart"): USER,
    ("PUT", "/api/v1/cart/items/<int:product_id>"): USER,
    ("DELETE", "/api/v1/cart/items/<int:product_id>"): USER,
    ("POST", "/api/v1/orders"): USER,
    ("GET", "/api/v1/orders"): USER,
    ("GET", "/api/v1/orders/<int:order_id>"): USER,
    ("POST", "/api/v1/orders/<int:order_id>/cancel"): USER,
    ("POST", "/api/v1/orders/<int:order_id>/status"): ADMIN,
    ("POST", "/api/v1/webhooks"): ADMIN,
    ("GET", "/api/v1/webhooks"): ADMIN,
    ("GET", "/api/v1/webhooks/<int:endpoint_id>"): ADMIN,
    ("PATCH", "/api/v1/webhooks/<int:endpoint_id>"): ADMIN,
    ("DELETE", "/api/v1/webhooks/<int:endpoint_id>"): ADMIN,
    ("POST", "/api/v1/webhooks/<int:endpoint_id>/rotate-secret"): ADMIN,
    ("GET", "/api/v1/webhooks/<int:endpoint_id>/deliveries"): ADMIN,
    ("GET", "/api/v1/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>"): ADMIN,
    ("POST", "/api/v1/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/redeliver"): ADMIN,
}
CUSTOMER = {"email": "asha@example.in", "password": "correct-horse-1", "name": "Asha"}
# Sample path values: enough to get past routing to the authorization check.
PATH_VALUES = {
    "product_id": "1", "order_id": "1", "filename": "x.css", "version": "1", "name": "x",
    "endpoint_id": "1", "delivery_id": "1",
}  # fmt: skip
DENIED = (401, 403)


def app_routes(app: Flask) -> list[tuple[str, str]]:
    """(method, rule) of every route in the app's URL map; HEAD and OPTIONS are Flask's."""
    return sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    )


def _url(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: PATH_VALUES[m.group(1)], rule)


def access_violations(
    app: Flask,
    client: FlaskClient,
    customer: dict[str, str],
    admin: dict[str, str],
    expected: dict[tuple[str, str], str],
) -> list[str]:
    """Every way the app's routes differ from `expected`, as sentences (empty: none)."""
    routes = app_routes(app)
    problems = [f"{m} {r} is not in the access table" for m, r in routes if (m, r) not in expected]
    problems += [f"{m} {r} is listed but not routed" for m, r in expected if (m, r) not in routes]
    # Logout revokes the token the other checks use: it goes last.
    ordered = sorted(routes, key=lambda route: route == ("POST", "/api/v1/auth/logout"))
    for method, rule in ordered:
        if (method, rule) not in expected:
            continue
        needs = expected[method, rule]

        def status(headers: dict[str, str] | None, method: str = method, rule: str = rule) -> int:
            body = {} if method in ("POST", "PUT", "PATCH") else None
            return client.open(_url(rule), method=method, json=body, headers=headers).status_code

        anonymous, as_customer, as_admin = status(None), status(customer), status(admin)
        if needs == PUBLIC and anonymous in DENIED:
            problems.append(f"{method} {rule} is for {needs}, but anonymous got {anonymous}")
        if needs != PUBLIC and anonymous != 401:
            problems.append(f"{method} {rule} is for {needs}, but anonymous got {anonymous}")
        if needs == ADMIN and as_customer != 403:
            problems.append(f"{method} {rule} is for {needs}, but a customer got {as_customer}")
        if needs != ADMIN and as_customer in DENIED:
            problems.append(f"{method} {rule} is for {needs}, but a customer got {as_customer}")
        if as_admin in DENIED:
            problems.append(f"{method} {rule} is for {needs}, but an admin got {as_admin}")
    return problems


def test_every_route_answers_only_whom_the_access_table_allows(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    assert sum(role == ADMIN for role in EXPECTED_ACCESS.values()) >= 5
    assert access_violations(seeded, client, customer_headers, admin_headers, EXPECTED_ACCESS) == []


Mistake = tuple[dict[tuple[str, str], str], list[str]]  # the table, the complaints expected


def _forgot_the_role(app: Flask) -> Mistake:
    """An admin route whose author left out roles=["admin"]."""
    app.add_url_rule(
        "/api/v1/admin/reindex",
        "forgot_role",
        app.auth_required(bearer_auth)(lambda: {"reindexed": True}),  # type: ignore[attr-defined]
        methods=["POST"],
    )
    table = EXPECTED_ACCESS | {("POST", "/api/v1/admin/reindex"): ADMIN}
    return table, ["POST /api/v1/admin/reindex is for an admin, but a customer got 200"]


def _forgot_auth(app: Flask) -> Mistake:
    """An admin route with no auth at all."""
    app.add_url_rule("/api/v1/admin/export", "forgot_auth", lambda: {"rows": []})
    table = EXPECTED_ACCESS | {("GET", "/api/v1/admin/export"): ADMIN}
    return table, [
        "GET /api/v1/admin/export is for an admin, but anonymous got 200",
        "GET /api/v1/admin/export is for an admin, but a customer got 200",
    ]


def _not_in_the_table(app: Flask) -> Mistake:
    """A new route nobody classified (its role is right, but that was luck, not a test)."""
    view = app.auth_required(bearer_auth, roles=["admin"])(lambda: {})  # type: ignore[attr-defined]
    app.add_url_rule("/api/v1/admin/purge", "unlisted", view, methods=["DELETE"])
    return EXPECTED_ACCESS, ["DELETE /api/v1/admin/purge is not in the access table"]


@pytest.mark.parametrize("backend", ["sqlite"])  # a check of the check: one backend is enough
@pytest.mark.parametrize("mistake", [_forgot_the_role, _forgot_auth, _not_in_the_table])
def test_the_access_check_catches_a_route_that_gets_it_wrong(
    app: Flask, client: FlaskClient, mistake: Callable[[Flask], Mistake]
) -> None:
    """Self-check: the same check on an app with one wrong route names exactly that route."""
    table, complaints = mistake(app)  # before the first request: Flask takes no routes after
    with app.app_context():
        create_admin(session(), ADMIN_USER["email"], ADMIN_USER["password"])
    client.post("/api/v1/auth/register", json=CUSTOMER)
    customer = bearer(client, CUSTOMER["email"], CUSTOMER["password"])
    admin = bearer(client, ADMIN_USER["email"], ADMIN_USER["password"])
    assert access_violations(app, client, customer, admin, table) == complaints


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
