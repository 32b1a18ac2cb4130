"""Alembic driven from code: upgrade to head, and ask whether the schema is current."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic config that needs no alembic.ini (works from an installed wheel)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str) -> None:
    """Upgrade to head; concurrent callers serialise on the advisory lock in env.py."""
    command.upgrade(alembic_config(database_url), "head")


@functools.cache
def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


@functools.cache
def known_revisions() -> frozenset[str]:
    """Every revision this code ships."""
    return frozenset(rev.revision for rev in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions())


def schema_is_current(revision: str | None) -> bool:
    """At our head, or at a newer revision we do not know yet.

    During a rolling update the new release migrates first; the old replicas must stay
    ready against the newer schema (migrations are written expand-then-contract), or the
    rollout would leave no ready replica. An older known revision, or none, is not ready.
    """
    return revision is not None and (
        revision == head_revision() or revision not in known_revisions()
    )


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None when never migrated)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        version: str | None = conn.scalar(text("SELECT version_num FROM alembic_version"))
        return version
