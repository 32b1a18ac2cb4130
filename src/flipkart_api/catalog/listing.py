"""The product list query: filters, price-range probe, sort, keyset cursors, category merges."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    func,
    literal,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.sql.elements import KeyedColumnElement

from ..pagination import decode_cursor
from .models import Product
from .page_rows import Ordering, keyset, ordering, page_select
from .relevance import relevance_steps
from .schemas import ProductQuery
from .search import Matcher

FEW = 500  # a price range holding at most this many products is sorted, not walked


def _price_range(query: ProductQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.min_price is not None:
        conditions.append(Product.price >= query.min_price)
    if query.max_price is not None:
        conditions.append(Product.price <= query.max_price)
    return conditions


def filters(query: ProductQuery, but: str | None = None) -> list[ColumnElement[bool]]:
    """The query's filters other than category (and other than `but`, a facet's own)."""
    conditions = _price_range(query) if but != "price" else []
    if query.brand and but != "brand":
        conditions.append(func.lower(Product.brand) == query.brand.strip().lower())
    if query.in_stock is not None and but != "in_stock":
        conditions.append(Product.stock > 0 if query.in_stock else Product.stock == 0)
    if query.min_rating is not None and but != "rating":
        conditions.append(Product.rating >= query.min_rating)
    return conditions


ALL = 0  # the probe's scope id for "every category" (category ids start at 1)


def _scopes(category_ids: list[int] | None) -> list[int]:
    """The category ids a list is restricted to, or [ALL]."""
    return category_ids if category_ids is not None else [ALL]


def price_range_probe(
    query: ProductQuery, dialect: str, category_ids: list[int] | None
) -> Select[Any] | None:
    """(scope, products in the price range capped at FEW + 1) per category, when it matters.

    PostgreSQL estimates a price range as if prices did not depend on the category, so
    "books, newest first, from Rs 4,000" walked every book by date to find none (0.5 s at
    1,000,000 products). Each count here reads at most FEW + 1 entries of the (category_id,
    price, id) index (or the price index); a scope that holds no more is sorted, not walked
    (`build_query(few=...)`). Scopes with no product in the range return no row.
    """
    if dialect != "postgresql" or query.effective_sort in ("price", "-price", "relevance"):
        return None
    if query.min_price is None and query.max_price is None:
        return None
    branches = []
    for scope in _scopes(category_ids):
        where = _price_range(query)
        if scope != ALL:
            where.append(Product.category_id == scope)
        branches.append(
            select(literal(scope).label("scope"))
            .where(*where)
            .order_by(Product.price)
            .limit(FEW + 1)
        )
    counted = (union_all(*branches) if len(branches) > 1 else branches[0]).subquery("counted")
    return select(counted.c.scope, func.count()).group_by(counted.c.scope)


def scopes_with_few(held: Mapping[int, int], category_ids: list[int] | None) -> list[int]:
    """The scopes whose probed count (price_range_probe's rows) is at most FEW."""
    return [scope for scope in _scopes(category_ids) if held.get(scope, 0) <= FEW]


def build_query(
    query: ProductQuery,
    dialect: str,
    category_ids: list[int] | None,
    few: Collection[int] = (),
    found: Matcher | None = None,
) -> Iterable[Select[Any]]:
    """SELECTs of products (+ sort key) for one page, each of limit+1 rows (a next page?).

    One statement, except relevance: two per tier, to run in turn until limit+1 rows are in
    (relevance.relevance_steps, built as they are run). `found`: what `q` matches
    (search.matcher), given whenever q is; relevance is its tier, ties (most of them) newest
    first, by id. `few`: the scopes (category ids, or ALL) that price_range_probe found
    holding at most FEW products.
    """
    conditions = filters(query)
    if query.q and found is not None:
        if query.effective_sort == "relevance":
            if category_ids is not None:
                conditions.append(Product.category_id.in_(category_ids))
            return relevance_steps(query, conditions, found)
        conditions.append(found.anywhere)

    order = ordering(query.effective_sort)
    if query.cursor:
        sort = query.effective_sort
        value, last_id = decode_cursor(query.cursor, sort, datetime_key=sort == "newest")
        row, after = (
            tuple_(order.key, Product.id),
            tuple_(literal(value, order.key.type), literal(last_id)),
        )
        conditions.append(row < after if order.descending else row > after)

    if dialect == "postgresql" and (few or (category_ids is not None and len(category_ids) > 1)):
        scopes = _scopes(category_ids)
        return [_merged_scopes(order, conditions, scopes, set(few), query.limit + 1)]
    if category_ids is not None:
        conditions.append(Product.category_id.in_(category_ids))
    sort_key: KeyedColumnElement[Any] = order.key.label("sort_key")
    stmt = page_select(sort_key).where(*conditions)
    return [stmt.order_by(*keyset(order.key, Product.id, order.descending)).limit(query.limit + 1)]


def _merged_scopes(
    order: Ordering,
    conditions: list[ColumnElement[bool]],
    scopes: list[int],
    few: set[int],
    rows: int,
) -> Select[Any]:
    """One page on PostgreSQL as the merge of one small read per category.

    `category_id IN (...) ORDER BY price` cannot use the (category_id, price, id) index for
    the order, so PostgreSQL walked the whole price index skipping other categories' rows
    (0.7 s for "electronics by price" at 1,000,000 products). Here each category is its own
    index walk of at most `rows` matches, except the scopes known to hold few matches: those
    are read whole (materialised, at most FEW rows each) and sorted, never walked.
    """

    def scoped(where: list[ColumnElement[bool]], in_scopes: list[int]) -> Select[Any]:
        if in_scopes != [ALL]:
            where = [*where, Product.category_id.in_(in_scopes)]
        return select(Product.id.label("id"), order.key.label("sort_key")).where(*where)

    parts: list[Select[Any]] = []
    small = [scope for scope in scopes if scope in few]
    if small:
        matches = scoped(conditions, small).cte("few_matches").prefix_with("MATERIALIZED")
        parts.append(select(matches.c.id, matches.c.sort_key))
    for scope in (scope for scope in scopes if scope not in few):
        walk = scoped(conditions, [scope])
        parts.append(walk.order_by(*keyset(order.key, Product.id, order.descending)).limit(rows))
    merged = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("merged")
    return (
        page_select(merged.c.sort_key)
        .join(merged, merged.c.id == Product.id)
        .order_by(*keyset(merged.c.sort_key, Product.id, order.descending))
        .limit(rows)
    )
