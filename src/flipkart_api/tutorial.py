"""The tutorial's `/`: the database server's product and major version, cache-aside in Redis."""

from __future__ import annotations

from typing import Any, Literal

from apiflask import APIBlueprint
from pydantic import BaseModel
from sqlalchemy import text

from . import db
from .cache import Cached, CacheStatus, cache
from .responses import respond

bp = APIBlueprint("tutorial", __name__, tag="Tutorial")

# One key, as in the tutorial (renamed so no replica serves a full build string cached before).
TUTORIAL_KEY = "tutorial:db_product"


class TutorialOut(BaseModel):
    """Where the answer came from, and the database server's product and major version."""

    message: Literal["From Database!", "From Redis Cache!"]
    data: str


def _server_version() -> bytes:
    """The server's product and major version ("PostgreSQL 17", "SQLite 3"), nothing more.

    `SELECT version()` names the compiler, the OS and the exact patch level: a map of which
    known holes to try, so the answer stops at the major version.
    """
    with db.engine().connect() as conn:
        if conn.dialect.name == "sqlite":
            release = str(conn.scalar(text("SELECT sqlite_version()")))
            return f"SQLite {release.split('.')[0]}".encode()
        number = int(conn.scalar(text("SELECT current_setting('server_version_num')")) or 0)
        return f"PostgreSQL {number // 10000}".encode()  # 170002 -> 17 (10 and later)


@bp.get("/")
@bp.output(TutorialOut)
def index() -> Any:
    """The tutorial's endpoint: the database product and major version, cached."""
    version = cache().read_through(TUTORIAL_KEY, _server_version)
    hit = version.source is CacheStatus.HIT
    answer = TutorialOut(
        message="From Redis Cache!" if hit else "From Database!", data=version.body.decode()
    )
    return respond(Cached(answer.model_dump_json().encode(), version.source))
