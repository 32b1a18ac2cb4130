"""Targeted hostile input on both backends: a clear problem+json, never a 5xx or a stray row.

Text fields and query parameters are enumerated from /openapi.json, so an operation or field
added later is attacked too (or, for a new body, fails here until it has a valid example).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from flipkart_api.db import session

from .conftest import TABLES

INJECTION = (
    "' OR '1'='1' --",
    "'; DROP TABLE products; --",
    '" OR ""="',
    "1; SELECT pg_sleep(5)",
    "%' AND 1=0 UNION SELECT email, password_hash FROM users --",
    "../../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "..\\..\\windows\\win.ini",
    "%_%\\",
    "<script>alert(1)</script>",
    "${jndi:ldap://x/a}",
)
UNICODE = "Ünïcödé 💥👩🏽‍💻 مرحبا עברית e\u0301 ﷽"
HUGE_NUMBERS = (-1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**100, 1.5, 1e308, "7", True)
BAD_IDS = ("0", "-1", "007", "1.5", "abc", str(2**63), str(2**64), "9" * 40, "%00", "..%2F1")
METHODS = {"get", "put", "post", "patch", "delete"}


def valid_bodies() -> dict[str, dict[str, Any]]:
    """A body each operation accepts (or answers 4xx to for a state reason, never 422)."""
    address = {
        "name": "Asha",
        "line1": "12 MG Road",
        "city": "Bengaluru",
        "state": "Karnataka",
        "pincode": "560001",
        "phone": "9876543210",
    }
    line = {"product_id": 1, "quantity": 1}
    product = {
        "sku": "HOSTILE-1",
        "name": "Kettle",
        "description": "Steel",
        "brand": "Acme",
        "category": "electronics",
        "price": 100,
        "mrp": 200,
        "stock": 5,
        "images": ["https://img.example.in/a.jpg"],
    }
    return {
        "POST /api/v1/auth/register": {
            "email": "mallory@example.in",
            "password": "long-enough-1",
            "name": "Mallory",
        },
        "POST /api/v1/auth/token": {"email": "mallory@example.in", "password": "long-enough-1"},
        "POST /api/v1/categories": {"name": "Hostile", "slug": "hostile"},
        "POST /api/v1/products": product,
        "PATCH /api/v1/products/{product_id}": {"name": "Kettle 2", "brand": "Acme"},
        "PUT /api/v1/cart/items/{product_id}": {"quantity": 1},
        "POST /api/v1/orders": {"items": [line], "shipping_address": address},
        "POST /api/v1/orders/{order_id}/status": {"status": "confirmed"},
        "POST /api/v1/auth/logout": {"all": False},
        "POST /api/v1/webhooks": {
            "url": "https://hooks.example.com/flipkart",
            "event_types": ["order.placed"],
        },
        "PATCH /api/v1/webhooks/{endpoint_id}": {"description": "ERP"},
        # Not the admin's password: no example here may change it (or revoke the token).
        "POST /api/v1/users/me/password": {
            "current_password": "not-it-1",
            "new_password": "long-enough-2",
        },
    }  # fmt: skip


def spec(client: FlaskClient) -> dict[str, Any]:
    """The served OpenAPI document."""
    document: dict[str, Any] = client.get("/openapi.json").get_json()
    return document


def operations(client: FlaskClient) -> dict[str, dict[str, Any]]:
    """'METHOD /path' -> operation object."""
    return {
        f"{method.upper()} {path}": op
        for path, item in spec(client)["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def string_fields(document: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of every string property of a (possibly nested, $ref'd) object schema."""
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    found: list[str] = []
    for name, prop in schema.get("properties", {}).items():
        variants = prop.get("anyOf", [prop])
        for variant in variants:
            target = document["components"]["schemas"].get(
                variant.get("$ref", "").rsplit("/", 1)[-1]
            )
            if target is not None and target.get("type") == "object":
                found += string_fields(document, target, f"{prefix}{name}.")
            elif variant.get("type") == "string":
                found.append(f"{prefix}{name}")
                break
            elif variant.get("type") == "array" and variant["items"].get("type") == "string":
                found.append(f"{prefix}{name}[]")  # sent as a one-item list
                break
    return found


