"""The search-quality yardstick: its metrics by hand, its rules, and the judgments file itself."""

from __future__ import annotations

import math
from typing import Any

import pytest
from bench import search_judgments as judgments
from bench import search_metrics as metrics
from bench.search_judgments import Catalog, Item
from bench.search_quality import targets

ELECTRONICS = frozenset({"mobiles", "electronics"})
CATALOG = Catalog(
    [
        Item(
            "FK1", "Samsung Galaxy S24 5G (Icy Silver, 256 GB) (8 GB RAM)", "Samsung", ELECTRONICS
        ),
        Item(
            "FK2",
            "Samsung Neo QLED 139 cm (55 inch) Full HD LED Smart TV",
            "Samsung",
            frozenset({"televisions", "electronics"}),
        ),
        Item("FK3", "Apple iPhone 15 5G (Lavender, 128 GB) (6 GB RAM)", "Apple", ELECTRONICS),
        Item("FK4", "Nothing Phone (2a) 5G (Icy Silver, 64 GB) (4 GB RAM)", "Nothing", ELECTRONICS),
        Item(
            "FK5",
            "boAt Rockerz 450 Bluetooth Headphones (Beige)",
            "boAt",
            frozenset({"audio", "electronics"}),
        ),
        Item(
            "FK6",
            "Lakmé Absolute Liquid Lipstick (Nude Pink, 4 g)",
            "Lakmé",
            frozenset({"makeup", "beauty"}),
        ),
        Item(
            "FK7",
            "H&M Men Solid Polo Neck T-Shirt (Black, Size M)",
            "H&M",
            frozenset({"men", "fashion"}),
        ),
    ]
)


def _query(q: str, *rules: dict[str, Any], kind: str = "several") -> dict[str, Any]:
    return {"q": q, "kind": kind, "relevant": list(rules)}


def test_ndcg_by_hand() -> None:
    """Gains 2^g - 1 at ranks 1..3 discounted by log2(rank + 1); ideal = grades 3, 2, 1."""
    judged = {"A": 3, "B": 2, "C": 1}
    # C (gain 1) at rank 1, an unjudged X, A (gain 7) at rank 3: 1/1 + 0 + 7/2 = 4.5
    ideal = 7 / 1 + 3 / math.log2(3) + 1 / 2  # 9.3928
    assert metrics.ndcg(judged, ["C", "X", "A"]) == pytest.approx(4.5 / ideal)
    assert metrics.ndcg(judged, ["C", "X", "A"]) == pytest.approx(0.4791, abs=1e-4)
    assert metrics.ndcg(judged, ["A", "B", "C"]) == pytest.approx(1.0)
    assert metrics.ndcg(judged, []) == 0.0


def test_ndcg_ideal_comes_from_the_whole_catalog_and_stops_at_ten() -> None:
    """Twelve grade-3 products: any ten of them are a perfect page; one grade-1 first is not."""
    judged = {f"E{n}": 3 for n in range(12)} | {"R": 1}
    assert metrics.ndcg(judged, [f"E{n}" for n in range(2, 12)]) == pytest.approx(1.0)
    # R (gain 1) displaces a 7 at rank 1; the 10th grade-3 falls off the page.
    dcg = 1 + sum(7 / math.log2(rank + 1) for rank in range(2, 11))
    ideal = sum(7 / math.log2(rank + 1) for rank in range(1, 11))
    returned = ["R", *(f"E{n}" for n in range(12))]
    assert metrics.ndcg(judged, returned) == pytest.approx(dcg / ideal)


def test_ndcg_counts_a_repeated_product_once_and_needs_something_relevant() -> None:
    assert metrics.ndcg({"A": 3, "B": 2}, ["A", "A", "B"]) == pytest.approx(1.0)
    assert metrics.ndcg({}, ["A"]) is None  # a nonsense query: no nDCG, its result count instead


def test_recall_by_hand() -> None:
    """Of the grade >= 2 products (A, B, D), the first ten hold A: 1 of 3."""
    judged = {"A": 3, "B": 2, "C": 1, "D": 3}
    assert metrics.recall(judged, ["C", "A", "X"]) == pytest.approx(1 / 3)
    assert metrics.recall(judged, ["D", "B", "A"]) == 1.0
    assert metrics.recall({"C": 1}, ["C"]) is None  # nothing close enough to count


