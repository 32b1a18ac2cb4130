"""Facet counts: how many of the products a query finds fall in each brand, category, price
band, rating and stock state.

Each facet is counted under every filter of the request except its own (disjunctive
faceting, as Algolia and Meilisearch count): with `brand=Sony` the brand counts still show
how many Samsung products there are, so a shopper sees what switching would give. The
counts are exact: one GROUP BY per facet over the matching rows, in the page's transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from .listing import filters
from .models import Category, Product
from .schemas import (
    BrandCount,
    CategoryCount,
    Facets,
    PriceBucket,
    ProductQuery,
    RatingCount,
    StockCount,
)
from .search import Matcher

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
    """The facets `query.facets` names, for what `query` finds."""
    counted: dict[str, Any] = {}
    for name in query.facet_names:
        where = filters(query, but=name)
        if found is not None:
            where.append(found.anywhere)
        if category_ids is not None and name != "category":
            where.append(Product.category_id.in_(category_ids))
        counted[name] = _COUNTERS[name](sess, where)
    return Facets(**counted)


def _brands(sess: Session, where: list[ColumnElement[bool]]) -> list[BrandCount]:
    rows = sess.execute(
        select(Product.brand, func.count().label("n"))
        .where(*where, Product.brand != "")
        .group_by(Product.brand)
        .order_by(func.count().desc(), Product.brand)
        .limit(MAX_BRANDS)
    )
    return [BrandCount(brand=brand, count=n) for brand, n in rows]


def _categories(sess: Session, where: list[ColumnElement[bool]]) -> list[CategoryCount]:
    """Counts per category, each including its sub-categories; empty categories left out."""
    direct: dict[int, int] = dict(
        sess.execute(
            select(Product.category_id, func.count()).where(*where).group_by(Product.category_id)
        ).all()
    )
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


def _prices(sess: Session, where: list[ColumnElement[bool]]) -> list[PriceBucket]:
    band = case(
        *((Product.price >= edge, i) for i, edge in reversed(list(enumerate(PRICE_EDGES)))),
        else_=0,
    )
    counts: dict[int, int] = dict(
        sess.execute(select(band, func.count()).where(*where).group_by(band)).all()
    )
    bounds = [*PRICE_EDGES[1:], None]
    return [
        PriceBucket(min=low, max=high, count=counts.get(i, 0))
        for i, (low, high) in enumerate(zip(PRICE_EDGES, bounds, strict=True))
    ]


def _ratings(sess: Session, where: list[ColumnElement[bool]]) -> list[RatingCount]:
    sums = [func.coalesce(func.sum(case((Product.rating >= r, 1), else_=0)), 0) for r in RATINGS]
    row = sess.execute(select(*sums).where(*where)).one()
    return [RatingCount(at_least=r, count=int(n)) for r, n in zip(RATINGS, row, strict=True)]


def _stock(sess: Session, where: list[ColumnElement[bool]]) -> StockCount:
    selling = func.coalesce(func.sum(case((Product.stock > 0, 1), else_=0)), 0)
    row = sess.execute(select(selling, func.count()).where(*where)).one()
    return StockCount(in_stock=int(row[0]), out_of_stock=int(row[1]) - int(row[0]))


_COUNTERS: dict[str, Any] = {
    "brand": _brands,
    "category": _categories,
    "price": _prices,
    "rating": _ratings,
    "in_stock": _stock,
}
