"""Text search on products: what a query matches, per backend, and relevance by tier."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    cast,
    column,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    union_all,
)

from ..pagination import decode_cursor
from .models import Product
from .page_rows import page_select
from .schemas import ProductQuery

MAX_TERMS = 8  # bounds the work a single `q` can ask of the SQLite fallback
# websearch syntax beyond plain words: phrases, OR, exclusion (and hyphenated compounds)
_OPERATORS = re.compile(r'["-]|\bor\b', re.IGNORECASE)


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


def relevance_union(
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