def test_recall_is_relative_to_what_fits_on_the_page() -> None:
    """Fifteen grade-2 products: ten of them on the page is all that ten results can hold."""
    judged = {f"P{n}": 2 for n in range(15)}
    assert metrics.recall(judged, [f"P{n}" for n in range(10)]) == 1.0
    assert metrics.recall(judged, [f"P{n}" for n in range(5)]) == 0.5
    assert metrics.recall(judged, ["X", *(f"P{n}" for n in range(15))]) == 0.9


def test_typo_top3_needs_an_exact_product_in_the_first_three() -> None:
    judged = {"A": 3, "B": 2}
    assert metrics.top3_exact(judged, ["X", "B", "A"])
    assert not metrics.top3_exact(judged, ["X", "B", "Y", "A"])


def test_rules_materialize_to_the_highest_grade_each_product_meets() -> None:
    """The brief's "samsung mobile": Samsung phones 3; other phones, other Samsung 1."""
    query = _query(
        "samsung mobile",
        {"grade": 3, "brand": "Samsung", "category": "mobiles"},
        {"grade": 1, "category": "mobiles"},
        {"grade": 1, "brand": "samsung"},  # case-insensitive
    )
    assert judgments.materialize(query, CATALOG) == {"FK1": 3, "FK2": 1, "FK3": 1, "FK4": 1}


@pytest.mark.parametrize(
    ("rule", "skus"),
    [
        # Whole words only: neither iPhone nor Headphones is a "phone".
        ({"name_words": ["phone"]}, {"FK4"}),
        ({"name_words": ["iPhone", "128", "gb"]}, {"FK3"}),
        # T-Shirt is the words t and shirt; Lakmé is one word, accent and all.
        ({"name_words": ["t", "shirt"]}, {"FK7"}),
        ({"name_words": ["lakmé"]}, {"FK6"}),
        ({"name_words": ["lakme"]}, set()),
        # A top category holds its leaves; the rule's fields are ANDed.
        ({"category": "electronics", "not_name_words": ["samsung"]}, {"FK3", "FK4", "FK5"}),
        ({"brand": "BOAT", "category": "audio", "name_words": ["bluetooth"]}, {"FK5"}),
        ({"brand": "boAt", "category": "watches"}, set()),
    ],
)
def test_a_rule_is_its_fields_anded(rule: dict[str, Any], skus: set[str]) -> None:
    query = _query("q", {"grade": 2, **rule})
    assert set(judgments.materialize(query, CATALOG)) == skus


def test_the_judgments_file_holds_on_a_small_catalog() -> None:
    """Every query has q, kind, relevant; each judged one finds a product in 2,000."""
    queries = judgments.load()
    judgments.check(queries)
    assert len(queries) >= 170


def test_a_broken_judgment_is_named() -> None:
    queries: list[dict[str, Any]] = [
        {"q": "nothing", "kind": "exact", "relevant": [{"grade": 3, "brand": "Nokia"}]},
        {"q": "samsnug", "kind": "typo", "intended": "apple", "relevant": [{"grade": 3}]},
        {"q": "zzz", "kind": "nonsense", "relevant": [{"grade": 1, "brand": "Samsung"}]},
        {"q": "no kind", "relevant": []},
    ]
    found = "\n".join(judgments.problems(queries, CATALOG))
    assert "'nothing': no product of 7 matches" in found
    assert "'samsnug': intended 'apple' is not 1-2 edits away" in found
    assert "'samsnug': bad rule" in found
    assert "'zzz': a nonsense query with relevant products" in found
    assert "'no kind': no kind" in found
    assert "only 1 queries have a relevant product" in found


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("samsng", "samsung", 1),
        ("casoi", "casio", 1),
        ("headfones", "headphones", 2),
        ("", "ab", 2),
    ],
)
def test_edit_distance(a: str, b: str, distance: int) -> None:
    assert judgments.edits(a, b) == distance


def test_targets_are_read_per_backend() -> None:
    """Three targets a backend, each with the figure the CI check asserts on."""
    rows = [
        metrics.score(_query("a", kind="typo"), {"A": 3}, ["A"]),
        metrics.score(_query("b"), {"B": 3}, []),
        metrics.score(_query("zz", kind="nonsense"), {}, ["A"]),
    ]
    figures = {"backends": {"sqlite": metrics.summarize(rows)}}
    got = {name: (value, op, bound) for name, value, op, bound, _ in targets(figures)}
    assert got == {
        "nDCG@10, sqlite": (0.5, ">=", 0.85),
        "zero-result share of queries with a relevant product, sqlite": (0.5, "<=", 0.01),
        "typo queries with a grade-3 product in the top 3, sqlite": (1.0, ">=", 0.90),
    }
    assert figures["backends"]["sqlite"]["nonsense_results"] == {"zz": 1}
