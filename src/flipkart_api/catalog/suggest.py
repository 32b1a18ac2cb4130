"""Suggestions as a shopper types: completed queries, products, brands and categories.

Cheap enough for every keystroke: the query's words are planned as a search is (typos,
synonyms, the last word as a prefix), but only the name-and-brand match is read, `limit`
rows newest first; completions come from the lexicon's prefix range, brands from the brand
list and categories from the (small) category table. Answers are cached like product lists.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from . import lexicon
from .models import Category, Product
from .relevance import windowed
from .search import matcher
from .search_plan import CategoryWords, plan
from .search_schemas import SuggestedCategory, SuggestedProduct, Suggestions, SuggestQuery
from .search_syntax import Parsed, parse
from .search_words import normalise


def suggestions(sess: Session, query: SuggestQuery) -> Suggestions:
    """What `query.q` may be heading for."""
    parsed = parse(query.q)
    if parsed.empty:
        return Suggestions(q=query.q, completions=[], products=[], brands=[], categories=[])
    categories = CategoryWords.load(sess)
    found = matcher(plan(sess, parsed, categories), sess.get_bind().dialect.name)
    typed = parsed.typing
    return Suggestions(
        q=query.q,
        completions=_completions(sess, query, typed),
        products=_products(sess, found.tiers[2], query.limit),
        brands=lexicon.brands_with_word(sess, typed, query.limit) if typed else [],
        categories=_categories(sess, categories, parsed, typed, query.limit),
    )


def _completions(sess: Session, query: SuggestQuery, typed: str | None) -> list[str]:
    """q with its last word completed by the lexicon's most used words that start it."""
    if not typed or len(typed) < 2:
        return []
    head = normalise(query.q).rstrip()
    head = head[: len(head) - len(typed)] if head.endswith(typed) else f"{head} "
    words = lexicon.starting_with(sess, typed, query.limit + 1)
    return [head + word for word, _ in words if word != typed][: query.limit]


def _products(
    sess: Session, title_match: ColumnElement[bool], limit: int
) -> list[SuggestedProduct]:
    """The newest products whose name or brand match, typos and the prefix allowed."""
    columns = cast(
        Select[Any], select(Product.id, Product.slug, Product.name, Product.brand, Product.price)
    )
    rows: list[Any] = []
    for stmt in windowed(columns, [title_match], limit):
        rows += sess.execute(stmt).all()
        if len(rows) >= limit:
            break
    return [
        SuggestedProduct(id=r.id, slug=r.slug, name=r.name, brand=r.brand, price=r.price)
        for r in rows[:limit]
    ]


def _categories(
    sess: Session, categories: CategoryWords, parsed: Parsed, typed: str | None, limit: int
) -> list[SuggestedCategory]:
    """Categories every word names (the word being typed may start a name's word)."""
    named: frozenset[int] | None = None
    for position, clause in enumerate(parsed.clauses):
        these = categories.named_by(clause.terms)
        if typed and position == len(parsed.clauses) - 1:
            these |= categories.started_by(typed)
        named = these if named is None else named & these
    if not named:
        return []
    rows = sess.execute(
        select(Category.id, Category.slug, Category.name)
        .where(Category.id.in_(sorted(named)))
        .order_by(Category.id)
        .limit(limit)
    )
    return [SuggestedCategory(id=r.id, slug=r.slug, name=r.name) for r in rows]
