"""Every error is application/problem+json; never HTML, a stack trace or exception text."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from pydantic import BaseModel

from .test_orders import ADDRESS


def _is_problem(response, status: int) -> dict:  # type: ignore[no-untyped-def, type-arg]
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    assert "<html" not in text.lower()
    return body  # type: ignore[no-any-return]


def test_routing_404_and_405(client: FlaskClient) -> None:
    _is_problem(client.get("/no/such/path"), 404)
    response = client.put("/api/v1/products")
    _is_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_malformed_json_is_400(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/auth/register", data='{"email": "x@example.in",', content_type="application/json"
    )
    assert _is_problem(response, 400)["detail"] == "The request body is not valid JSON."


def test_json_that_is_not_an_object_is_422(client: FlaskClient) -> None:
    response = client.post("/api/v1/auth/register", json=["a", "list"])
    assert _is_problem(response, 422)["errors"]


def test_oversized_body_is_413(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/auth/register", data=b"x" * (2 * 1024 * 1024), content_type="application/json"
    )
    _is_problem(response, 413)


def test_hostile_strings_are_just_data(client: FlaskClient) -> None:
    for q in ("' OR 1=1 --", "../../etc/passwd", "%_%", "दिल्ली", "\\", "a" * 200):
        response = client.get("/api/v1/products", query_string={"q": q})
        assert response.status_code == 200, q
        assert response.get_json()["items"] == []
    _is_problem(client.get("/api/v1/products", query_string={"q": "a" * 201}), 422)
    _is_problem(client.get("/api/v1/products/-1"), 404)
    _is_problem(client.get("/api/v1/products/99999999999999999999999"), 404)
    _is_problem(client.get("/api/v1/products/0"), 404)


# -- validation errors in the client's words -------------------------------------------
ORDER = {"items": [{"product_id": 1, "quantity": 1}], "shipping_address": ADDRESS}
PRODUCT = {
    "sku": "ERR-1",
    "name": "Acme Nova",
    "category": "mobiles",
    "price": 1000,
    "mrp": 1000,
    "stock": 1,
}
# What a framework or library would leak: its placeholder for "the whole body", its words
# for Python types, its error-reference URLs.
INTERNALS = ("_schema", "pydantic", "errors.pydantic.dev", "Value error", "dictionary",
             "instance of", "function-after", "constrained-str")  # fmt: skip


def _model_names() -> set[str]:
    """Every pydantic model class the app declares (RegisterIn, OrderLineIn, ...)."""
    seen: set[str] = set()
    pending = list(BaseModel.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("flipkart_api"):
            seen.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return seen


def _errors(response) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    """The 422's errors, checked for anything the client did not write."""
    body = _is_problem(response, 422)
    text = response.get_data(as_text=True)
    leaked = [w for w in (*INTERNALS, *_model_names()) if re.search(rf"\b{re.escape(w)}\b", text)]
    assert not leaked, (leaked, body)
    assert body["errors"], body
    assert all(e["field"] and e["message"] for e in body["errors"]), body
    return body["errors"]  # type: ignore[no-any-return]


