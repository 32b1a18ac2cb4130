"""Restore drill on real PostgreSQL: back up, destroy the database, restore, compare.

Runs `make backup` / `make restore`'s scripts (deploy/backup/) exactly as an operator
would, against a database of its own on the session's PostgreSQL server.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from psycopg import sql
from redis import Redis

from flipkart_api import create_app
from flipkart_api.auth.service import create_admin
from flipkart_api.catalog.seed import seed_catalog
from flipkart_api.db import session
from flipkart_api.migrate import upgrade
from flipkart_api.settings import load_settings

from . import servers
from .conftest import TEST_SECRET_KEY, bearer
from .drill import Snapshot, row_counts, snapshot

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(300)]
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
            app_env="test",
            database_url=url,
            redis_url=redis_url,
            secret_key=TEST_SECRET_KEY,
            ratelimit_enabled=False,
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


def test_a_cache_left_full_fails_the_restore(
    drill: tuple[Flask, dict[str, str]], redis_server: servers.RedisServer, tmp_path: Path
) -> None:
    """redis-cli exits 0 on an error reply: the script must not report success regardless."""
    app, env = drill
    _shop(app, app.test_client(), customers=1)
    backup = tmp_path / "ok.dump"
    _script("backup.sh", env | {"BACKUP_FILE": str(backup)})
    redis = Redis.from_url(redis_server.url())
    # A Redis user that may not FLUSHDB: the reply is an error (NOPERM), the exit code 0.
    redis.acl_setuser(
        "flipkart_noflush", enabled=True, nopass=True, keys=["*"], commands=["+@all", "-flushdb"]
    )
    url = env["REDIS_URL"].replace("redis://", "redis://flipkart_noflush:x@")
    try:
        done = subprocess.run(
            [str(ROOT / "deploy" / "backup" / "restore.sh")],
            env=os.environ | env | {"REDIS_URL": url, "BACKUP_FILE": str(backup)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        redis.acl_deluser("flipkart_noflush")
        redis.close()
    assert done.returncode == 2, done.stdout + done.stderr
    assert "emptying the cache failed (NOPERM" in done.stderr


def _snapshot_or_empty(server: servers.PostgresServer) -> Snapshot:
    """The snapshot, or {} for a database without tables."""
    try:
        return _snapshot(server)
    except AssertionError:
        return {}


# Every character the URL or libpq's password-file format must escape, and a random part
# that the sampler looks for in every process's command line.
NEEDLE = secrets.token_hex(8)
PASSWORD = f"pa:ss\\w@rd%/é {NEEDLE}"
ROLE = "flipkart_backup"


@pytest.fixture
def password_role(
    pg_server: servers.PostgresServer, redis_server: servers.RedisServer
) -> Iterator[tuple[str, str]]:
    """A PostgreSQL superuser and a Redis ACL user that must log in with PASSWORD.

    The session's servers trust everyone; for this role alone pg_hba.conf asks for the
    password (scram), so a script that loses it on the way to libpq fails. Yields the URLs.
    """
    hba = pg_server.datadir / "pg_hba.conf"
    original = hba.read_text()
    lines = f"host all {ROLE} 127.0.0.1/32 scram-sha-256\nhost all {ROLE} ::1/128 scram-sha-256\n"
    admin = psycopg.connect(_admin_dsn(pg_server), autocommit=True)
    admin.execute(
        sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
            sql.Identifier(ROLE), sql.Literal(PASSWORD)
        )
    )
    hba.write_text(lines + original)  # first match wins: before the trust lines
    admin.execute("SELECT pg_reload_conf()")
    redis = Redis.from_url(redis_server.url())
    redis.acl_setuser(
        ROLE, enabled=True, passwords=[f"+{PASSWORD}"], keys=["*"], commands=["+@all"]
    )
    _wait_until_password_required(pg_server)
    secret = quote(PASSWORD, safe="")
    try:
        yield (
            f"postgresql+psycopg://{ROLE}:{secret}@127.0.0.1:{pg_server.port}/{DBNAME}",
            f"redis://{ROLE}:{secret}@127.0.0.1:{redis_server.port}/3",
        )
    finally:
        hba.write_text(original)
        admin.execute("SELECT pg_reload_conf()")
        # The restore made the role own the drill's tables: drop them with the database.
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DBNAME))
        )
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(ROLE)))
        admin.close()
        redis.acl_deluser(ROLE)
        redis.close()


def _wait_until_password_required(server: servers.PostgresServer) -> None:
    """pg_reload_conf() only signals the server: wait until a password-less login fails."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            psycopg.connect(
                f"host=127.0.0.1 port={server.port} user={ROLE} dbname=postgres"
            ).close()
        except psycopg.OperationalError:
            return
        time.sleep(0.05)
    raise AssertionError("pg_hba.conf reload did not take effect")


