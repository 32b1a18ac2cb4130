"""Alembic driven from code: upgrade to head, and ask whether the schema is current.

Alembic is imported only to migrate. The readiness check needs just the revision ids this
code ships, which it parses out of the version files with `ast` (nothing is imported):
importing Alembic into every worker for that would cost about 10 MB of RSS each
(tests/test_migrations.py checks that both readings agree).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


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
        assigned = _module_constants(path, ("revision", "down_revision"))
        revisions.update(_ids(assigned.get("revision")))
        parents.update(_ids(assigned.get("down_revision")))
    return frozenset(revisions), frozenset(parents)


def _module_constants(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    """The literal values of these module-level assignments, read with `ast` (nothing runs).

    Whatever the quoting or annotation (script.py.mako writes `revision = '0007'` via repr),
    as Alembic reads them, but without importing the file or Alembic.
    """
    found: dict[str, object] = {}
    for node in ast.parse(path.read_bytes(), filename=str(path)).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in names:
                found[target.id] = ast.literal_eval(value)
    return found


def _ids(value: object) -> set[str]:
    """A revision field as a set of ids: None, one id, or a tuple of them (a merge)."""
    if value is None:
        return set()
    if isinstance(value, str):
        return {value}
    if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
        return set(value)
    raise ValueError(f"not a revision id: {value!r}")


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