def with_value(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of body with the dotted field set to value."""
    copy = json.loads(json.dumps(body))
    *parents, leaf = dotted.split(".")
    target = copy
    for parent in parents:
        target = target.setdefault(parent, {})
    if leaf.endswith("[]"):
        leaf, value = leaf[:-2], [value]
    target[leaf] = value
    return copy


def concrete(path: str) -> str:
    """The template path with id 1 (seeded product 1, order 1 after `an_order`)."""
    for name in ("product_id", "order_id", "endpoint_id", "delivery_id"):
        path = path.replace("{" + name + "}", "1")
    return path


def row_counts(app: Flask) -> dict[str, int]:
    """Rows per table; a missing table raises, so a DROP would fail the test."""
    with app.app_context():
        sess = session()
        # Table names come from conftest.TABLES, not from input.
        query = {t: text(f"SELECT count(*) FROM {t}") for t in TABLES}  # noqa: S608
        counts = {t: int(sess.execute(q).scalar_one()) for t, q in query.items()}
        sess.rollback()
    return counts


def problem_of(response: Any, status: int) -> dict[str, Any]:
    """The problem+json body of an error response with this status (one answer is right)."""
    assert response.status_code == status, (response.status_code, response.get_data()[:300])
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["status"] == response.status_code
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def send(client: FlaskClient, label: str, headers: dict[str, str], **kwargs: Any) -> Any:
    """One request to the operation `label` with ids filled in."""
    method, path = label.split(" ", 1)
    return client.open(concrete(path), method=method, headers=headers, **kwargs)


@pytest.fixture
def an_order(seeded: Flask, client: FlaskClient, admin_headers: dict[str, str]) -> None:
    """Order 1 exists, so /orders/1/... operations reach their body validation."""
    body = valid_bodies()["POST /api/v1/orders"]
    assert client.post("/api/v1/orders", json=body, headers=admin_headers).status_code == 201


def body_operations(client: FlaskClient) -> list[str]:
    """Every operation that takes a JSON body; each must have a valid example here."""
    labels = sorted(label for label, op in operations(client).items() if "requestBody" in op)
    assert set(labels) == set(valid_bodies()), "a new body operation needs a valid example"
    return labels


def test_malformed_json_is_400_everywhere(
    client: FlaskClient, seeded: Flask, admin_headers: dict[str, str]
) -> None:
    for label in body_operations(client):
        for raw in (b'{"name": "x",', b"", b"\xff\xfe", b"{'single': 1}", b"[" * 100_000):
            response = send(client, label, admin_headers, data=raw, content_type="application/json")
            problem_of(response, 400)
        # Python's parser takes NaN (not JSON); it is then not an object: a 422.
        response = send(client, label, admin_headers, data=b"NaN", content_type="application/json")
        problem_of(response, 422)


def test_wrong_or_missing_content_type_is_415_everywhere(
    app: Flask, client: FlaskClient, seeded: Flask, admin_headers: dict[str, str]
) -> None:
    before = row_counts(app)
    for label in body_operations(client):
        payload = json.dumps(valid_bodies()[label])
        for content_type in (
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/xml",
            None,
        ):
            response = send(client, label, admin_headers, data=payload, content_type=content_type)
            body = problem_of(response, 415)
            assert "application/json" in body["detail"]
    assert row_counts(app) == before


def test_ten_megabyte_body_is_413_from_the_app(
    client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    big = b'{"name": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    for label in ("POST /api/v1/auth/register", "POST /api/v1/products"):
        problem_of(
            send(client, label, admin_headers, data=big, content_type="application/json"), 413
        )


def test_strings_over_max_length_are_422(
    client: FlaskClient, seeded: Flask, admin_headers: dict[str, str]
) -> None:
    for field in ("name", "sku", "brand", "description", "category"):
        body = with_value(valid_bodies()["POST /api/v1/products"], field, "x" * 6000)
        body_of = problem_of(client.post("/api/v1/products", json=body, headers=admin_headers), 422)
        assert body_of["errors"][0]["field"] == field
    megabyte = "a" * (1024 * 1024)
    for param in ("q", "brand", "category", "cursor", "sort"):
        problem_of(client.get("/api/v1/products", query_string={param: megabyte}), 422)


def test_unicode_is_stored_and_returned_intact(
    client: FlaskClient, seeded: Flask, admin_headers: dict[str, str]
) -> None:
    body = valid_bodies()["POST /api/v1/products"] | {"name": UNICODE, "description": UNICODE * 3}
    created = client.post("/api/v1/products", json=body, headers=admin_headers)
    assert created.status_code == 201, created.get_json()
    fetched = client.get(created.headers["Location"]).get_json()
    assert (fetched["name"], fetched["description"]) == (UNICODE, UNICODE * 3)
    user = {"email": "ü@example.in", "password": "long-enough-1", "name": UNICODE}
    # An internationalised address (RFC 6531) is an address: email-validator accepts it.
    registered = client.post("/api/v1/auth/register", json=user)
    assert registered.status_code == 201, registered.get_json()
    assert (registered.get_json()["email"], registered.get_json()["name"]) == (
        user["email"],
        UNICODE,
    )
    token = client.post(
        "/api/v1/auth/token", json={"email": "Ü@example.in", "password": user["password"]}
    )
    assert token.status_code == 200, token.get_json()  # and signs in, in any case


@pytest.mark.slow  # ~300 requests with row counts around each, per backend
@pytest.mark.usefixtures("an_order")
def test_injection_in_every_text_field_changes_nothing_it_rejects(
    app: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    document = spec(client)
    attacked = 0
    for label in body_operations(client):
        schema = operations(client)[label]["requestBody"]["content"]["application/json"]["schema"]
        fields = string_fields(document, schema)
        no_text = ("PUT /api/v1/cart/items/{product_id}", "POST /api/v1/auth/logout")
        assert fields or label in no_text, label
        for field in fields:
            for value in INJECTION:
                before = row_counts(app)
                body = with_value(valid_bodies()[label], field, value)
                response = send(client, label, admin_headers, json=body)
                assert response.status_code < 500, (label, field, value, response.get_json())
                attacked += 1
                if response.status_code >= 400:
                    problem_of(response, response.status_code)
                    assert row_counts(app) == before, (label, field, value)
    assert attacked >= 27 * len(INJECTION)  # 27 text fields today
    assert row_counts(app)["products"] >= 60  # the tables and their rows are still there


@pytest.mark.usefixtures("an_order")
def test_injection_in_every_query_parameter_and_header(
    app: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    before = row_counts(app)
    attacked = 0
    for label, op in operations(client).items():
        for param in op.get("parameters", []):
            if param["in"] == "path":
                continue
            for value in INJECTION:
                if param["in"] == "query":
                    response = send(
                        client, label, admin_headers, query_string={param["name"]: value}
                    )
                else:
                    headers = admin_headers | {param["name"]: value}
                    body = valid_bodies().get(label)
                    response = send(client, label, headers, json=body)
                assert response.status_code < 500, (label, param["name"], value)
                if response.status_code >= 400:
                    problem_of(response, response.status_code)
                attacked += 1
    assert attacked >= 10 * len(INJECTION)
    after = row_counts(app)
    assert after["products"] == before["products"]


@pytest.mark.usefixtures("an_order")
def test_path_traversal_and_impossible_ids_in_every_path_are_404(
    client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    for label in operations(client):
        method, path = label.split(" ", 1)
        if "{" not in path:
            continue
        body = valid_bodies().get(label)
        for bad in BAD_IDS:
            url = path
            for name in ("product_id", "order_id", "endpoint_id", "delivery_id"):
                url = url.replace("{" + name + "}", bad)
            response = client.open(url, method=method, headers=admin_headers, json=body)
            problem_of(response, 404)  # DELETE /products/0 was a 405 (routing regression)
    # The cache front routes the same ids: a cached product 1 is not product 001.
    assert client.get("/api/v1/products/1").status_code == 200
    assert client.get("/api/v1/products/1").headers["X-Cache"] == "HIT"
    problem_of(client.get("/api/v1/products/001"), 404)
    problem_of(client.get(f"/api/v1/products/{2**63 - 1}"), 404)


@pytest.mark.usefixtures("seeded")
def test_negative_huge_and_mistyped_numbers_are_422(
    client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    product = valid_bodies()["POST /api/v1/products"]
    order = valid_bodies()["POST /api/v1/orders"]
    for value in HUGE_NUMBERS:
        for field in ("price", "mrp", "stock"):
            response = client.post(
                "/api/v1/products", json=with_value(product, field, value), headers=admin_headers
            )
            problem_of(response, 422)
        line = {"product_id": value, "quantity": 1}
        response = client.post(
            "/api/v1/orders", json=order | {"items": [line]}, headers=admin_headers
        )
        problem_of(response, 422)  # 2**63-1 is a valid id of no product: "unknown product ids"
    for value in (*HUGE_NUMBERS, 0, 11):
        response = client.put(
            "/api/v1/cart/items/1", json={"quantity": value}, headers=admin_headers
        )
        problem_of(response, 422)
    for param in ("min_price", "max_price", "limit"):
        for value in ("-1", str(2**63), str(10**100), "1.5", "1e3", "NaN", "Infinity", "0x10"):
            problem_of(client.get("/api/v1/products", query_string={param: value}), 422)
    # A JSON number too large for a float parses to inf: still a 422, not a 500.
    raw = orjson.dumps(product).replace(b'"price":100', b'"price":1e400')
    response = client.post(
        "/api/v1/products", data=raw, content_type="application/json", headers=admin_headers
    )
    problem_of(response, 422)


@pytest.mark.usefixtures("an_order")
def test_unknown_fields_are_422_everywhere(
    client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    for label in body_operations(client):
        for extra in ({"is_admin": True}, {"role": "admin"}, {"id": 1}, {"__proto__": {}}):
            response = send(client, label, admin_headers, json=valid_bodies()[label] | extra)
            body = problem_of(response, 422)
            assert any(e["field"] == next(iter(extra)) for e in body["errors"]), body
    problem_of(client.get("/api/v1/products", query_string={"admin": "1"}), 422)


@pytest.mark.usefixtures("an_order")
def test_nul_bytes_are_422_not_a_database_error(
    app: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    """PostgreSQL text cannot hold NUL: this was a 500 there before the schemas refused it."""
    document = spec(client)
    before = row_counts(app)
    for label in body_operations(client):
        schema = operations(client)[label]["requestBody"]["content"]["application/json"]["schema"]
        for field in string_fields(document, schema):
            body = with_value(valid_bodies()[label], field, "a\x00b")
            problem_of(send(client, label, admin_headers, json=body), 422)
    for param in ("q", "brand", "category", "cursor"):
        problem_of(client.get("/api/v1/products", query_string={param: "a\x00b"}), 422)
    headers = admin_headers | {"Idempotency-Key": "key\x00"}
    response = client.post(
        "/api/v1/orders", json=valid_bodies()["POST /api/v1/orders"], headers=headers
    )
    problem_of(response, 422)
    assert row_counts(app) == before


def _cursor(payload: Any) -> str:
    raw = json.dumps(payload).encode()  # json, not orjson: it must write 2**70
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.usefixtures("an_order")
def test_forged_cursors_are_422(client: FlaskClient, admin_headers: dict[str, str]) -> None:
    forged = [
        "not-base64!!",
        "AAAA",
        base64.urlsafe_b64encode(b"\x00\xff" * 20).decode(),
        _cursor([1, 2]),
        _cursor({"s": "price", "k": 1}),
        _cursor({"s": "newest", "k": 1, "i": 1}),
        _cursor({"s": "price", "k": "1", "i": 1}),
        _cursor({"s": "price", "k": 1, "i": 2**70}),
        _cursor({"s": "price", "k": 2**70, "i": 1}),
        _cursor({"s": "price", "k": 1, "i": -(2**70)}),
        _cursor({"s": "newest", "k": "2026-01-01T00:00:00", "i": 1}),
        _cursor({"s": "newest", "k": "99999-01-01T00:00:00+00:00", "i": 1}),
        _cursor({"s": "newest", "k": "2026-01-01T00:00:00+00:00", "i": 2**63}),
        _cursor({"s": "relevance", "k": 10**30, "i": 1}),
    ]
    for cursor in forged:
        for sort in ("price", "newest"):
            response = client.get("/api/v1/products", query_string={"sort": sort, "cursor": cursor})
            problem_of(response, 422)
        response = client.get("/api/v1/products", query_string={"q": "phone", "cursor": cursor})
        problem_of(response, 422)
        response = client.get(
            "/api/v1/orders", query_string={"cursor": cursor}, headers=admin_headers
        )
        problem_of(response, 422)
