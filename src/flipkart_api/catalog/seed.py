"""Loading the demo catalog into the database: idempotent, in batches, fast enough for 1M rows."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Callable

from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session

from ..db import insert_ignoring_conflicts
from ..orm import utcnow
from ..seed_data import CATEGORIES, ProductSeed, iter_products
from ..uow import UnitOfWork
from .lexicon import add_brands, add_words
from .models import Category, Product
from .search_words import count_words

BATCH = 5000
TEXT_FIELDS = ("name", "brand", "description")  # the product text the lexicon holds


def seed_catalog(
    sess: Session, products: int, progress: Callable[[int], None] | None = None
) -> int:
    """Ensure the category tree and products 0..products-1 exist; returns products added.

    One unit of work per batch, not one for the whole run: a million rows in one
    transaction would hold SQLite's write lock for minutes. Each batch invalidates the
    catalog's cached lists once it has committed, so a running server shows it.
    """
    now = utcnow()
    with UnitOfWork(sess) as uow:
        ids = {c.slug: c.id for c in sess.scalars(select(Category))}
        for cat in CATEGORIES:
            if cat.slug not in ids:
                parent_id = ids[cat.parent_slug] if cat.parent_slug else None
                ids[cat.slug] = sess.execute(
                    insert(Category)
                    .values(slug=cat.slug, name=cat.name, parent_id=parent_id, created_at=now)
                    .returning(Category.id)
                ).scalar_one()
                add_words(sess, count_words([cat.name]))  # Core inserts: no mapper event
                uow.after_commit(_invalidate_catalog)

    before = sess.scalar(select(func.count()).select_from(Product)) or 0
    generated = iter_products(products)
    done = 0
    while batch := list(itertools.islice(generated, BATCH)):
        # Skip what exists rather than lean on ON CONFLICT alone: every conflicting insert
        # burns a sequence value, and re-seeding to a larger size left id gaps (404s).
        with UnitOfWork(sess) as uow:
            skus = [p.sku for p in batch]
            present = set(sess.scalars(select(Product.sku).where(Product.sku.in_(skus))))
            rows = [_row(p, ids[p.category_slug], now) for p in batch if p.sku not in present]
            if rows:
                sess.execute(insert_ignoring_conflicts(sess, Product.__table__), rows)
                texts = (" ".join(str(row[f]) for f in TEXT_FIELDS) for row in rows)
                add_words(sess, count_words(texts))  # one count per product
                add_brands(sess, Counter(str(row["brand"]) for row in rows))
                uow.after_commit(_invalidate_catalog)
        done += len(batch)
        if progress:
            progress(done)
    after = sess.scalar(select(func.count()).select_from(Product)) or 0
    return after - before


def _row(p: ProductSeed, category_id: int, now: dt.datetime) -> dict[str, object]:
    """One generated product as a products row."""
    return {
        "sku": p.sku,
        "slug": p.slug,
        "name": p.name,
        "description": p.description,
        "brand": p.brand,
        "category_id": category_id,
        "price": p.price,
        "mrp": p.mrp,
        "currency": "INR",
        "stock": p.stock,
        "rating": p.rating,
        "images": p.images,
        "created_at": now,
        "updated_at": now,
    }


def _invalidate_catalog() -> None:
    """The cached lists (and details) of the app this runs in no longer hold."""
    from .cache_keys import invalidate_products  # keep seed's imports light

    invalidate_products([], categories=True)


def settle(engine: Engine) -> None:
    """After a bulk load: merge the text indexes' pending entries and refresh statistics.

    GIN indexes take new rows into a pending list that every search then reads linearly
    until a vacuum merges it: after seeding 10,000 products one search spent 22 ms of its
    23 there, 1 ms once merged. Autovacuum gets to it eventually; a seed does it now. On
    SQLite, FTS5's segments are merged (`optimize`) and the planner's statistics refreshed.

    The vacuum also marks the pages all-visible, which lets counts and facets read an index
    alone, but only for commits already on disk: a server committing asynchronously
    (synchronous_commit = off) left the newest 4,000 pages of 1,000,000 products unmarked.
    A synchronous commit of statistics (pg_statistic rows: written, so flushed at commit)
    first flushes the write-ahead log past the seed's last commit.
    """
    statements = ["INSERT INTO products_fts(products_fts) VALUES ('optimize')", "ANALYZE"]
    if engine.dialect.name == "postgresql":
        statements = [
            "SET synchronous_commit = on",
            "ANALYZE search_terms",  # the flush (each statement commits on its own here)
            "VACUUM (ANALYZE) products",
            "VACUUM (ANALYZE) search_terms",
            "RESET synchronous_commit",
        ]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for statement in statements:
            conn.execute(text(statement))
