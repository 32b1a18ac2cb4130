"""Loading the demo catalog into the database: idempotent, in batches, fast enough for 1M rows."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from ..db import insert_ignoring_conflicts, utcnow
from ..seed_data import CATEGORIES, iter_products
from .models import Category, Product

BATCH = 5000


def seed_catalog(
    sess: Session, products: int, progress: Callable[[int], None] | None = None
) -> int:
    """Ensure the category tree and products 0..products-1 exist; returns products added."""
    now = utcnow()
    ids = {c.slug: c.id for c in sess.scalars(select(Category))}
    for cat in CATEGORIES:
        if cat.slug not in ids:
            parent_id = ids[cat.parent_slug] if cat.parent_slug else None
            ids[cat.slug] = sess.execute(
                insert(Category)
                .values(slug=cat.slug, name=cat.name, parent_id=parent_id, created_at=now)
                .returning(Category.id)
            ).scalar_one()
    sess.commit()

    before = sess.scalar(select(func.count()).select_from(Product)) or 0
    generated = iter_products(products)
    done = 0
    while batch := list(itertools.islice(generated, BATCH)):
        # Skip what exists rather than lean on ON CONFLICT alone: every conflicting insert
        # burns a sequence value, and re-seeding to a larger size left id gaps (404s).
        skus = [p.sku for p in batch]
        present = set(sess.scalars(select(Product.sku).where(Product.sku.in_(skus))))
        rows = [
            {
                "sku": p.sku,
                "slug": p.slug,
                "name": p.name,
                "description": p.description,
                "brand": p.brand,
                "category_id": ids[p.category_slug],
                "price": p.price,
                "mrp": p.mrp,
                "currency": "INR",
                "stock": p.stock,
                "rating": p.rating,
                "images": p.images,
                "created_at": now,
                "updated_at": now,
            }
            for p in batch
            if p.sku not in present
        ]
        if rows:
            sess.execute(insert_ignoring_conflicts(sess, Product.__table__), rows)
        sess.commit()
        done += len(batch)
        if progress:
            progress(done)
    after = sess.scalar(select(func.count()).select_from(Product)) or 0
    return after - before
