"""Alembic environment: runs online against the app's engine, under the migration lock."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from flipkart_api.auth import models as _auth_models  # noqa: F401 - register tables
from flipkart_api.catalog import models as _catalog_models  # noqa: F401 - register tables
from flipkart_api.db import migration_lock
from flipkart_api.events import models as _events_models  # noqa: F401 - register tables
from flipkart_api.orders import models as _orders_models  # noqa: F401 - register tables
from flipkart_api.orm import Base
from flipkart_api.settings import load_settings

config = context.config
target_metadata = Base.metadata

# Columns that exist only on PostgreSQL (full-text search) are managed by hand.
POSTGRES_ONLY_COLUMNS = {
    ("products", "search_vector"),
    ("products", "title_vector"),
    ("products", "body_vector"),
}


POSTGRES_ONLY_INDEXES = {
    "ix_products_search_vector",
    "ix_products_title_vector",
    "ix_products_body_vector",
}


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    """Keep autogenerate from dropping what the ORM deliberately does not map."""
    if type_ == "column" and (obj.table.name, name) in POSTGRES_ONLY_COLUMNS:
        return False
    return not (type_ == "index" and name in POSTGRES_ONLY_INDEXES)


def run_migrations_online() -> None:
    """Upgrade with one connection that holds the advisory lock for the whole run."""
    url = config.attributes.get("database_url") or load_settings().effective_database_url
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection, migration_lock(connection):
        connection.commit()  # the lock is session-level; do not hold a transaction open
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_object=include_object,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `flipkart-api migrate`")
run_migrations_online()
