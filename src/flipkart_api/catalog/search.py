"""Building the product list query: filters, text search, sort, and keyset cursors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
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
from .models import Product
from .schemas import ProductQuery, SortKey

MAX_TERMS = 8  # bounds the work a single `q` can ask of the SQLite fallback


@dataclass(frozen=True)
class Ordering:
    """A sort key column (or expression), and whether it runs descending."""

    key: ColumnElement[Any] | InstrumentedAttribute[Any]
    descending: bool


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def text_match(dialect: str, q: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """(matches anywhere, matches in name or brand) for the database at hand.

    PostgreSQL: generated tsvector columns with GIN indexes (see migrations 0001, 0003).
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


def _filters(query: ProductQuery, category_ids: list[int] | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if category_ids is not None:
        conditions.append(Product.category_id.in_(category_ids))
    if query.brand:
        conditions.append(func.lower(Product.brand) == query.brand.strip().lower())
    if query.min_price is not None:
        conditions.append(Product.price >= query.min_price)
    if query.max_price is not None:
        conditions.append(Product.price <= query.max_price)
    if query.in_stock is not None:
        conditions.append(Product.stock > 0 if query.in_stock == "true" else Product.stock == 0)
    return conditions


def build_query(query: ProductQuery, dialect: str, category_ids: list[int] | None) -> Select[Any]:
    """SELECT products (+ sort key) for one page, with limit+1 rows to detect a next page.

    Relevance is a tier: 2 when every term is in the name or brand, 1 when some are only in
    the description; ties (most of them) go newest first, by id.
    """
    conditions = _filters(query, category_ids)
    relevance = None
    if query.q:
        match, in_title = text_match(dialect, query.q)
        if dialect == "postgresql" and query.effective_sort == "relevance":
            return _relevance_union(query, conditions, match, in_title)
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

    sort_key: KeyedColumnElement[Any] = order.key.label("sort_key")
    stmt = select(Product, sort_key).where(*conditions)
    if order.descending:
        stmt = stmt.order_by(order.key.desc(), Product.id.desc())
    else:
        stmt = stmt.order_by(order.key.asc(), Product.id.asc())
    return stmt.limit(query.limit + 1)


def _relevance_union(
    query: ProductQuery,
    conditions: list[ColumnElement[bool]],
    match: ColumnElement[bool],
    in_title: ColumnElement[bool],
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
    for tier, condition in ((2, in_title), (1, and_(match, not_(in_title)))):
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
        select(Product, tier_col.label("sort_key"))
        .join(matches, matches.c.id == Product.id)
        .order_by(tier_col.desc(), Product.id.desc())
        .limit(query.limit + 1)
    )
    return stmt
