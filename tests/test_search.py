"""Search as shoppers type it, the same on SQLite (FTS5) and PostgreSQL (tsvector + pg_trgm).

Every test runs on both backends over the demo catalog (conftest's `catalog`: 20 products
of each leaf category), through the API.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .test_catalog import walk


def search(client: FlaskClient, q: str, **params: Any) -> dict[str, Any]:
    """One page of GET /api/v1/products?q=..., as JSON (asserting the 200)."""
    query = urllib.parse.urlencode({"q": q, **params})
    response = client.get(f"/api/v1/products?{query}")
    assert response.status_code == 200, (q, response.get_json())
    body: dict[str, Any] = response.get_json()
    return body


def names(client: FlaskClient, q: str, limit: int = 10) -> list[str]:
    """The names on the first page."""
    return [p["name"] for p in search(client, q, limit=limit)["items"]]


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("samsng", "samsung"), ("iphnoe", "iphone"), ("lenvo", "lenovo"), ("addidas", "adidas"),
        ("headphnes", "headphones"), ("televsion", "television"), ("prestgie", "prestige"),
        ("mixr grinder", "mixer grinder"), ("sennhieser", "sennheiser"),
        ("blutooth speker", "bluetooth speaker"),
    ],
)  # fmt: skip
def test_a_typo_finds_what_was_meant(
    catalog: Flask, client: FlaskClient, typo: str, meant: str
) -> None:
    """One or two edits away (transpositions count once): the same first page as spelt right."""
    spelt_right = names(client, meant, limit=5)
    assert spelt_right, meant
    assert names(client, typo, limit=5) == spelt_right, typo


def test_exact_words_rank_above_typo_corrections(
    catalog: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    """ "sony" is a brand; "Sonu" a product whose name is one edit away: Sony comes first."""
    product = {
        "sku": "SONU-1", "name": "Sonu Cotton Kurta", "brand": "Sonu", "category": "women",
        "price": 49900, "mrp": 49900, "stock": 3,
    }  # fmt: skip
    assert client.post("/api/v1/products", json=product, headers=admin_headers).status_code == 201
    found = walk(client, "q=sony&limit=50")
    brands = [p["brand"] for p in found]
    assert "Sonu" not in brands  # a known word is not respelt
    assert set(brands) == {"Sony"}, brands
    assert [p["brand"] for p in walk(client, "q=sonu&limit=50")] == ["Sonu"]


def test_the_word_being_typed_is_a_prefix(catalog: Flask, client: FlaskClient) -> None:
    assert all(n.startswith("Samsung") for n in names(client, "sams"))
    galaxy = names(client, "galaxy s2")
    s24 = [n for n in galaxy if "Galaxy S24" in n]
    assert s24
    assert galaxy[: len(s24)] == s24, galaxy  # then other Galaxy phones (all but one word)
    laptops = search(client, "lapt", limit=5)["items"]
    assert laptops
    assert {p["category"]["slug"] for p in laptops} == {"laptops"}


@pytest.mark.parametrize(
    ("q", "leaf"),
    [
        ("mobile", "mobiles"), ("mobiles", "mobiles"), ("phone", "mobiles"), ("phones", "mobiles"),
        ("smartphone", "mobiles"), ("tv", "televisions"), ("television", "televisions"),
        ("kitchen appliances", "kitchen-appliances"), ("footwear", "footwear"),
        ("laptops", "laptops"), ("notebook", "laptops"),
        # two words that are one ("cell phone": cellphone, a synonym of phone; and words)
        ("cell phone", "mobiles"), ("note book", "laptops"),
    ],
)  # fmt: skip
def test_category_words_and_synonyms_steer(
    catalog: Flask, client: FlaskClient, q: str, leaf: str
) -> None:
    """ "phones" finds the Mobiles category (it used to find headphones only)."""
    items = search(client, q, limit=20)["items"]
    assert len(items) == 20, q
    assert {p["category"]["slug"] for p in items} == {leaf}, (q, [p["name"] for p in items])


def test_two_words_written_apart_find_the_one_word(catalog: Flask, client: FlaskClient) -> None:
    """ "head phones" is headphones (or both words, which no product has together). Sorted,
    so only what matches every clause (a relevance page goes on with "head" alone)."""

    def found(q: str) -> set[str]:
        return {p["name"] for p in search(client, q, limit=50, sort="price")["items"]}

    apart = found("head phones")
    assert apart == found("headphones")
    assert apart
    assert all("Headphones" in name for name in apart), apart


def test_a_top_category_word_covers_its_sub_categories(catalog: Flask, client: FlaskClient) -> None:
    found = {p["category"]["slug"] for p in walk(client, "q=electronics&limit=100")}
    assert found == {"mobiles", "laptops", "audio", "televisions", "cameras"}


def test_web_search_syntax(catalog: Flask, client: FlaskClient) -> None:
    phrase = walk(client, "q=%22mixer%20grinder%22&limit=50")
    assert phrase
    assert all("Mixer Grinder" in p["name"] for p in phrase)
    shoes = walk(client, "q=shoes%20-running&limit=50")
    assert shoes
    assert not any("running" in (p["name"] + p["description"]).lower() for p in shoes)
    assert any("Running" in p["name"] for p in walk(client, "q=shoes&limit=50"))
    either = {p["brand"] for p in walk(client, "q=puma%20or%20adidas&limit=50")}
    assert either == {"Puma", "Adidas"}
    # a trailing `or` is not a word, and never a substring ("Forest Green" has "or" in it)
    assert names(client, "phone or", limit=20) == names(client, "phone", limit=20)


def test_words_are_words_not_substrings(catalog: Flask, client: FlaskClient) -> None:
    found = walk(client, "q=ear&limit=100")  # in "wear", "year", "gear": not a word of them
    assert all(
        any(w.startswith("ear") for w in (p["name"] + " " + p["description"]).lower().split())
        for p in found
    ), [p["name"] for p in found]


@pytest.mark.parametrize(
    "q",
    ['"', '"unclosed phrase', "-", "--", "-samsung", "*", "sam*", "NEAR(a b)", "a:b",
     "{name}:x", "'", "\\", "samsung AND", "OR", "or or", "(", ")", "^", "the", "!!!", "😀",
     "x" * 200, "'samsung' | 'lg'", "a & b", "<->", "colour:black"],
)  # fmt: skip
def test_query_syntax_never_breaks_the_engines(catalog: Flask, client: FlaskClient, q: str) -> None:
    """FTS5 and to_tsquery both have a syntax; what a shopper types is never fed to either."""
    search(client, q)  # asserts the 200


def test_nothing_to_look_for_finds_nothing(catalog: Flask, client: FlaskClient) -> None:
    assert search(client, "the of and")["items"] == []
    assert search(client, "-samsung")["items"] == []  # only an exclusion


def test_a_query_that_finds_nothing_shows_what_it_meant(
    catalog: Flask, client: FlaskClient
) -> None:
    """Two edits in a six-letter word is past what search forgives: when that finds nothing,
    the results are those of the query respelt, and the answer says so (on every page)."""
    body = search(client, "samsvg", limit=2)
    assert body["showing_results_for"] == "samsung"
    assert [p["id"] for p in body["items"]] == [
        p["id"] for p in search(client, "samsung", limit=2)["items"]
    ]
    spelt = [p["id"] for p in walk(client, "q=samsung&limit=7")]
    assert [p["id"] for p in walk(client, "q=samsvg&limit=7")] == spelt
    later = search(client, "samsvg", limit=2, cursor=body["next_cursor"])
    assert later["showing_results_for"] == "samsung"
    nothing = search(client, "zzqxvw")
    assert (nothing["items"], nothing["showing_results_for"]) == ([], None)
    assert search(client, "samsung")["showing_results_for"] is None


def test_all_but_one_word_comes_after_every_word(catalog: Flask, client: FlaskClient) -> None:
    """ "samsung tv": Samsung TVs first, then other Samsung products (Meilisearch's "last")."""
    found = walk(client, "q=samsung%20tv&limit=10")
    slugs = [p["category"]["slug"] for p in found]
    assert {p["brand"] for p in found} == {"Samsung"}
    tvs = slugs.count("televisions")
    assert tvs > 0
    assert slugs[:tvs] == ["televisions"] * tvs
    assert "mobiles" in slugs[tvs:]
    # a word nothing can match is the one dropped, wherever it is
    polo = walk(client, "q=xqzv%20polo&limit=10")
    assert polo
    assert all("polo" in (p["name"] + " " + p["brand"]).lower() for p in polo)


def test_the_lexicon_follows_the_catalog(
    catalog: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    """A new product's words are typo-tolerant at once; a rename, and a delete, show at once."""
    product = {
        "sku": "ZX-1", "name": "Zyxoria Blender 600 W", "brand": "Zyxoria",
        "category": "kitchen-appliances", "price": 199900, "mrp": 249900, "stock": 4,
    }  # fmt: skip
    created = client.post("/api/v1/products", json=product, headers=admin_headers)
    assert created.status_code == 201
    pid = created.get_json()["id"]
    assert names(client, "zyxorai") == ["Zyxoria Blender 600 W"]
    renamed = client.patch(
        f"/api/v1/products/{pid}", json={"name": "Quorvex Blender 600 W"}, headers=admin_headers
    )
    assert renamed.status_code == 200
    assert names(client, "quorvx") == ["Quorvex Blender 600 W"]
    assert names(client, "zyxoria blender") == ["Quorvex Blender 600 W"]  # the brand stayed
    assert client.delete(f"/api/v1/products/{pid}", headers=admin_headers).status_code == 204
    assert names(client, "quorvex") == []
