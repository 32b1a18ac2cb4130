"""The lexicon kept in step with the catalog: every product and category write adds its
words (SQLAlchemy mapper events, so no write path can forget; the seed adds in bulk)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Connection, event, inspect
from sqlalchemy.orm import Mapper

from .lexicon import add_brands, add_words
from .models import Category, Product
from .search_words import count_words, words_of


def _product_text(product: Product) -> str:
    return " ".join((product.name or "", product.brand or "", product.description or ""))


def _new_words(target: Any, fields: tuple[str, ...]) -> Counter[str]:
    """Words a changed object brings that its previous values did not have."""
    state = inspect(target)
    before: set[str] = set()
    now: set[str] = set()
    for name in fields:
        history = state.attrs[name].history
        if not history.has_changes():
            continue
        for value in history.deleted:
            before.update(words_of(value or ""))
        now.update(words_of(getattr(target, name) or ""))
    return Counter(now - before)


@event.listens_for(Product, "after_insert")
def _product_added(_mapper: Mapper[Any], conn: Connection, target: Product) -> None:
    add_words(conn, count_words([_product_text(target)]))
    add_brands(conn, Counter([target.brand or ""]))


@event.listens_for(Product, "after_update")
def _product_changed(_mapper: Mapper[Any], conn: Connection, target: Product) -> None:
    add_words(conn, _new_words(target, ("name", "brand", "description")))
    if inspect(target).attrs.brand.history.has_changes():
        add_brands(conn, Counter([target.brand or ""]))


@event.listens_for(Category, "after_insert")
def _category_added(_mapper: Mapper[Any], conn: Connection, target: Category) -> None:
    add_words(conn, count_words([target.name or ""]))
