"""The judged search queries (bench/search_judgments.json): loading, checking, and grading.

Relevance is written as rules over a product's structured ground truth (brand, category,
the words of its name), never as a list of SKUs and never by running the search engine,
so the same file judges a catalog of any size. Pure and stdlib-only: the unit tests and
the evaluator share it.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

JUDGMENTS = Path(__file__).resolve().parent / "search_judgments.json"
KINDS = frozenset(
    {"exact", "plural", "typo", "brand", "category", "synonym", "several", "prefix", "syntax"}
    | {"nonsense"}  # the queries with nothing relevant
)
RULE_FIELDS = frozenset({"grade", "brand", "category", "name_words", "not_name_words"})
CHECK_PRODUCTS = 2000  # every judged query must find something in a catalog this small
MIN_ANSWERABLE = 150  # queries with a relevant product
MIN_TYPOS = 40
# Unicode letters and digits: "Lakmé" is one word, "Levi's" two, "18-55" two.
_WORD = re.compile(r"[^\W_]+")


class Item(NamedTuple):
    """A product as the judgments see it: what the generator decided, not what search sees."""

    sku: str
    name: str
    brand: str
    categories: frozenset[str]  # its leaf slug and the leaf's parent slug


def words(text: str) -> frozenset[str]:
    """The whole words of a text, lower case."""
    return frozenset(_WORD.findall(text.casefold()))


class Catalog:
    """Products indexed by brand, category and name word: a rule is a few set operations."""

    def __init__(self, items: Iterable[Item]) -> None:
        self.items = {item.sku: item for item in items}
        self._brand: dict[str, set[str]] = defaultdict(set)
        self._category: dict[str, set[str]] = defaultdict(set)
        self._word: dict[str, set[str]] = defaultdict(set)
        for item in self.items.values():
            self._brand[item.brand.casefold()].add(item.sku)
            for slug in item.categories:
                self._category[slug].add(item.sku)
            for word in words(item.name):
                self._word[word].add(item.sku)

    def select(self, rule: Mapping[str, Any]) -> set[str]:
        """The SKUs meeting every field the rule sets (an absent field is no test)."""
        tests = [self._word.get(w.casefold(), set()) for w in rule.get("name_words", ())]
        if "brand" in rule:
            tests.append(self._brand.get(rule["brand"].casefold(), set()))
        if "category" in rule:
            tests.append(self._category.get(rule["category"], set()))
        chosen = set.intersection(*tests) if tests else set(self.items)
        for word in rule.get("not_name_words", ()):
            chosen -= self._word.get(word.casefold(), set())
        return chosen


def materialize(query: Mapping[str, Any], catalog: Catalog) -> dict[str, int]:
    """sku -> the highest grade (1-3) among the query's rules that the product meets."""
    graded: dict[str, int] = {}
    for rule in sorted(query["relevant"], key=lambda r: r["grade"]):
        graded.update(dict.fromkeys(catalog.select(rule), rule["grade"]))
    return graded


def load(path: Path = JUDGMENTS) -> list[dict[str, Any]]:
    """The queries of the judgments file, each with q, kind and relevant."""
    queries: list[dict[str, Any]] = json.loads(path.read_text())["queries"]
    return queries


def generated(count: int) -> Catalog:
    """Products 0..count-1 straight from the generator (no database): for the file's check."""
    from flipkart_api.seed_data import CATEGORIES, iter_products  # stdlib-only, importable

    parent = {c.slug: c.parent_slug for c in CATEGORIES}
    items = []
    for p in iter_products(count):
        leaf, top = p.category_slug, parent[p.category_slug]
        items.append(Item(p.sku, p.name, p.brand, frozenset({leaf, top or leaf})))
    return Catalog(items)


def edits(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, swaps."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            best = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, prev2[j - 2] + 1)
            row.append(best)
        prev2, prev = prev, row
    return prev[-1]


def problems(queries: list[dict[str, Any]], catalog: Catalog) -> list[str]:
    """Everything wrong with the judgments against this catalog; empty when they hold."""
    found: list[str] = []
    answerable = typos = 0
    seen: set[str] = set()
    for n, query in enumerate(queries):
        label = f"query {n} {query.get('q')!r}"
        missing = {"q", "kind", "relevant"} - set(query)
        if missing:
            found.append(f"{label}: no {', '.join(sorted(missing))}")
            continue
        if query["q"] in seen:
            found.append(f"{label}: judged twice")
        seen.add(query["q"])
        if query["kind"] not in KINDS:
            found.append(f"{label}: kind {query['kind']!r} is none of {sorted(KINDS)}")
        for rule in query["relevant"]:
            unknown = set(rule) - RULE_FIELDS
            if unknown or rule.get("grade") not in (1, 2, 3) or len(rule) < 2:
                found.append(f"{label}: bad rule {rule} (fields {sorted(RULE_FIELDS)})")
        if query["kind"] == "nonsense":
            if query["relevant"]:
                found.append(f"{label}: a nonsense query with relevant products")
            continue
        graded = materialize(query, catalog)
        if not graded:
            found.append(f"{label}: no product of {len(catalog.items):,} matches its rules")
        answerable += bool(graded)
        if query["kind"] == "typo":
            typos += 1
            intended = query.get("intended", "")
            if not 1 <= edits(query["q"], intended) <= 2:
                found.append(f"{label}: intended {intended!r} is not 1-2 edits away")
            if 3 not in graded.values():
                found.append(f"{label}: no grade-3 product, so its top-3 cannot be judged")
    if answerable < MIN_ANSWERABLE:
        found.append(f"only {answerable} queries have a relevant product (>= {MIN_ANSWERABLE})")
    if typos < MIN_TYPOS:
        found.append(f"only {typos} typo queries (>= {MIN_TYPOS})")
    return found


def check(queries: list[dict[str, Any]], count: int = CHECK_PRODUCTS) -> None:
    """Raise, listing every problem, unless the judgments hold on a `count`-product catalog."""
    found = problems(queries, generated(count))
    if found:
        raise ValueError("bench/search_judgments.json:\n  " + "\n  ".join(found))
