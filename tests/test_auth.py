"""Registration, tokens, /users/me and admin creation."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from flipkart_api.auth.service import create_admin
from flipkart_api.db import session
from flipkart_api.errors import InvalidInput

from .conftest import bearer

USER = {"email": "Ravi.Kumar@Example.in", "password": "s3cret-pass", "name": "Ravi Kumar"}


def test_register_returns_customer(client: FlaskClient) -> None:
    response = client.post("/api/v1/auth/register", json=USER)
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "email", "name", "role", "created_at"}
    assert body["role"] == "customer"
    assert body["email"] == "ravi.kumar@example.in"
    assert "password" not in response.get_data(as_text=True)


def test_email_unique_case_insensitively(client: FlaskClient) -> None:
    assert client.post("/api/v1/auth/register", json=USER).status_code == 201
    again = dict(USER, email=USER["email"].upper())
    response = client.post("/api/v1/auth/register", json=again)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"


def test_register_validation(client: FlaskClient) -> None:
    short = client.post("/api/v1/auth/register", json=dict(USER, password="short"))
    assert short.status_code == 422
    assert short.get_json()["errors"][0]["field"] == "password"
    bad_email = client.post("/api/v1/auth/register", json=dict(USER, email="not-an-email"))
    assert bad_email.status_code == 422
    extra = client.post("/api/v1/auth/register", json=dict(USER, role="admin"))
    assert extra.status_code == 422  # nobody registers themselves as admin


def test_token_and_me(client: FlaskClient) -> None:
    client.post("/api/v1/auth/register", json=USER)
    response = client.post(
        "/api/v1/auth/token", json={"email": USER["email"], "password": USER["password"]}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.get_json()["email"] == "ravi.kumar@example.in"


def test_wrong_password_and_unknown_email_look_the_same(client: FlaskClient) -> None:
    client.post("/api/v1/auth/register", json=USER)
    wrong = client.post(
        "/api/v1/auth/token", json={"email": USER["email"], "password": "nope-nope"}
    )
    unknown = client.post(
        "/api/v1/auth/token", json={"email": "nobody@example.in", "password": "nope-nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()


def test_me_rejects_missing_invalid_expired_and_forged_tokens(
    app: Flask, client: FlaskClient
) -> None:
    client.post("/api/v1/auth/register", json=USER)
    secret = app.config["SETTINGS"].effective_secret_key
    now = dt.datetime.now(dt.UTC)
    expired = jwt.encode(
        {
            "sub": "1",
            "iat": now - dt.timedelta(hours=2),
            "exp": now - dt.timedelta(hours=1),
            "typ": "access",
        },
        secret,
        algorithm="HS256",
    )
    forged = jwt.encode(
        {"sub": "1", "iat": now, "exp": now + dt.timedelta(hours=1), "typ": "access"},
        "a-different-secret-key-that-is-long-enough",
        algorithm="HS256",
    )
    unsigned = jwt.encode(
        {"sub": "1", "iat": now, "exp": now + dt.timedelta(hours=1), "typ": "access"},
        None,
        algorithm="none",
    )
    for headers in (
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": f"Bearer {unsigned}"},
    ):
        response = client.get("/api/v1/users/me", headers=headers)
        assert response.status_code == 401, headers
        assert response.mimetype == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_create_admin_creates_then_promotes_idempotently(app: Flask, client: FlaskClient) -> None:
    client.post("/api/v1/auth/register", json=USER)
    with app.app_context():
        promoted = create_admin(session(), USER["email"], "new-admin-pass")
        assert (promoted.user.role, promoted.created) == ("admin", False)
        again = create_admin(session(), USER["email"], "new-admin-pass")
        assert (again.user.id, again.created) == (promoted.user.id, False)
        fresh = create_admin(session(), "boss@example.in", "boss-password")
        assert (fresh.user.role, fresh.created) == ("admin", True)
    # Promotion kept the user's own password: a new one is set only on request.
    headers = bearer(client, USER["email"], USER["password"])
    assert client.get("/api/v1/users/me", headers=headers).get_json()["role"] == "admin"
    assert (
        client.post(
            "/api/v1/auth/token", json={"email": USER["email"], "password": "new-admin-pass"}
        ).status_code
        == 401
    )


def test_create_admin_resets_a_password_only_when_asked(app: Flask, client: FlaskClient) -> None:
    client.post("/api/v1/auth/register", json=USER)
    old = bearer(client, USER["email"], USER["password"])
    with app.app_context():
        create_admin(session(), USER["email"], "reset-admin-pass", reset_password=True)
    assert client.get("/api/v1/users/me", headers=old).status_code == 401  # revoked
    headers = bearer(client, USER["email"], "reset-admin-pass")
    assert client.get("/api/v1/users/me", headers=headers).get_json()["role"] == "admin"


def test_create_admin_validates_the_email_like_the_api(app: Flask) -> None:
    with app.app_context():
        for bad in ("not-an-email", "two@@example.in", "a@b", "x" * 320 + "@example.in"):
            with pytest.raises(InvalidInput, match="email"):
                create_admin(session(), bad, "admin-password-1")