def test_validation_errors_carry_no_internals(
    seeded: Flask,
    client: FlaskClient,
    customer_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    """Wrong shapes at every depth: no `_schema`, no class name, no pydantic wording or URL."""
    bad_bodies: list[tuple[str, str, object]] = [
        ("post", "/api/v1/auth/register", ["a", "list"]),
        ("post", "/api/v1/auth/register", "a string"),
        ("post", "/api/v1/auth/register", 42),
        ("post", "/api/v1/auth/token", {"email": 1, "password": None}),
        ("post", "/api/v1/orders", {}),
        ("post", "/api/v1/orders", ORDER | {"items": [1, "x", None]}),
        ("post", "/api/v1/orders", ORDER | {"items": [{"product_id": "1", "quantity": []}]}),
        ("post", "/api/v1/orders", ORDER | {"shipping_address": 5}),
        ("post", "/api/v1/orders", ORDER | {"items": []}),
        ("post", "/api/v1/orders", ORDER | {"from_cart": True}),
        ("put", "/api/v1/cart/items/1", {"quantity": "2"}),
        ("put", "/api/v1/cart/items/1", [{"quantity": 2}]),
        ("post", "/api/v1/products", PRODUCT | {"images": [1, "not a url"], "price": 2000}),
        ("post", "/api/v1/products", []),
        ("patch", "/api/v1/products/1", {"price": None, "stock": "many"}),
        ("post", "/api/v1/categories", {"name": {"nested": True}}),
    ]
    for method, path, body in bad_bodies:
        headers = admin_headers if "product" in path or "categor" in path else customer_headers
        _errors(getattr(client, method)(path, json=body, headers=headers))
    for query in ("min_price=9&max_price=1", "sort=relevance", "limit=abc", "in_stock=maybe"):
        _errors(client.get(f"/api/v1/products?{query}"))
    too_long = customer_headers | {"Idempotency-Key": "k" * 300}
    _errors(client.post("/api/v1/orders", json=ORDER, headers=too_long))


def test_field_paths_are_written_as_the_client_wrote_them(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str]
) -> None:
    """`items[1].quantity`, `shipping_address.city`, `Idempotency-Key`: one notation."""
    order = ORDER | {"items": [{"product_id": 1, "quantity": 1}, {"product_id": 2, "quantity": 0}]}
    address = dict(ORDER["shipping_address"])  # type: ignore[call-overload]
    del address["city"]
    order["shipping_address"] = address
    errors = _errors(client.post("/api/v1/orders", json=order, headers=customer_headers))
    assert [e["field"] for e in errors] == ["items[1].quantity", "shipping_address.city"]
    too_long = customer_headers | {"Idempotency-Key": "k" * 300}
    errors = _errors(client.post("/api/v1/orders", json=ORDER, headers=too_long))
    assert [e["field"] for e in errors] == ["Idempotency-Key"]
    root = _errors(client.post("/api/v1/auth/register", json=["a"]))
    assert root == [{"field": "body", "message": "Input should be a JSON object"}]
    typo = {"quantity": 1, "qty": 2}
    unknown = _errors(client.put("/api/v1/cart/items/1", json=typo, headers=customer_headers))
    assert unknown == [{"field": "qty", "message": "Unknown field"}]


def test_rules_across_fields_name_one_field(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str]
) -> None:
    """A model's own rule blames a field, in our words, without a "Value error, " prefix."""
    auth = customer_headers
    both = _errors(client.post("/api/v1/orders", json=ORDER | {"from_cart": True}, headers=auth))
    assert both == [{"field": "from_cart", "message": "send either items or from_cart, not both"}]
    empty = _errors(client.post("/api/v1/orders", json=ORDER | {"items": []}, headers=auth))
    assert empty == [{"field": "items", "message": "must not be empty"}]
    prices = _errors(client.get("/api/v1/products?min_price=9&max_price=1"))
    assert prices == [{"field": "min_price", "message": "must not exceed max_price"}]


def test_price_over_mrp_names_the_field_sent(
    seeded: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    """The same rule on POST (schema) and PATCH (service); a PATCH of mrp alone blames mrp."""
    expected = [{"field": "price", "message": "must not exceed mrp"}]
    post = client.post("/api/v1/products", json=PRODUCT | {"price": 2000}, headers=admin_headers)
    assert _errors(post) == expected
    created = client.post("/api/v1/products", json=PRODUCT, headers=admin_headers)
    assert created.status_code == 201, created.get_json()
    product = created.headers["Location"]
    for change in ({"price": 2000}, {"price": 3000, "mrp": 2000}):
        patch = client.patch(product, json=change, headers=admin_headers)
        assert _errors(patch) == expected, change
    mrp_only = client.patch(product, json={"mrp": 50}, headers=admin_headers)
    assert _errors(mrp_only) == [{"field": "mrp", "message": "must not be below price"}]
