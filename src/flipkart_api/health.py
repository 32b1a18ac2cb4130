"""The probes: /health, /livez, /readyz. No exception text ever leaves."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any, Literal

from apiflask import APIBlueprint
from flask import current_app
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from . import db, migrate
from .cache import cache
from .responses import respond

log = logging.getLogger(__name__)
bp = APIBlueprint("health", __name__, tag="Health")


class Checks(BaseModel):
    """Per-dependency result."""

    database: Literal["ok", "unavailable"]
    cache: Literal["ok", "unavailable"]


class HealthOut(BaseModel):
    """Overall status: healthy, degraded (cache down) or unhealthy (database down)."""

    status: Literal["healthy", "degraded", "unhealthy"]
    checks: Checks
    instance: str = Field(description="Host name of the replica that answered")


class ProbeOut(BaseModel):
    """A probe's answer."""

    status: Literal["ok", "unavailable"]


def _json_503(description: str, schema: str) -> Any:
    """OpenAPI for a 503 that carries the same JSON body as the 200."""
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {503: {"description": description, "content": {"application/json": {"schema": ref}}}}


def _database_ok() -> bool:
    try:
        with db.engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("health: database check failed: %s", type(exc).__name__)
        return False
    return True


def _dependencies() -> tuple[bool, bool]:
    """(database ok, cache ok), checked at most once per HEALTH_CACHE_SECONDS per worker."""
    ttl = current_app.config["SETTINGS"].health_cache_seconds
    last: tuple[float, tuple[bool, bool]] | None = current_app.extensions.get("health")
    now = time.monotonic()
    if last is not None and now - last[0] < ttl:
        return last[1]
    result = (_database_ok(), cache().ping())
    current_app.extensions["health"] = (now, result)
    return result


@bp.get("/health")
@bp.output(HealthOut)
@bp.doc(responses=_json_503("Database unavailable", "HealthOut"))
def health() -> Any:
    """Dependency health: 200 healthy/degraded, 503 when the database is down (<= 1 s old)."""
    database_ok, cache_ok = _dependencies()
    answer = HealthOut(
        status="healthy"
        if database_ok and cache_ok
        else "degraded"
        if database_ok
        else "unhealthy",
        checks=Checks(
            database="ok" if database_ok else "unavailable",
            cache="ok" if cache_ok else "unavailable",
        ),
        instance=socket.gethostname(),
    )
    return respond(answer, status=200 if database_ok else 503)


@bp.get("/livez")
@bp.output(ProbeOut)
def livez() -> Any:
    """Liveness: the process answers. Touches no dependency."""
    return respond(ProbeOut(status="ok"))


@bp.get("/readyz")
@bp.output(ProbeOut)
@bp.doc(responses=_json_503("Not ready", "ProbeOut"))
def readyz() -> Any:
    """Readiness: the database answers and its schema is at (or past) our latest migration."""
    try:
        ready = migrate.schema_is_current(migrate.current_revision(db.engine()))
    except SQLAlchemyError as exc:
        log.warning("readyz: database check failed: %s", type(exc).__name__)
        ready = False
    if ready:
        return respond(ProbeOut(status="ok"))
    return respond(ProbeOut(status="unavailable"), status=503)
