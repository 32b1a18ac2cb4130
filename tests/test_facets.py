"""Facet counts beside a page, on both backends: exact, each under every filter but its own.

The expected counts are computed here from every page of the same listing (walk), so a
count is checked against the products the API itself returns.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from flipkart_api.catalog.facets import PRICE_EDGES
from flipkart_api.catalog.seed import settle

from .test_catalog import walk

ALL = "brand,category,price,rating,in_stock"


def facets(client: FlaskClient, query: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/products?{query}&facets={ALL}&limit=5")
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    assert len(body["items"]) <= 5
    return body["facets"]


def expected(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The facets of these products, counted in Python."""
    bands = [*PRICE_EDGES[1:], None]
    return {
        "brand": Counter(p["brand"] for p in items),
        "leaf": Counter(p["category"]["slug"] for p in items),
        "price": [
            sum(1 for p in items if low <= p["price"] and (high is None or p["price"] < high))
            for low, high in zip(PRICE_EDGES, bands, strict=True)
        ],
        "rating": {r: sum(1 for p in items if p["rating"] >= r) for r in (4, 3, 2, 1)},
        "in_stock": Counter(p["in_stock"] for p in items),
    }


@pytest.mark.usefixtures("catalog")
@pytest.mark.parametrize(
    "query",
    [
        "q=black",
        "q=samsung",
        "q=mobiles",
        "q=electronics -sony",
        # (sorted: a relevance page goes on with what misses one word, which is not counted)
        "q=mobile phone&sort=price",
        "q=home kitchen&sort=price",
        "category=fashion",
        "in_stock=true",
    ],
)
def test_counts_are_exact(client: FlaskClient, query: str) -> None:
    items = walk(client, f"{query}&limit=100")
    assert items
    want, got = expected(items), facets(client, query)
    top = sorted(want["brand"].items(), key=lambda kv: (-kv[1], kv[0]))[:30]
    assert [(b["brand"], b["count"]) for b in got["brand"]] == top
    leaves = {c["slug"]: c["count"] for c in got["category"]}
    assert {slug: leaves[slug] for slug in want["leaf"]} == dict(want["leaf"])
    assert [b["count"] for b in got["price"]] == want["price"]
    assert {r["at_least"]: r["count"] for r in got["rating"]} == want["rating"]
    if "in_stock=true" not in query:  # (its own filter is left out of its count)
        assert got["in_stock"] == {
            "in_stock": want["in_stock"][True],
            "out_of_stock": want["in_stock"][False],
        }


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
@pytest.mark.parametrize("q", ["electronics", "mobile phone"])
def test_postgres_counts_a_category_words_products_from_an_index_alone(
    catalog: Flask, q: str
) -> None:
    """'electronics' finds the category's products and the word's elsewhere: counted apart,
    the first from ix_products_facet_keys alone (as one OR, PostgreSQL read 250,000 rows
    of the heap at 1,000,000 products, 1.1 s); so do words that all name one category."""
    statements: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, *_args) -> None:  # type: ignore[no-untyped-def]
        if "GROUP BY" in statement:
            statements.append((statement, parameters))

    eng = catalog.extensions["db_engine"]
    event.listen(eng, "before_cursor_execute", record)
    try:
        facets(catalog.test_client(), f"q={q}")
    finally:
        event.remove(eng, "before_cursor_execute", record)
    assert statements
    settle(eng)  # as a seed leaves the table: every page all-visible (test_catalog.py)
    with eng.connect() as conn:
        # 400 products: it would scan them, or gather a few pages' rows from a bitmap
        conn.exec_driver_sql("SET enable_seqscan = off")
        conn.exec_driver_sql("SET enable_bitmapscan = off")
        for statement, parameters in statements:
            rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
            plan = "\n".join(row[0] for row in rows)
            assert "Index Only Scan using ix_products_facet_keys" in plan, plan


@pytest.mark.usefixtures("catalog")
def test_a_category_counts_what_is_below_it(client: FlaskClient) -> None:
    counts = {c["slug"]: c for c in facets(client, "q=black")["category"]}
    leaves = ("mobiles", "laptops", "audio", "televisions", "cameras")
    below = sum(counts[s]["count"] for s in leaves if s in counts)
    assert counts["electronics"]["count"] == below > 0
    assert all(counts[s]["parent_id"] == counts["electronics"]["id"] for s in leaves if s in counts)


@pytest.mark.usefixtures("catalog")
def test_each_facet_ignores_its_own_filter(client: FlaskClient) -> None:
    """brand=Sony narrows the page and every other count, not the brand counts."""
    everything = facets(client, "q=black")
    sony = facets(client, "q=black&brand=Sony")
    assert sony["brand"] == everything["brand"]
    assert len(sony["brand"]) > 1
    sony_items = walk(client, "q=black&brand=Sony&limit=100")
    assert sony_items
    assert {p["brand"] for p in sony_items} == {"Sony"}
    assert sum(b["count"] for b in sony["price"]) == len(sony_items)
    rated = facets(client, "q=black&min_rating=4")
    assert rated["rating"] == everything["rating"]
    assert all(p["rating"] >= 4 for p in walk(client, "q=black&min_rating=4&limit=100"))
    assert sum(b["count"] for b in rated["price"]) == everything["rating"][0]["count"]


@pytest.mark.usefixtures("catalog")
def test_no_facets_unless_asked_and_unknown_ones_are_422(client: FlaskClient) -> None:
    assert client.get("/api/v1/products?q=black").get_json()["facets"] is None
    only = client.get("/api/v1/products?q=black&facets=brand").get_json()["facets"]
    assert only["brand"]
    assert only["price"] is None
    for bad in ("colour", "brand,", ",brand", "brand,,price", ""):
        response = client.get(f"/api/v1/products?q=black&facets={bad}")
        assert response.status_code == 422, bad
        assert response.content_type == "application/problem+json"


@pytest.mark.usefixtures("catalog")
def test_facets_of_a_search_that_finds_nothing(client: FlaskClient) -> None:
    got = facets(client, "q=zzqxvw")
    assert got["brand"] == []
    assert got["category"] == []
    assert all(b["count"] == 0 for b in got["price"])
    assert got["in_stock"] == {"in_stock": 0, "out_of_stock": 0}
