"""Building the product list query: filters, text search, sort, and keyset cursors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Double,
    Select,
    and_,
    case,
    cast,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
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


def search_condition(dialect: str, q: str) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    """(match condition, relevance expression) for the database at hand."""
    if dialect == "postgresql":
        # The GIN index on the generated tsvector column serves `@@`.
        tsquery = func.websearch_to_tsquery(literal_column("'english'::regconfig"), q)
        vector: ColumnElement[Any] = column("search_vector")
        # float8, not ts_rank's real: a real's text form does not round-trip through the
        # cursor exactly, and keyset comparisons need the exact value back.
        return vector.op("@@")(tsquery), cast(func.ts_rank_cd(vector, tsquery), Double)
    # SQLite (development): every term must appear in name, brand or description.
    terms = [t for t in q.lower().split() if t][:MAX_TERMS]
    matches, score = [], []
    for term in terms:
        pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        in_title = or_(
            Product.name.ilike(pattern, escape="\\"), Product.brand.ilike(pattern, escape="\\")
        )
        matches.append(or_(in_title, Product.description.ilike(pattern, escape="\\")))
        score.append(case((in_title, 2), else_=1))
    relevance = sum(score[1:], score[0]) if score else literal(0)
    return and_(*matches), relevance


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


def build_query(
    query: ProductQuery, dialect: str, category_ids: list[int] | None
) -> tuple[Select[Any], Ordering]:
    """SELECT products (+ sort key) for one page, with limit+1 rows to detect a next page."""
    conditions: list[ColumnElement[bool]] = []
    relevance = None
    if query.q:
        match, relevance = search_condition(dialect, query.q)
        conditions.append(match)
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
    return stmt.limit(query.limit + 1), order
