"""What the catalog's cached answers are keyed and tagged by, and how a write forgets them.

Two caches hold catalog answers: Redis (cache.py; details by key, lists under a generation)
and the HTTP cache in front (edge.py; by surrogate key). A committed write calls
`invalidate_products` once, from its unit of work's after-commit step, for both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..cache import cache
from ..edge import edge

if TYPE_CHECKING:
    from .schemas import ProductQuery

# Every list (products, categories) lives in this namespace; a write bumps its generation.
CATALOG = "catalog"
# Surrogate keys of the HTTP cache (edge.py): what each cached answer depends on.
LISTS = "products"  # every product list and search page: purged when membership can change
CATEGORIES = "categories"  # the category tree
# A list page also carries the key of each product on it, and one key per field its
# filters and order read: a write purges the field keys of the fields it changed, so a
# price change drops the pages sorted or filtered by price (the product may move onto them)
# and the pages it is on, and leaves every other page in the cache.
BY_PRICE = "by-price"
BY_STOCK = "by-stock"
BY_TEXT = "by-text"  # q (name, description, brand, sku) and brand filters
TEXT_FIELDS = frozenset({"name", "description", "brand", "sku"})
# What a write of these fields makes stale in lists beyond the pages the product is on.
_FIELD_KEYS = {"price": BY_PRICE, "stock": BY_STOCK} | dict.fromkeys(TEXT_FIELDS, BY_TEXT)
# Each item of a page as ProductPage serialises it: the id is its first field, sku next.
_ITEM_ID = re.compile(rb'\{"id":(\d+),"sku":')


def product_key(product_id: int) -> str:
    """The cache key of one product's JSON."""
    return f"product:{product_id}"


def product_surrogate_key(product_id: int) -> str:
    """The HTTP cache's key for one product's detail (and for every page listing it)."""
    return f"p{product_id}"


def list_surrogate_keys(query: ProductQuery, page: bytes) -> tuple[str, ...]:
    """The keys of a list page: every list, the products on it, the fields it depends on."""
    keys = [LISTS, *(product_surrogate_key(int(i)) for i in _ITEM_ID.findall(page))]
    facets = query.facet_names  # counts over every match, not only the page's products
    priced = query.min_price is not None or query.max_price is not None
    if priced or query.effective_sort in ("price", "-price") or "price" in facets:
        keys.append(BY_PRICE)
    if query.in_stock is not None or "in_stock" in facets:
        keys.append(BY_STOCK)
    if query.q is not None or query.brand is not None or "brand" in facets:
        keys.append(BY_TEXT)
    return tuple(keys)


def list_keys_for_fields(fields: Iterable[str]) -> tuple[str, ...]:
    """The list keys an update of these product fields purges (a category move: all lists)."""
    fields = set(fields)
    if "category" in fields:
        return (LISTS,)
    return tuple(sorted({_FIELD_KEYS[f] for f in fields if f in _FIELD_KEYS}))


def invalidate_products(
    product_ids: list[int], *, lists: Sequence[str] = (LISTS,), categories: bool = False
) -> None:
    """After a commit that changed these products (or the tree): forget them, both caches.

    Redis: the details and every list (a new generation). The HTTP cache: the details of
    these products and the pages listing them, the list keys in `lists` (default: every
    list, for a product created or deleted), and the tree when it changed; the purge
    returns before the write's response is sent. Registered with UnitOfWork.after_commit,
    so it runs exactly when the change is visible, and never for a rolled-back write.
    """
    cache().invalidate(keys=[product_key(pid) for pid in product_ids], generations=[CATALOG])
    keys = [product_surrogate_key(pid) for pid in product_ids] + list(lists)
    edge().purge([*keys, CATEGORIES] if categories else keys)


def list_key(kind: str, *rest: str) -> str | None:
    """kind:generation[:rest]; None (read without the cache) when there is no generation."""
    generation = cache().generation(CATALOG)
    return None if generation is None else ":".join((kind, generation, *rest))
