"""The migrations and the models describe the same schema, on both databases."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, text

from flipkart_api import migrate
from flipkart_api.auth import models as _auth  # noqa: F401 - registers tables
from flipkart_api.catalog import models as _catalog  # noqa: F401 - registers tables
from flipkart_api.events import models as _events  # noqa: F401 - registers tables
from flipkart_api.orders import models as _orders  # noqa: F401 - registers tables
from flipkart_api.orm import Base

from . import servers

POSTGRES_ONLY = {
    "search_vector", "title_vector", "body_vector",
    "ix_products_search_vector", "ix_products_title_vector", "ix_products_body_vector",
    "ix_search_terms_trigram",
}  # fmt: skip
# SQLite's FTS5 tables (and their shadow tables): search indexes kept by triggers, not models.
FTS5_TABLES = ("products_fts", "search_terms_trigrams")


def _diff(url: str) -> list[object]:
    engine = create_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                # The tsvector columns, trigram and FTS5 indexes are per backend, not mapped.
                # procrastinate's tables (the worker's queue) are its own schema, not models.
                "include_object": lambda obj, name, type_, *_: (
                    name not in POSTGRES_ONLY
                    and not (name or "").startswith(("procrastinate_", *FTS5_TABLES))
                ),
            },
        )
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return list(diff)


# SQLAlchemy cannot reflect expression indexes (lower(brand)) and says so; the index exists.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings(
    "ignore:autogenerate skipping metadata-specified expression-based index"
)
def test_sqlite_schema_matches_models(sqlite_template: Path) -> None:
    assert _diff(f"sqlite:///{sqlite_template}") == []


def test_postgres_schema_matches_models(pg_url: str) -> None:
    assert _diff(pg_url) == []


def test_revisions_read_from_the_files_match_alembics_view() -> None:
    """The readiness check reads revision ids without Alembic; it must agree with Alembic."""
    script = ScriptDirectory(str(migrate.MIGRATIONS_DIR))
    assert len(script.get_heads()) == 1, "one head: a branch would never be ready"
    assert migrate.head_revision() == script.get_current_head()
    assert migrate.known_revisions() == {rev.revision for rev in script.walk_revisions()}


@pytest.fixture
def migrations_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the shipped migrations, which migrate.py reads instead of the real ones."""
    copy = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", copy)
    migrate._revisions.cache_clear()
    yield copy
    migrate._revisions.cache_clear()


def test_a_revision_written_by_our_template_is_seen(migrations_copy: Path) -> None:
    """`alembic revision` renders script.py.mako (single quotes, via repr): /readyz must see it."""
    previous = ScriptDirectory(str(migrations_copy)).get_current_head()
    config = migrate.alembic_config("sqlite://")
    config.set_main_option("script_location", str(migrations_copy))
    command.revision(config, message="next change", rev_id="9999")
    written = next((migrations_copy / "versions").glob("9999_*.py")).read_text()
    assert "revision = '9999'" in written  # the quoting a regex for "..." missed
    script = ScriptDirectory(str(migrations_copy))
    assert migrate.head_revision() == "9999" == script.get_current_head()
    assert migrate.known_revisions() == {rev.revision for rev in script.walk_revisions()}
    assert not migrate.schema_is_current(previous)  # a database at the old head is not ready
    assert migrate.schema_is_current("9999")


def _database_at(
    pg_server: servers.PostgresServer, name: str, revision: str
) -> tuple[Config, Engine]:
    """A new database migrated to `revision`: its Alembic config, and an engine on it."""
    url = pg_server.create_database(name)
    config = migrate.alembic_config(url)
    command.upgrade(config, revision)
    return config, create_engine(url)


def test_0008_swaps_the_dispatch_jobs_for_the_relay_and_back(
    pg_server: servers.PostgresServer,
) -> None:
    """Upgrade: a waiting dispatch job goes (the relay takes its event); downgrade: every
    undispatched event gets the dispatch job the older worker needs (PostgreSQL)."""
    config, engine = _database_at(pg_server, "flipkart_0008", "0007")
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO outbox_events (event_id, type, subject, payload, created_at)"
                    " VALUES ('evt_1', 'order.placed', 'order:1', '{}', now()),"
                    " ('evt_2', 'order.placed', 'order:2', '{}', now())"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args) VALUES"
                    " ('events', 'flipkart:dispatch', 'dispatch:order:1', '{\"event_pk\": 1}'),"
                    " ('events', 'flipkart:housekeeping', NULL, '{\"timestamp\": 1}')"
                )
            )
        command.upgrade(config, "0008")
        with engine.connect() as conn:
            assert conn.scalars(text("SELECT task_name FROM procrastinate_jobs")).all() == [
                "flipkart:housekeeping"
            ]
            conn.execute(text("UPDATE outbox_events SET dispatched_at = now() WHERE id = 1"))
            conn.commit()
        command.downgrade(config, "0007")
        with engine.connect() as conn:
            jobs = conn.execute(
                text(
                    "SELECT lock, args->>'event_pk' FROM procrastinate_jobs"
                    " WHERE task_name = 'flipkart:dispatch'"
                )
            ).all()
        assert jobs == [("dispatch:order:2", "2")]
    finally:
        engine.dispose()


def test_0010_builds_its_index_while_products_are_written(
    pg_server: servers.PostgresServer,
) -> None:
    """A build waiting on an open write lets other writes by (CONCURRENTLY: a plain CREATE
    INDEX queues them behind it, the whole build long at 1,000,000 products) and ends valid."""
    config, engine = _database_at(pg_server, "flipkart_0010", "0009")
    try:
        _two_products(engine)
        holder = engine.connect()  # an order in flight: its transaction holds a row
        holder.execute(text("UPDATE products SET stock = 0 WHERE sku = 'sku-1'"))
        build = threading.Thread(target=command.upgrade, args=(config, "0010"))
        build.start()
        try:
            with engine.connect() as conn:
                waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted"  # on holder
                for _ in range(100):
                    if conn.scalar(text(waiting)):
                        break
                    time.sleep(0.05)
                assert conn.scalar(text(waiting)) == 1
                conn.execute(text("SET lock_timeout = '2s'"))  # a plain build: LockNotAvailable
                conn.execute(text("UPDATE products SET stock = 5 WHERE sku = 'sku-2'"))
                conn.commit()
            holder.commit()
        finally:
            holder.close()
            build.join(timeout=30)
        assert not build.is_alive()
        with engine.connect() as conn:
            valid = conn.scalar(
                text(
                    "SELECT indisvalid FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid"
                    " WHERE relname = 'ix_products_facet_keys'"
                )
            )
        assert valid is True
    finally:
        engine.dispose()


_PRODUCT = (
    "INSERT INTO products (sku, slug, name, description, brand, price, mrp, currency, stock,"
    " rating, images, category_id, created_at, updated_at) VALUES (:sku, :sku, 'Phone', '',"
    " 'Acme', 100, 100, 'INR', 1, 4, '[]', 1, now(), now())"
)


def _two_products(engine: Engine) -> None:
    """sku-1 and sku-2, in category 1, written as SQL (the models may be ahead of the schema)."""
    with engine.begin() as conn:
        category = "INSERT INTO categories (name, slug, created_at) VALUES ('P', 'p', now())"
        conn.execute(text(category))
        conn.execute(text(_PRODUCT), [{"sku": "sku-1"}, {"sku": "sku-2"}])
