"""Alembic driven from code: upgrade to head, and ask whether the schema is current.

Alembic is imported only to migrate. The readiness check needs just the revision ids this
code ships, which it reads from the version files themselves: importing Alembic into every
worker for that would cost about 10 MB of RSS each (tests/test_migrations.py checks that
both readings agree).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_REVISION = re.compile(r'^revision = "(\w+)"$', re.MULTILINE)
_DOWN_REVISION = re.compile(r'^down_revision = "(\w+)"$', re.MULTILINE)


def alembic_config(database_url: str) -> Config:
    """An Alembic config that needs no alembic.ini (works from an installed wheel)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str) -> None:
    """Upgrade to head; concurrent callers serialise on the advisory lock in env.py."""
    from alembic import command

    command.upgrade(alembic_config(database_url), "head")


@functools.cache
def _revisions() -> tuple[frozenset[str], frozenset[str]]:
    """(every revision id shipped, every id some revision builds on), from the version files."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revisions.update(_REVISION.findall(source))
        parents.update(_DOWN_REVISION.findall(source))
    return frozenset(revisions), frozenset(parents)


def head_revision() -> str | None:
    """The newest revision shipped with this code (the one no other builds on)."""
    revisions, parents = _revisions()
    heads = revisions - parents
    return next(iter(heads)) if len(heads) == 1 else None


def known_revisions() -> frozenset[str]:
    """Every revision this code ships."""
    return _revisions()[0]


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
