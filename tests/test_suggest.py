"""GET /api/v1/search/suggest on both backends: what a prefix may lead to, cached like lists."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient


def suggest(client: FlaskClient, q: str, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/search/suggest?" + urllib.parse.urlencode({"q": q, **params}))
    assert response.status_code == 200, (q, response.get_json())
    body: dict[str, Any] = response.get_json()
    return body


@pytest.mark.usefixtures("catalog")
def test_a_prefix_suggests_queries_products_and_brands(client: FlaskClient) -> None:
    got = suggest(client, "sams")
    assert "samsung" in got["completions"]
    assert got["brands"] == ["Samsung"]
    assert got["products"]
    assert {p["brand"] for p in got["products"]} == {"Samsung"}
    assert len(got["products"]) <= 5
    galaxy = suggest(client, "samsung gal", limit=3)
    assert galaxy["completions"] == ["samsung galaxy"]
    assert len(galaxy["products"]) == 3
    assert all("Galaxy" in p["name"] for p in galaxy["products"])


@pytest.mark.usefixtures("catalog")
def test_categories_every_word_names(client: FlaskClient) -> None:
    assert [c["slug"] for c in suggest(client, "mob")["categories"]] == ["mobiles"]
    kitchen = [c["slug"] for c in suggest(client, "kitchen app")["categories"]]
    assert kitchen == ["kitchen-appliances"]
    assert suggest(client, "samsung")["categories"] == []


@pytest.mark.usefixtures("catalog")
def test_brands_by_any_word_and_without_accents(client: FlaskClient) -> None:
    assert suggest(client, "lakm")["brands"] == ["Lakmé"]
    assert "U.S. Polo Assn." in suggest(client, "polo")["brands"]
    assert suggest(client, "sams")["products"] == suggest(client, "samsng")["products"]


@pytest.mark.usefixtures("catalog")
def test_nothing_to_suggest(client: FlaskClient) -> None:
    for q in ("zzqxv", "the", '"', "-", "{}:*", "x" * 100):
        got = suggest(client, q)
        assert (got["products"], got["brands"], got["categories"]) == ([], [], []), q


@pytest.mark.usefixtures("catalog")
def test_bad_parameters_are_422(client: FlaskClient) -> None:
    for query in ("", "q=", "q=a&limit=0", "q=a&limit=11", "q=" + "x" * 101, "q=a&x=1"):
        response = client.get(f"/api/v1/search/suggest?{query}")
        assert response.status_code == 422, query
        assert response.content_type == "application/problem+json"


def test_suggestions_follow_the_catalog_and_are_cached_like_lists(
    catalog: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    first = client.get("/api/v1/search/suggest?q=zyx")
    again = client.get("/api/v1/search/suggest?q=zyx")
    assert (first.headers["X-Cache"], again.headers["X-Cache"]) == ("MISS", "HIT")
    assert set(first.headers["xkey"].split()) >= {"products", "by-text"}
    assert first.get_json()["brands"] == []
    product = {
        "sku": "ZX-1", "name": "Zyxoria Blender 600 W", "brand": "Zyxoria",
        "category": "kitchen-appliances", "price": 199900, "mrp": 249900, "stock": 4,
    }  # fmt: skip
    assert client.post("/api/v1/products", json=product, headers=admin_headers).status_code == 201
    after = client.get("/api/v1/search/suggest?q=zyx")
    assert after.headers["X-Cache"] == "MISS"
    body = after.get_json()
    assert body["brands"] == ["Zyxoria"]
    assert [p["name"] for p in body["products"]] == ["Zyxoria Blender 600 W"]
    assert body["completions"] == ["zyxoria"]
