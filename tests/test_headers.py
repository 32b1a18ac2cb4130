"""nosniff on every response; no-store on every personal one, errors included."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flipkart_api import create_app
from flipkart_api.catalog.seed import seed_catalog
from flipkart_api.db import session

from .conftest import sqlite_settings
from .test_orders import ADDRESS, in_stock_ids


def _nosniff(response: TestResponse) -> bool:
    return response.headers.get("X-Content-Type-Options") == "nosniff"


def _no_store(response: TestResponse) -> bool:
    return response.headers.get("Cache-Control") == "no-store"


def test_nosniff_on_every_kind_of_response(seeded: Flask, client: FlaskClient) -> None:
    """Success, problem+json, routing errors, docs, and the cache front's fast path."""
    client.get("/api/v1/products/3")  # fills the cache
    hit = client.get("/api/v1/products/3")
    assert hit.headers["X-Cache"] == "HIT"
    not_modified = client.get("/api/v1/products/3", headers={"If-None-Match": hit.headers["ETag"]})
    assert not_modified.status_code == 304
    responses = {
        "cache front hit": hit,
        "cache front 304": not_modified,
        "root": client.get("/"),
        "list": client.get("/api/v1/products?limit=2"),
        "routing 404": client.get("/no/such/path"),
        "405": client.put("/api/v1/products"),
        "422": client.get("/api/v1/products?limit=0"),
        "401": client.get("/api/v1/users/me"),
        "docs": client.get("/docs"),
        "openapi": client.get("/openapi.json"),
        "malformed json": client.post(
            "/api/v1/auth/token", data="{", content_type="application/json"
        ),
    }
    missing = [name for name, response in responses.items() if not _nosniff(response)]
    assert not missing, missing


def test_no_store_on_every_personal_response(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str]
) -> None:
    """Tokens, accounts, carts and orders, and their errors: never kept by any cache."""
    auth = customer_headers
    product = in_stock_ids(client, 1)[0]
    credentials = {"email": "asha@example.in", "password": "correct-horse-1"}
    order = {"items": [{"product_id": product, "quantity": 1}], "shipping_address": ADDRESS}
    responses = {
        "token": client.post("/api/v1/auth/token", json=credentials),
        "token 401": client.post("/api/v1/auth/token", json=credentials | {"password": "nope"}),
        "token 422": client.post("/api/v1/auth/token", json={}),
        "register 201": client.post(
            "/api/v1/auth/register",
            json={"email": "new@example.in", "password": "long-enough-1", "name": "N"},
        ),
        "register 409": client.post("/api/v1/auth/register", json=credentials | {"name": "Asha"}),
        "me": client.get("/api/v1/users/me", headers=auth),
        "me 401": client.get("/api/v1/users/me"),
        "me bad token": client.get("/api/v1/users/me", headers={"Authorization": "Bearer x"}),
        "cart": client.get("/api/v1/cart", headers=auth),
        "cart 401": client.get("/api/v1/cart"),
        "cart put": client.put(f"/api/v1/cart/items/{product}", json={"quantity": 1}, headers=auth),
        "cart put 404": client.put("/api/v1/cart/items/999999", json={"quantity": 1}, headers=auth),
        "order 201": client.post("/api/v1/orders", json=order, headers=auth),
        "order 422": client.post("/api/v1/orders", json={}, headers=auth),
        "orders": client.get("/api/v1/orders", headers=auth),
        "order 404": client.get("/api/v1/orders/999999", headers=auth),
    }
    assert responses["order 201"].status_code == 201
    # A public read sent with a token is answered as personal too, by the cache front as well.
    assert client.get(f"/api/v1/products/{product}").headers["X-Cache"] in ("MISS", "HIT")
    responses["product with token"] = client.get(f"/api/v1/products/{product}", headers=auth)
    assert responses["product with token"].headers["X-Cache"] == "HIT"
    missing = [name for name, response in responses.items() if not _no_store(response)]
    assert not missing, missing


