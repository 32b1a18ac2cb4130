"""Token revocation (logout, password and role changes), issuer/audience, 401/403 details."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from flipkart_api.auth.models import RevokedToken, User
from flipkart_api.auth.service import set_role
from flipkart_api.db import engine, session
from flipkart_api.uow import UnitOfWork

from .conftest import ADMIN, bearer

USER = {"email": "meera@example.in", "password": "meera-pass-1", "name": "Meera"}
ME = "/api/v1/users/me"


@pytest.fixture
def user(client: FlaskClient) -> dict[str, str]:
    assert client.post("/api/v1/auth/register", json=USER).status_code == 201
    return USER


def _detail(client: FlaskClient, headers: dict[str, str], url: str = ME) -> str:
    response = client.get(url, headers=headers)
    assert response.status_code == 401, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    detail: str = response.get_json()["detail"]
    return detail


def _claims(app: Flask, **changes: Any) -> dict[str, Any]:
    """Claims as the app would sign them for user 1, with `changes` applied."""
    settings = app.config["SETTINGS"]
    now = dt.datetime.now(dt.UTC)
    claims = {
        "sub": "1",
        "ver": 0,
        "jti": "some-token-id",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + dt.timedelta(hours=1),
        "typ": "access",
    }
    return claims | changes


def _sign(app: Flask, claims: dict[str, Any], key: str | None = None) -> dict[str, str]:
    token = jwt.encode(claims, key or app.config["SETTINGS"].effective_secret_key, "HS256")
    return {"Authorization": f"Bearer {token}"}


def test_tokens_carry_version_id_issuer_and_audience(
    app: Flask, client: FlaskClient, user: dict[str, str]
) -> None:
    token = bearer(client, user["email"], user["password"])["Authorization"].split()[1]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["ver"] == 0
    assert len(claims["jti"]) >= 16
    assert claims["iss"] == claims["aud"] == "flipkart-api"


def test_logout_revokes_this_token_only(client: FlaskClient, user: dict[str, str]) -> None:
    first = bearer(client, user["email"], user["password"])
    second = bearer(client, user["email"], user["password"])
    assert client.post("/api/v1/auth/logout", headers=first).status_code == 415  # JSON or nothing
    assert client.get(ME, headers=first).status_code == 200
    response = client.post("/api/v1/auth/logout", json={}, headers=first)
    assert response.status_code == 204
    assert (response.get_data(), response.headers.get("Content-Type")) == (b"", None)
    assert "revoked" in _detail(client, first)
    assert client.get(ME, headers=second).status_code == 200
    assert client.post("/api/v1/auth/logout", json={}, headers=first).status_code == 401


def test_logout_all_revokes_every_token_of_the_user(
    client: FlaskClient, user: dict[str, str], admin_headers: dict[str, str]
) -> None:
    first = bearer(client, user["email"], user["password"])
    second = bearer(client, user["email"], user["password"])
    response = client.post("/api/v1/auth/logout", json={"all": True}, headers=first)
    assert response.status_code == 204
    assert "revoked" in _detail(client, first)
    assert "revoked" in _detail(client, second)
    assert client.get(ME, headers=admin_headers).status_code == 200  # other users keep theirs
    fresh = bearer(client, user["email"], user["password"])
    assert client.get(ME, headers=fresh).status_code == 200


def test_logout_rejects_unknown_fields(client: FlaskClient, user: dict[str, str]) -> None:
    headers = bearer(client, user["email"], user["password"])
    response = client.post("/api/v1/auth/logout", json={"everything": True}, headers=headers)
    assert response.status_code == 422
    assert client.get(ME, headers=headers).status_code == 200


def test_denylist_is_read_in_the_query_that_loads_the_user(
    app: Flask, client: FlaskClient, user: dict[str, str]
) -> None:
    headers = bearer(client, user["email"], user["password"])
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    with app.app_context():
        eng = engine()
    event.listen(eng, "before_cursor_execute", record)
    try:
        assert client.get(ME, headers=headers).status_code == 200
    finally:
        event.remove(eng, "before_cursor_execute", record)
    reads = [s for s in statements if "users" in s or "revoked_tokens" in s]
    assert len(reads) == 1, statements
    assert "revoked_tokens" in reads[0]


def test_logout_purges_expired_denylist_rows(
    app: Flask, client: FlaskClient, user: dict[str, str]
) -> None:
    headers = bearer(client, user["email"], user["password"])
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    with app.app_context():
        user_id = session().scalar(select(User.id).where(User.email == user["email"]))
        with UnitOfWork(session()):
            session().add(RevokedToken(jti="long-expired", user_id=user_id, expires_at=past))
    assert client.post("/api/v1/auth/logout", json={}, headers=headers).status_code == 204
    with app.app_context():
        left = session().scalars(select(RevokedToken.jti)).all()
    assert len(left) == 1
    assert left[0] != "long-expired"


def test_password_change_revokes_old_tokens_and_returns_a_fresh_one(
    client: FlaskClient, user: dict[str, str]
) -> None:
    old = bearer(client, user["email"], user["password"])
    other_device = bearer(client, user["email"], user["password"])
    body = {"current_password": user["password"], "new_password": "meera-new-pass-2"}
    response = client.post("/api/v1/users/me/password", json=body, headers=old)
    assert response.status_code == 200
    fresh = {"Authorization": f"Bearer {response.get_json()['access_token']}"}
    assert "revoked" in _detail(client, old)
    assert "revoked" in _detail(client, other_device)
    assert client.get(ME, headers=fresh).status_code == 200
    login = {"email": user["email"], "password": user["password"]}
    assert client.post("/api/v1/auth/token", json=login).status_code == 401
    bearer(client, user["email"], "meera-new-pass-2")


def test_password_change_needs_the_current_password(
    client: FlaskClient, user: dict[str, str]
) -> None:
    headers = bearer(client, user["email"], user["password"])
    wrong = {"current_password": "not-my-password", "new_password": "meera-new-pass-2"}
    response = client.post("/api/v1/users/me/password", json=wrong, headers=headers)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "current_password"
    short = {"current_password": user["password"], "new_password": "short"}
    response = client.post("/api/v1/users/me/password", json=short, headers=headers)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "new_password"
    assert client.get(ME, headers=headers).status_code == 200  # nothing changed
    bearer(client, user["email"], user["password"])


def test_demoting_an_admin_revokes_their_tokens(
    app: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    assert client.get(ME, headers=admin_headers).get_json()["role"] == "admin"
    with app.app_context():
        assert set_role(session(), ADMIN["email"], "customer") is True
        assert set_role(session(), ADMIN["email"], "customer") is False  # no change, no bump
        version = session().scalar(select(User.token_version).where(User.email == ADMIN["email"]))
    assert version == 1
    assert "revoked" in _detail(client, admin_headers)
    again = bearer(client, ADMIN["email"], ADMIN["password"])
    assert client.get(ME, headers=again).get_json()["role"] == "customer"


@pytest.mark.parametrize(("claim", "value"), [("iss", "someone-else"), ("aud", "other-api")])
def test_tokens_for_another_issuer_or_audience_are_refused(
    app: Flask, client: FlaskClient, user: dict[str, str], claim: str, value: str
) -> None:
    assert client.get(ME, headers=_sign(app, _claims(app))).status_code == 200  # the control
    detail = _detail(client, _sign(app, _claims(app, **{claim: value})))
    assert "issuer or audience" in detail


def test_401_says_what_is_wrong(app: Flask, client: FlaskClient, user: dict[str, str]) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    cases = {
        "needs a bearer token": {},
        "malformed": {"Authorization": "Bearer not-a-token"},
        "has expired": _sign(app, _claims(app, iat=past, exp=past + dt.timedelta(hours=1))),
        "signature is invalid": _sign(app, _claims(app), key="another-key-" + "k" * 32),
        "no longer exists": _sign(app, _claims(app, sub="999")),
        "has been revoked": _sign(app, _claims(app, ver=7)),
        "is invalid": _sign(app, _claims(app, typ="refresh")),
    }
    for expected, headers in cases.items():
        assert expected in _detail(client, headers), expected
    # RFC 6750: a token that was sent and refused is an invalid_token; none sent, no error code.
    assert "error=" not in client.get(ME).headers["WWW-Authenticate"]
    refused = client.get(ME, headers=cases["malformed"]).headers["WWW-Authenticate"]
    assert refused == 'Bearer realm="Authentication Required", error="invalid_token"'


def test_403_names_the_role_needed(client: FlaskClient, user: dict[str, str]) -> None:
    headers = bearer(client, user["email"], user["password"])
    response = client.post("/api/v1/categories", json={"name": "Toys"}, headers=headers)
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["detail"] == "This operation needs the admin role."
