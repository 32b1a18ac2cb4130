"""A product slug nobody else has: the derived slug, or the first free `-2`, `-3`, ...

The database half of catalog/slugs.py (which stays stdlib-only for the seed).
"""

from __future__ import annotations

import itertools

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import Product
from .slugs import candidates, product_slug

BATCH = 10  # candidates per lookup: one round trip unless ten products already slug alike


def free_product_slug(sess: Session, name: str, sku: str, own_id: int | None = None) -> str:
    """The slug for this name and SKU, suffixed when another product has it.

    Call inside the write's transaction: on PostgreSQL it takes a transaction advisory lock
    on the base slug, so two writes that slug alike take turns instead of both finding it
    free (SQLite's BEGIN IMMEDIATE already serialises writers); `uq_products_slug` stays
    as the backstop.
    """
    base = product_slug(name, sku)
    # No autoflush: a PATCH's pending sku change must meet its constraint at commit (a 409).
    with sess.no_autoflush:
        if sess.get_bind().dialect.name == "postgresql":
            sess.execute(select(func.pg_advisory_xact_lock(func.hashtext(base))))
        for start in itertools.count(1, BATCH):
            tries = candidates(base, start, BATCH)
            # Equality (IN) uses the unique index; a prefix LIKE cannot under a non-C collation.
            query = select(Product.slug).where(Product.slug.in_(tries))
            if own_id is not None:
                query = query.where(Product.id != own_id)
            taken = set(sess.scalars(query))
            if free := [slug for slug in tries if slug not in taken]:
                return free[0]
    raise AssertionError("unreachable: itertools.count never ends")
