"""Restore drill on real PostgreSQL: back up, destroy the database, restore, compare.

Runs `make backup` / `make restore`'s scripts (deploy/backup/) exactly as an operator
would, against a database of its own on the session's PostgreSQL server.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from psycopg import sql

from flipkart_api import create_app
from flipkart_api.auth.service import create_admin
from flipkart_api.catalog.seed import seed_catalog
from flipkart_api.db import session
from flipkart_api.migrate import upgrade
from flipkart_api.settings import load_settings

from . import servers
from .conftest import bearer
from .drill import Snapshot, row_counts, snapshot

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[1]
DBNAME = "flipkart_drill"
ADDRESS = {
    "name": "Asha Verma",
    "line1": "12 MG Road",
    "city": "Bengaluru",
    "state": "Karnataka",
    "pincode": "560001",
    "phone": "9876543210",
}


def _admin_dsn(server: servers.PostgresServer) -> str:
    return f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"


def _recreate(server: servers.PostgresServer) -> None:
    """Destroy the drill database (connections and all) and create it empty."""
    name = sql.Identifier(DBNAME)
    with psycopg.connect(_admin_dsn(server), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def _snapshot(server: servers.PostgresServer) -> Snapshot:
    dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname={DBNAME}"
    with psycopg.connect(dsn) as conn:

        def query(text: str) -> list[tuple[str, ...]]:
            return [tuple(str(v) for v in row) for row in conn.execute(text).fetchall()]  # type: ignore[arg-type]

        return snapshot(query)


def _script(name: str, env: dict[str, str]) -> float:
    """Run deploy/backup/<name> and return its duration; failures show its output."""
    started = time.monotonic()
    done = subprocess.run(
        [str(ROOT / "deploy" / "backup" / name)],
        env=os.environ | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return time.monotonic() - started


@pytest.fixture
def drill(
    pg_server: servers.PostgresServer, redis_server: servers.RedisServer
) -> Iterator[tuple[Flask, dict[str, str]]]:
    """A migrated drill database, an app on it, and the scripts' environment."""
    _recreate(pg_server)
    url = pg_server.url(DBNAME)  # postgresql+psycopg://: the scripts must strip the driver
    upgrade(url)
    redis_url = redis_server.url(db=3)  # not the db other tests flush
    app = create_app(
        load_settings(
            app_env="test", database_url=url, redis_url=redis_url, ratelimit_enabled=False
        )
    )
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url}
    yield app, env
    app.extensions["db_engine"].dispose()
    with psycopg.connect(_admin_dsn(pg_server), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DBNAME))
        )


def _shop(app: Flask, client: FlaskClient, customers: int = 5) -> dict[str, str]:
    """Catalog, an admin, customers, carts and orders (one cancelled); the admin's headers."""
    with app.app_context():
        seed_catalog(session(), 200)
        create_admin(session(), "admin@example.in", "admin-password-1")
    for n in range(customers):
        user = {"email": f"c{n}@example.in", "password": f"password-{n}-ok", "name": f"C{n}"}
        assert client.post("/api/v1/auth/register", json=user).status_code == 201
        headers = bearer(client, user["email"], user["password"])
        for k in range(3):
            body = {
                "items": [{"product_id": 1 + n * 10 + k, "quantity": 1 + k}],
                "shipping_address": ADDRESS,
            }
            key = {"Idempotency-Key": f"drill-{n}-{k}"}
            created = client.post("/api/v1/orders", json=body, headers=headers | key)
            assert created.status_code == 201, created.get_json()
        client.put("/api/v1/cart/items/150", json={"quantity": 2}, headers=headers)
    assert (
        client.post(
            f"/api/v1/orders/{created.get_json()['id']}/cancel", headers=headers
        ).status_code
        == 200
    )
    return bearer(client, "admin@example.in", "admin-password-1")


def test_restore_after_the_database_is_destroyed(
    drill: tuple[Flask, dict[str, str]], pg_server: servers.PostgresServer, tmp_path: Path
) -> None:
    app, env = drill
    client = app.test_client()
    admin = _shop(app, client)
    before = _snapshot(pg_server)
    price = client.get("/api/v1/products/1").get_json()["price"]
    backup = tmp_path / "drill.dump"
    backup_s = _script("backup.sh", env | {"BACKUP_FILE": str(backup)})

    # After the backup: a write the restore must undo, and a cached copy of it in Redis.
    assert (
        client.patch("/api/v1/products/1", json={"price": price + 100}, headers=admin).status_code
        == 200
    )
    assert client.get("/api/v1/products/1").get_json()["price"] == price + 100
    app.extensions["db_engine"].dispose()
    _recreate(pg_server)  # the database is gone
    assert "products" not in _snapshot_or_empty(pg_server)

    restore_s = _script("restore.sh", env | {"BACKUP_FILE": str(backup)})
    after = _snapshot(pg_server)
    assert after == before
    print(
        f"\nnative drill: backup {backup_s:.2f}s ({backup.stat().st_size} bytes),"
        f" restore {restore_s:.2f}s, rows {row_counts(after)}"
    )

    # The API serves the restored data (the cache was emptied) and new ids do not collide.
    assert client.get("/api/v1/products/1").get_json()["price"] == price
    customer = bearer(client, "c0@example.in", "password-0-ok")
    orders = client.get("/api/v1/orders", headers=customer).get_json()["items"]
    assert len(orders) == 3
    body = {"items": [{"product_id": 2, "quantity": 1}], "shipping_address": ADDRESS}
    assert client.post("/api/v1/orders", json=body, headers=customer).status_code == 201


def test_restore_over_a_live_database_rolls_it_back(
    drill: tuple[Flask, dict[str, str]], pg_server: servers.PostgresServer, tmp_path: Path
) -> None:
    app, env = drill
    client = app.test_client()
    _shop(app, client, customers=2)
    before = _snapshot(pg_server)
    backup = tmp_path / "live.dump"
    _script("backup.sh", env | {"BACKUP_FILE": str(backup)})
    extra = {"email": "late@example.in", "password": "too-late-1", "name": "Late"}
    assert client.post("/api/v1/auth/register", json=extra).status_code == 201
    assert _snapshot(pg_server) != before

    _script("restore.sh", env | {"BACKUP_FILE": str(backup)})  # --clean over live tables
    assert _snapshot(pg_server) == before


def test_a_bad_archive_changes_nothing(
    drill: tuple[Flask, dict[str, str]], pg_server: servers.PostgresServer, tmp_path: Path
) -> None:
    app, env = drill
    _shop(app, app.test_client(), customers=1)
    before = _snapshot(pg_server)
    good = tmp_path / "good.dump"
    _script("backup.sh", env | {"BACKUP_FILE": str(good)})
    cut = tmp_path / "cut.dump"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # a truncated copy
    done = subprocess.run(
        [str(ROOT / "deploy" / "backup" / "restore.sh")],
        env=os.environ | env | {"BACKUP_FILE": str(cut)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert _snapshot(pg_server) == before  # one transaction: all or nothing


def _snapshot_or_empty(server: servers.PostgresServer) -> Snapshot:
    """The snapshot, or {} for a database without tables."""
    try:
        return _snapshot(server)
    except AssertionError:
        return {}
