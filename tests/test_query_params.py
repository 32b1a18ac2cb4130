"""Query parameters as people write them: ids or slugs, booleans in any case, no repeats."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .test_catalog import walk


def _category_id(client: FlaskClient, slug: str) -> int:
    items = client.get("/api/v1/categories").get_json()["items"]
    (found,) = [c["id"] for c in items if c["slug"] == slug]
    return int(found)


def test_category_takes_an_id_or_a_slug(seeded: Flask, client: FlaskClient) -> None:
    for slug in ("electronics", "mobiles"):
        by_slug = [p["id"] for p in walk(client, f"category={slug}&limit=50")]
        by_id = [p["id"] for p in walk(client, f"category={_category_id(client, slug)}&limit=50")]
        assert by_slug
        assert by_id == by_slug, slug


@pytest.mark.parametrize("ref", ["999999", "0", "99999999999999999999999999"])
def test_an_unknown_category_id_is_422(seeded: Flask, client: FlaskClient, ref: str) -> None:
    response = client.get(f"/api/v1/products?category={ref}")
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"][0]["field"] == "category"


def test_a_new_category_slug_cannot_be_a_number(
    seeded: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    for body in ({"name": "2024"}, {"name": "Exams 2024", "slug": "2024"}):
        response = client.post("/api/v1/categories", json=body, headers=admin_headers)
        assert response.status_code == 422, response.get_json()
        assert response.get_json()["errors"][0]["field"] == "slug"


def test_booleans_take_true_false_1_0_in_any_case(seeded: Flask, client: FlaskClient) -> None:
    in_stock = [p["id"] for p in walk(client, "in_stock=true&limit=100")]
    out_of_stock = [p["id"] for p in walk(client, "in_stock=false&limit=100")]
    assert in_stock
    assert out_of_stock
    for word in ("TRUE", "True", "1"):
        assert [p["id"] for p in walk(client, f"in_stock={word}&limit=100")] == in_stock, word
    for word in ("FALSE", "False", "0"):
        assert [p["id"] for p in walk(client, f"in_stock={word}&limit=100")] == out_of_stock


@pytest.mark.parametrize("word", ["yes", "no", "on", "t", "2", "", "truee"])
def test_other_booleans_are_422(seeded: Flask, client: FlaskClient, word: str) -> None:
    response = client.get(f"/api/v1/products?in_stock={word}")
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"][0]["field"] == "in_stock"


@pytest.mark.parametrize(
    "query",
    [
        "limit=5&limit=10",
        "limit=5&limit=5",
        "category=mobiles&category=audio",
        "q=a&sort=price&q=b",
    ],
)
def test_a_repeated_parameter_is_400_naming_it(
    seeded: Flask, client: FlaskClient, query: str
) -> None:
    response = client.get(f"/api/v1/products?{query}")
    assert response.status_code == 400, response.get_json()
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    name = query.split("=")[0]
    assert f"'{name}'" in body["detail"]
    assert body["errors"] == [{"field": name, "message": "given 2 times; send it once"}]


def test_every_route_with_a_query_model_refuses_repeats(
    seeded: Flask, client: FlaskClient, customer_headers: dict[str, str]
) -> None:
    """Structural, not per route: GET /orders gets the same rule with no code of its own."""
    response = client.get("/api/v1/orders?limit=1&limit=2", headers=customer_headers)
    assert response.status_code == 400
    assert "'limit'" in response.get_json()["detail"]
    assert client.get("/api/v1/orders?limit=2", headers=customer_headers).status_code == 200
    # Routes without a query model are untouched (their query is not read at all).
    assert client.get("/api/v1/categories?x=1&x=2").status_code == 200


def test_the_400_is_documented(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    assert "400" in paths["/api/v1/products"]["get"]["responses"]
    assert "400" in paths["/api/v1/orders"]["get"]["responses"]
    assert "400" not in paths["/api/v1/categories"]["get"]["responses"]
