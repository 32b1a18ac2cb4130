"""Flask-serialised bodies keep the declared field order, like the cached (pydantic) bytes."""

from __future__ import annotations

import json

from flask import Flask
from flask.testing import FlaskClient

from flipkart_api.auth.schemas import UserOut
from flipkart_api.catalog.schemas import ProductOut

PRODUCT = {"sku": "ORD-1", "name": "Lakmé ₹ Test", "category": "mobiles", "price": 1, "mrp": 2}


def test_a_written_product_reads_back_byte_for_byte(
    seeded: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    """POST answers through Flask's JSON provider, GET with cached pydantic bytes: same bytes."""
    created = client.post("/api/v1/products", json=PRODUCT | {"stock": 1}, headers=admin_headers)
    assert created.status_code == 201, created.get_json()
    assert list(json.loads(created.get_data())) == list(ProductOut.model_fields)
    fetched = client.get(created.headers["Location"])
    assert created.get_data().rstrip(b"\n") == fetched.get_data()


def test_flask_bodies_keep_declared_order(
    seeded: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    """Every response model is declared in reading order (id first); sorting would undo it."""
    me = client.get("/api/v1/users/me", headers=admin_headers)
    assert me.status_code == 200, me.get_json()
    assert list(json.loads(me.get_data())) == list(UserOut.model_fields)
