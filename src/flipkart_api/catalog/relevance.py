"""Relevance pages: one statement per tier, each split so the right index answers it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, literal, not_, select, true

from ..pagination import decode_cursor
from .models import Product
from .page_rows import page_select
from .schemas import ProductQuery
from .search import Matcher

WINDOW = 20000  # newest ids walked for a tier before its text index is asked


def relevance_steps(
    query: ProductQuery, conditions: list[ColumnElement[bool]], found: Matcher
) -> Iterator[Select[Any]]:
    """Relevance as one small, index-friendly query per tier, run in turn until a page is full.

    Each is `WHERE <only this tier> ORDER BY id DESC LIMIT n` with the page's columns, which
    the engine answers from its text index (rare words) or by walking the primary key
    backwards until n rows match (common words) - never by ranking every match. Run one by
    one (pages.py), a lower tier is asked only when the tiers above did not fill the page:
    in one UNION, an empty lower tier made PostgreSQL walk all 1,000,000 products (1.2 s)
    even when the first tier had filled the page. Built as they are asked for: most pages
    are full after one or two of them.
    """
    after_tier, after_id = None, None
    if query.cursor:
        after_tier, after_id = decode_cursor(query.cursor, "relevance", datetime_key=False)
    distinct = [3, 2, 1] if found.tiers[2] is not found.tiers[3] else [3, 1]
    if 0 in found.tiers:
        distinct.append(0)
    for tier in distinct:
        if after_tier is not None and tier > after_tier:
            continue  # that tier was fully walked on earlier pages
        where = [*conditions, tier_only(found, tier)]
        if after_tier == tier:
            where.append(Product.id < after_id)
        before = after_id if after_tier == tier else None
        columns = page_select(literal(tier).label("sort_key"))
        yield from windowed(columns, where, query.limit + 1, before, walk=tier in found.walked)


def tier_only(found: Matcher, tier: int) -> ColumnElement[bool]:
    """The products of this tier and of none above it."""
    if tier == 3:
        return found.tiers[3]
    if tier == 2 and found.widened is not None:
        return and_(found.widened, not_(found.tiers[3]))
    hint = found.body_hint if tier == 1 else None
    above = found.tiers[tier + 1]
    return and_(found.tiers[tier], *([hint] if hint is not None else []), not_(above))


def windowed(
    columns: Select[Any],
    where: list[ColumnElement[bool]],
    rows: int,
    before: int | None = None,
    walk: bool = False,
) -> Iterator[Select[Any]]:
    """The newest `rows` products matching `where` (below id `before`), as two statements
    run in turn.

    First the newest ids (the WINDOW below the highest, one index probe to find; fewer
    products where some were deleted) are walked by id, which finds a common word's rows at
    once; only if they hold too few matches is the rest asked for, ordered by an expression
    (`id + 0`) so that the text index answers it: the matches are then known to be sparse.
    Walking by id alone, PostgreSQL took 0.8-1.2 s at 1,000,000 products for a word that
    matched nothing (it estimates an unknown word at hundreds of rows).

    walk: the window is walked by id whatever the planner guesses (`where` hidden from
    the indexes behind coalesce()), for matches it would take for rare (search._walked).
    """
    top = select(func.max(Product.id))
    if before is not None:
        top = top.where(Product.id < before)
    bound = func.coalesce(top.scalar_subquery(), 0) - WINDOW
    recent = [func.coalesce(and_(*where), false()) == true()] if walk else where
    yield columns.where(*recent, Product.id > bound).order_by(Product.id.desc()).limit(rows)
    rest = columns.where(*where, Product.id <= bound)
    yield rest.order_by((Product.id + 0).desc()).limit(rows)