class CommandLines(threading.Thread):
    """Reads /proc/*/cmdline of every process every few milliseconds, as `ps` would."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set[tuple[str, ...]] = set()
        self.scans = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    raw = cmdline.read_bytes()
                except OSError:  # the process ended between listing and reading
                    continue
                if raw:
                    self.seen.add(tuple(raw.decode(errors="replace").split("\0")))
            self.scans += 1
            time.sleep(0.002)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=10)

    def ran(self, program: str) -> bool:
        """True when a process of `program` was caught running."""
        return any(Path(argv[0]).name == program for argv in self.seen)


def _spy_on(tools: list[str], bindir: Path, log: Path) -> str:
    """A PATH whose `tools` log their argv to `log`, then exec the real program.

    The sampler above can miss a process that lives a millisecond (redis-cli); these
    wrappers see every call. The real tool runs with the same arguments.
    """
    bindir.mkdir()
    for tool in tools:
        real = shutil.which(tool)
        assert real, f"{tool} is not installed"
        wrapper = bindir / tool
        wrapper.write_text(
            f'#!/bin/sh\nprintf "%s\\n" "{tool} $*" >> "{log}"\nexec "{real}" "$@"\n'
        )
        wrapper.chmod(0o755)
    return f"{bindir}:{os.environ['PATH']}"


def test_no_password_on_any_command_line(
    drill: tuple[Flask, dict[str, str]],
    password_role: tuple[str, str],
    pg_server: servers.PostgresServer,
    redis_server: servers.RedisServer,
    tmp_path: Path,
) -> None:
    """`ps` never shows the database or Redis password while a backup and a restore run."""
    app, _ = drill
    _shop(app, app.test_client(), customers=1)
    before = _snapshot(pg_server)
    database_url, redis_url = password_role
    calls = tmp_path / "calls.log"
    path = _spy_on(["pg_dump", "pg_restore", "redis-cli"], tmp_path / "spy", calls)
    scratch = tmp_path / "tmp"  # where the scripts' password file goes (TMPDIR)
    scratch.mkdir()
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "PATH": path}
    env |= {"TMPDIR": str(scratch)}
    backup = tmp_path / "secret.dump"
    canary = Redis.from_url(redis_server.url(db=3))
    canary.set("canary", "from before the restore")

    sampler = CommandLines()
    sampler.start()
    try:
        backup_s = _script("backup.sh", env | {"BACKUP_FILE": str(backup)})
        restore_s = _script("restore.sh", env | {"BACKUP_FILE": str(backup)})
    finally:
        sampler.stop()
    print(
        f"\nbackup {backup_s:.2f}s + restore {restore_s:.2f}s: {sampler.scans} scans of /proc,"
        f" {len(sampler.seen)} distinct command lines"
    )

    leaked = [" ".join(argv) for argv in sampler.seen if any(NEEDLE in a for a in argv)]
    assert leaked == [], f"password on a command line: {leaked}"
    assert sampler.ran("pg_dump"), f"the sampler never caught pg_dump ({sampler.scans} scans)"
    assert sampler.ran("pg_restore"), "the sampler never caught pg_restore"
    called = calls.read_text().splitlines()
    assert [c.split()[0] for c in called] == ["pg_dump", "pg_restore", "pg_restore", "redis-cli"]
    assert not [c for c in called if NEEDLE in c], called
    # The passwords did their work: scram let the role in, the Redis ACL user flushed.
    assert _snapshot(pg_server) == before
    assert canary.get("canary") is None
    canary.close()
    assert list(scratch.iterdir()) == []  # the password file is gone
