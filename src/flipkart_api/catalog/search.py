"""Building the product list query: filters, text search, sort, and keyset cursors."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    case,
    cast,
    column,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import KeyedColumnElement

from ..pagination import decode_cursor
from .models import Category, Product
from .schemas import ProductQuery, SortKey

MAX_TERMS = 8  # bounds the work a single `q` can ask of the SQLite fallback
FEW = 500  # a price range holding at most this many products is sorted, not walked
# websearch syntax beyond plain words: phrases, OR, exclusion (and hyphenated compounds)
_OPERATORS = re.compile(r'["-]|\bor\b', re.IGNORECASE)


@dataclass(frozen=True)
class Ordering:
    """A sort key column (or expression), and whether it runs descending."""

    key: ColumnElement[Any] | InstrumentedAttribute[Any]
    descending: bool


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def text_match(dialect: str, q: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """(matches anywhere, matches in name or brand) for the database at hand.

    PostgreSQL: generated tsvector columns with GIN indexes (see migrations 0001, 0003, 0004).
    SQLite (development): every term must appear, as a substring, in the fields.
    """
    if dialect == "postgresql":
        tsquery = func.websearch_to_tsquery(literal_column("'english'::regconfig"), q)
        anywhere: ColumnElement[Any] = column("search_vector")
        title: ColumnElement[Any] = column("title_vector")
        return anywhere.op("@@")(tsquery), title.op("@@")(tsquery)
    terms = [t for t in q.lower().split() if t][:MAX_TERMS]
    in_title = [
        or_(Product.name.ilike(_like(t), escape="\\"), Product.brand.ilike(_like(t), escape="\\"))
        for t in terms
    ]
    anywhere_terms = [
        or_(title, Product.description.ilike(_like(t), escape="\\"))
        for t, title in zip(terms, in_title, strict=True)
    ]
    return and_(*anywhere_terms), and_(*in_title)


def body_hint(q: str) -> ColumnElement[bool] | None:
    """A positive, indexable condition implied by "matches, but not in the title" (PostgreSQL).

    For plain words, a product that has every term but not every term in its name or brand
    has some term only in its description: `body_vector` (migration 0004) matches any of the
    terms. PostgreSQL can estimate and index that, unlike `NOT title_vector @@ q`. Phrases,
    OR and exclusions break the implication, so they get no hint (and the slower plan).
    """
    if _OPERATORS.search(q):
        return None
    english: ColumnElement[Any] = literal_column("'english'::regconfig")
    any_term = func.replace(cast(func.plainto_tsquery(english, q), Text), " & ", " | ")
    return column("body_vector").op("@@")(func.to_tsquery(english, any_term))


def ordering(sort: SortKey, relevance: ColumnElement[Any] | None) -> Ordering:
    """The keyset ordering for a sort name; ties always break on id in the same direction."""
    if sort == "relevance" and relevance is not None:
        return Ordering(relevance, True)
    keys: dict[str, Ordering] = {
        "newest": Ordering(Product.created_at, True),
        "price": Ordering(Product.price, False),
        "-price": Ordering(Product.price, True),
        "rating": Ordering(Product.rating, False),
        "-rating": Ordering(Product.rating, True),
    }
    return keys[sort]


PAGE_COLUMNS: tuple[Any, ...] = (
    Product.id,
    Product.sku,
    Product.slug,
    Product.name,
    Product.description,
    Product.brand,
    Product.price,
    Product.mrp,
    Product.currency,
    Product.stock,
    Product.rating,
    Product.images,
    Product.created_at,
    Product.updated_at,
    Category.id.label("category_id"),
    Category.slug.label("category_slug"),
    Category.name.label("category_name"),
)


def page_select(sort_key: ColumnElement[Any]) -> Select[Any]:
    """Plain rows (a product's columns, its category's, the sort key) for a list page.

    Rows, not ORM objects: a page is serialised once and never changed, and building 2 x 21
    mapped objects per page was a fifth of an uncached list's CPU.
    """
    stmt: Select[Any] = select(*PAGE_COLUMNS, sort_key.label("sort_key"))
    return stmt.join(Category, Category.id == Product.category_id)


def _price_range(query: ProductQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.min_price is not None:
        conditions.append(Product.price >= query.min_price)
    if query.max_price is not None:
        conditions.append(Product.price <= query.max_price)
    return conditions


def _filters(query: ProductQuery) -> list[ColumnElement[bool]]:
    conditions = _price_range(query)
    if query.brand:
        conditions.append(func.lower(Product.brand) == query.brand.strip().lower())
    if query.in_stock is not None:
        conditions.append(Product.stock > 0 if query.in_stock else Product.stock == 0)
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
) -> Select[Any]:
    """SELECT products (+ sort key) for one page, with limit+1 rows to detect a next page.

    Relevance is a tier: 2 when every term is in the name or brand, 1 when some are only in
    the description; ties (most of them) go newest first, by id. `few`: the scopes (category
    ids, or ALL) that price_range_probe found holding at most FEW products.
    """
    conditions = _filters(query)
    relevance = None
    if query.q:
        match, in_title = text_match(dialect, query.q)
        if dialect == "postgresql" and query.effective_sort == "relevance":
            if category_ids is not None:
                conditions.append(Product.category_id.in_(category_ids))
            return _relevance_union(query, conditions, match, in_title, body_hint(query.q))
        conditions.append(match)
        relevance = case((in_title, 2), else_=1)

    order = ordering(query.effective_sort, relevance)
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
        return _merged_scopes(order, conditions, scopes, set(few), query.limit + 1)
    if category_ids is not None:
        conditions.append(Product.category_id.in_(category_ids))
    sort_key: KeyedColumnElement[Any] = order.key.label("sort_key")
    stmt = page_select(sort_key).where(*conditions)
    return stmt.order_by(*_keyset(order.key, Product.id, order.descending)).limit(query.limit + 1)


def _keyset(key: Any, id_: Any, descending: bool) -> tuple[Any, Any]:
    return (key.desc(), id_.desc()) if descending else (key.asc(), id_.asc())


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
        parts.append(walk.order_by(*_keyset(order.key, Product.id, order.descending)).limit(rows))
    merged = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("merged")
    return (
        page_select(merged.c.sort_key)
        .join(merged, merged.c.id == Product.id)
        .order_by(*_keyset(merged.c.sort_key, Product.id, order.descending))
        .limit(rows)
    )


def _relevance_union(
    query: ProductQuery,
    conditions: list[ColumnElement[bool]],
    match: ColumnElement[bool],
    in_title: ColumnElement[bool],
    hint: ColumnElement[bool] | None,
) -> Select[Any]:
    """Relevance on PostgreSQL as one small, index-friendly query per tier.

    Each branch is `WHERE <tier match> ORDER BY id DESC LIMIT n`, which PostgreSQL answers
    either from the GIN index (rare terms) or by walking the primary key backwards until n
    rows match (common terms) - never by ranking every match, so a term found in 100,000
    products costs about as much as one found in 100.
    """
    after_tier, after_id = None, None
    if query.cursor:
        after_tier, after_id = decode_cursor(query.cursor, "relevance", datetime_key=False)
    branches = []
    below_title = and_(match, not_(in_title)) if hint is None else and_(match, hint, not_(in_title))
    for tier, condition in ((2, in_title), (1, below_title)):
        if after_tier is not None and tier > after_tier:
            continue  # that tier was fully walked on earlier pages
        where = [*conditions, condition]
        if after_tier == tier:
            where.append(Product.id < after_id)
        branches.append(
            select(Product.id.label("id"), literal(tier).label("tier"))
            .where(*where)
            .order_by(Product.id.desc())
            .limit(query.limit + 1)
        )
    matches = (union_all(*branches) if len(branches) > 1 else branches[0]).subquery("matches")
    tier_col = matches.c.tier
    stmt = (
        page_select(tier_col.label("sort_key"))
        .join(matches, matches.c.id == Product.id)
        .order_by(tier_col.desc(), Product.id.desc())
        .limit(query.limit + 1)
    )
    return stmt