PUBLIC_READS = {  # path -> the surrogate keys its answer carries ({ids}: the page's items)
    "/": None,
    "/api/v1/products?limit=2": "products {ids}",
    "/api/v1/products?limit=3&sort=price&in_stock=true": "products {ids} by-price by-stock",
    "/api/v1/products?q=phone&min_price=1": "products {ids} by-price by-text",
    "/api/v1/products?brand=Samsung&sort=rating": "products {ids} by-text",
    "/api/v1/products/2": "p2",
    "/api/v1/categories": "categories",
}


def _expected_keys(template: str | None, response: TestResponse) -> str | None:
    if template is None or "{ids}" not in template:
        return template
    ids = " ".join(f"p{item['id']}" for item in response.get_json()["items"])
    return " ".join(template.format(ids=ids).split())


def test_public_reads_stay_cacheable(seeded: Flask, client: FlaskClient) -> None:
    """no-store is for personal answers only: the catalog is public, revalidated by ETag.

    Without an HTTP cache to purge (EDGE_PURGE_URLS unset) no s-maxage: a shared cache the
    app cannot purge must ask every time. The detail is asked twice: the miss comes from the
    route, the hit from the cache front; both must say the same.
    """
    for path, keys in [*PUBLIC_READS.items(), ("/api/v1/products/2", "p2")]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "public, max-age=0", path
        assert response.headers.get("xkey") == _expected_keys(keys, response), path
        assert "ETag" in response.headers, path


def test_shared_caches_may_keep_public_reads_when_the_app_purges_them(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """With EDGE_PURGE_URLS set, s-maxage=EDGE_TTL_SECONDS; personal answers stay no-store."""
    settings = sqlite_settings(
        tmp_path, sqlite_template, edge_purge_urls="http://127.0.0.1:9", edge_ttl_seconds=45
    )
    app = create_app(settings)
    with app.app_context():
        seed_catalog(session(), 5)
    client = app.test_client()
    for path in (*PUBLIC_READS, "/api/v1/products/2"):
        response = client.get(path)
        assert response.headers["Cache-Control"] == "public, max-age=0, s-maxage=45", path
    authorised = client.get("/api/v1/products/2", headers={"Authorization": "Bearer x"})
    assert authorised.headers["Cache-Control"] == "no-store"


def test_security_headers_on_every_kind_of_response(seeded: Flask, client: FlaskClient) -> None:
    """Referrer-Policy, no framing and the strict CSP on the API's answers, fast path too."""
    client.get("/api/v1/products/3")  # fills the cache
    responses = {
        "cache front hit": client.get("/api/v1/products/3"),
        "root": client.get("/"),
        "list": client.get("/api/v1/products?limit=2"),
        "routing 404": client.get("/no/such/path"),
        "405": client.put("/api/v1/products"),
        "422": client.get("/api/v1/products?limit=0"),
        "401": client.get("/api/v1/users/me"),
        "openapi": client.get("/openapi.json"),
    }
    asset = client.get("/docs").text.split('src="')[1].split('"')[0]
    with client.get(asset) as responses["docs asset"]:  # a file: closed after
        pass
    assert responses["cache front hit"].headers["X-Cache"] == "HIT"
    expected = {
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    }
    wrong = {
        name: dict(response.headers)
        for name, response in responses.items()
        if any(response.headers.get(k) != v for k, v in expected.items())
    }
    assert not wrong, wrong
    assert "Strict-Transport-Security" not in responses["root"].headers  # nginx's job


def test_docs_policy_allows_exactly_the_page_inline_blocks(
    seeded: Flask, client: FlaskClient
) -> None:
    """/docs: own files, its inline script and style by hash, never 'unsafe-inline'."""
    docs = client.get("/docs")
    policy = docs.headers["Content-Security-Policy"]
    assert docs.headers["X-Frame-Options"] == "DENY"
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy
    script = docs.text.split("<script>")[1].split("</script>")[0].encode()
    digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}'" in policy
    assert "style-src 'self' 'sha256-" in policy
