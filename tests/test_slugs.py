"""Slugs: one function for the API and the seed; SKUs are exact, slugs never block a create."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from flipkart_api.seed_data import iter_products

PRODUCT = {
    "sku": "AB-1",
    "name": "Levi's 511 Slim Jeans",
    "brand": "Levi's",
    "category": "mobiles",
    "price": 1000,
    "mrp": 1000,
    "stock": 1,
}


def _create(client: FlaskClient, headers: dict[str, str], **change: object) -> dict[str, object]:
    response = client.post("/api/v1/products", json=PRODUCT | change, headers=headers)
    assert response.status_code == 201, response.get_json()
    body: dict[str, object] = response.get_json()
    return body


def test_skus_that_slug_alike_are_distinct_products(
    seeded: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    """AB-1, ab-1 and AB.1 are three SKUs; the later ones get a suffixed slug, not a 409."""
    first = _create(client, admin_headers)
    second = _create(client, admin_headers, sku="ab-1")
    third = _create(client, admin_headers, sku="AB.1")
    assert first["slug"] == "levis-511-slim-jeans-ab-1"
    assert second["slug"] == "levis-511-slim-jeans-ab-1-2"
    assert third["slug"] == "levis-511-slim-jeans-ab-1-3"
    assert [first["sku"], second["sku"], third["sku"]] == ["AB-1", "ab-1", "AB.1"]
    # The same SKU exactly is still the one real conflict.
    again = client.post("/api/v1/products", json=PRODUCT | {"sku": "ab-1"}, headers=admin_headers)
    assert again.status_code == 409
    assert "ab-1" in again.get_json()["detail"]


def test_patch_into_a_taken_slug_is_suffixed(
    seeded: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    """Renaming a product onto another's slug keeps both; renaming to itself keeps its slug."""
    first = _create(client, admin_headers)
    other = _create(client, admin_headers, sku="XY-9", name="Something Else")
    moved = client.patch(
        f"/api/v1/products/{other['id']}",
        json={"sku": "ab.1", "name": PRODUCT["name"]},
        headers=admin_headers,
    )
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["slug"] == f"{first['slug']}-2"
    same = client.patch(
        f"/api/v1/products/{first['id']}", json={"name": PRODUCT["name"]}, headers=admin_headers
    )
    assert same.get_json()["slug"] == first["slug"]


def test_longest_name_and_sku_fit_the_slug_column(
    seeded: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    """A 200-character name and a 64-character SKU are valid: their slug fits String(220)."""
    sku = "S" * 64
    body = _create(client, admin_headers, sku=sku, name="n" * 200)
    slug = str(body["slug"])
    assert slug.endswith("-" + sku.lower())
    assert len(slug) <= 200
    twin = _create(client, admin_headers, sku=sku.lower(), name="n" * 200)
    assert twin["slug"] == slug + "-2"


def test_api_and_seed_slug_alike(
    seeded: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    """An apostrophe vanishes in both ("Levi's" -> "levis"), in categories and products."""
    parent = client.get("/api/v1/categories").get_json()["items"][0]["id"]
    category = client.post(
        "/api/v1/categories",
        json={"name": "Levi's & Co", "parent_id": parent},
        headers=admin_headers,
    )
    assert category.status_code == 201, category.get_json()
    assert category.get_json()["slug"] == "levis-co"
    seeded_product = next(iter_products(1))
    body = _create(client, admin_headers, sku=seeded_product.sku + "X", name=seeded_product.name)
    assert body["slug"] == seeded_product.slug + "x"


def test_more_twins_than_one_lookup_holds(
    seeded: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    """Twelve SKUs that slug alike (candidates are looked up ten at a time): twelve slugs."""
    skus = [a + sep + "1" for sep in "-._" for a in ("AB", "ab", "Ab", "aB")]
    slugs = [_create(client, admin_headers, sku=sku)["slug"] for sku in skus]
    base = "levis-511-slim-jeans-ab-1"
    assert slugs == [base] + [f"{base}-{n}" for n in range(2, 13)]
