"""Facet counts: how many of the products a query finds fall in each brand, category, price
band, rating and stock state.

Each facet is counted under every filter of the request except its own (disjunctive
faceting, as Algolia and Meilisearch count): with `brand=Sony` the brand counts still show
how many Samsung products there are, so a shopper sees what switching would give. The
counts are exact: one GROUP BY per facet over the matching rows, in the page's transaction
(a category word's: the category's products, from an index alone, and the word's outside it).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import ColumnElement, case, func, select, true, union_all
from sqlalchemy.orm import Session

from .listing import filters
from .models import Category, Product
from .schemas import (
    ProductQuery,
)
from .search import Matcher
from .search_schemas import BrandCount, CategoryCount, Facets, PriceBucket, RatingCount, StockCount

MAX_BRANDS = 30  # the most frequent; a long tail of one-product brands helps nobody
# Price bands in paise: Rs 0-500, 500-1,000, ... 50,000 and above.
PRICE_EDGES = tuple(rupees * 100 for rupees in (0, 500, 1000, 2000, 5000, 10000, 20000, 50000))
RATINGS = (4, 3, 2, 1)


def facet_counts(
    sess: Session,
    query: ProductQuery,
    category_ids: list[int] | None,
    found: Matcher | None,
) -> Facets:
    """The facets `query.facets` names, for what `query` finds.

    Facets whose own filter the query does not use count under the same conditions: they
    share one scan of the matches (a GROUP BY over brand, category, price band, rating band
    and stock), added up here. A facet whose filter is in use gets a scan of its own.
    """
    own = {
        "brand": query.brand is not None,
        "category": category_ids is not None,
        "price": query.min_price is not None or query.max_price is not None,
        "rating": query.min_rating is not None,
        "in_stock": query.in_stock is not None,
    }
    scans: dict[str | None, list[str]] = {}
    for name in query.facet_names:
        scans.setdefault(name if own[name] else None, []).append(name)
    counted: dict[str, Any] = {}
    parts = (found.parts or (found.anywhere,)) if found is not None else (true(),)
    for but, names in scans.items():
        where = filters(query, but=but)
        if category_ids is not None and but != "category":
            where.append(Product.category_id.in_(category_ids))
        cube = _cube(sess, [[*where, part] for part in parts])
        for name in names:
            counted[name] = _COUNTERS[name](sess, cube)
    return Facets(**counted)


_BAND = case(
    *((Product.price >= edge, i) for i, edge in reversed(list(enumerate(PRICE_EDGES)))),
    else_=0,
)
_RATED = case(*((Product.rating >= r, r) for r in RATINGS), else_=0)
_SELLING = case((Product.stock > 0, 1), else_=0)


def _cube(sess: Session, parts: list[list[ColumnElement[bool]]]) -> list[Any]:
    """(brand, category id, price band, rating band, selling, count) of the matches: those
    of each part of the query (disjoint: search.Matcher.parts), added up."""
    keys = (Product.brand, Product.category_id, _BAND, _RATED, _SELLING)
    if len(parts) == 1:
        stmt = select(*keys, func.count()).where(*parts[0]).group_by(*keys)
        return list(sess.execute(stmt).all())
    named: list[Any] = [key.label(name) for key, name in zip(keys, _KEY_NAMES, strict=True)]
    each = union_all(*(select(*named).where(*where) for where in parts)).subquery("matches")
    columns = [each.c[name] for name in _KEY_NAMES]
    return list(sess.execute(select(*columns, func.count()).group_by(*columns)).all())


_KEY_NAMES = ("brand", "category_id", "band", "rated", "selling")


def _sum(cube: list[Any], column: int) -> Counter[Any]:
    counts: Counter[Any] = Counter()
    for row in cube:
        counts[row[column]] += row[5]
    return counts


def _brands(_sess: Session, cube: list[Any]) -> list[BrandCount]:
    counts = _sum(cube, 0)
    ranked = sorted(((-n, b) for b, n in counts.items() if b), key=lambda nb: nb)[:MAX_BRANDS]
    return [BrandCount(brand=b, count=-n) for n, b in ranked]


def _categories(sess: Session, cube: list[Any]) -> list[CategoryCount]:
    """Counts per category, each including its sub-categories; empty categories left out."""
    direct = _sum(cube, 1)
    tree = sess.execute(
        select(Category.id, Category.slug, Category.name, Category.parent_id).order_by(Category.id)
    ).all()
    parent = {row.id: row.parent_id for row in tree}
    total: dict[int, int] = {}
    for category_id, n in direct.items():
        node: int | None = category_id
        while node is not None:
            total[node] = total.get(node, 0) + n
            node = parent.get(node)
    return [
        CategoryCount(id=r.id, slug=r.slug, name=r.name, parent_id=r.parent_id, count=total[r.id])
        for r in tree
        if total.get(r.id)
    ]


def _prices(_sess: Session, cube: list[Any]) -> list[PriceBucket]:
    counts = _sum(cube, 2)
    bounds = [*PRICE_EDGES[1:], None]
    return [
        PriceBucket(min=low, max=high, count=counts.get(i, 0))
        for i, (low, high) in enumerate(zip(PRICE_EDGES, bounds, strict=True))
    ]


def _ratings(_sess: Session, cube: list[Any]) -> list[RatingCount]:
    counts = _sum(cube, 3)
    return [
        RatingCount(at_least=r, count=sum(n for band, n in counts.items() if band >= r))
        for r in RATINGS
    ]


def _stock(_sess: Session, cube: list[Any]) -> StockCount:
    counts = _sum(cube, 4)
    return StockCount(in_stock=counts.get(1, 0), out_of_stock=counts.get(0, 0))


_COUNTERS: dict[str, Any] = {
    "brand": _brands,
    "category": _categories,
    "price": _prices,
    "rating": _ratings,
    "in_stock": _stock,
}
