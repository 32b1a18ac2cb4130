"""What the catalog's cached answers are keyed and tagged by, and how a write forgets them.

Two caches hold catalog answers: Redis (cache.py; details by key, lists under a generation)
and the HTTP cache in front (edge.py; by surrogate key). A committed write calls
`invalidate_products` once, from its unit of work's after-commit step, for both.
"""

from __future__ import annotations

from ..cache import cache
from ..edge import edge

# Every list (products, categories) lives in this namespace; a write bumps its generation.
CATALOG = "catalog"
# Surrogate keys of the HTTP cache (edge.py): what each cached answer depends on.
LISTS = "products"  # every product list and search page (any product change can move them)
CATEGORIES = "categories"  # the category tree


def product_key(product_id: int) -> str:
    """The cache key of one product's JSON."""
    return f"product:{product_id}"


def product_surrogate_key(product_id: int) -> str:
    """The HTTP cache's key for one product's detail."""
    return f"p{product_id}"


def invalidate_products(product_ids: list[int], *, categories: bool = False) -> None:
    """After a commit that changed these products (or the tree): forget them, both caches.

    Redis: the details and every list (a new generation). The HTTP cache: exactly the
    details of these products, every list page, and the tree when it changed; the purge
    returns before the write's response is sent. Registered with UnitOfWork.after_commit,
    so it runs exactly when the change is visible, and never for a rolled-back write.
    """
    cache().invalidate(keys=[product_key(pid) for pid in product_ids], generations=[CATALOG])
    keys = [product_surrogate_key(pid) for pid in product_ids] + [LISTS]
    edge().purge([*keys, CATEGORIES] if categories else keys)


def list_key(kind: str, *rest: str) -> str | None:
    """kind:generation[:rest]; None (read without the cache) when there is no generation."""
    generation = cache().generation(CATALOG)
    return None if generation is None else ":".join((kind, generation, *rest))
