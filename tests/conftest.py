"""Fixtures: real PostgreSQL and Redis started for the session, and an app per test.

API tests take the `app`/`client` fixtures and run twice: on the embedded default
(SQLite + in-process cache) and on PostgreSQL + Redis. Where the servers' binaries are
missing those runs skip loudly, except under CI=true where that is a failure.

SIGTERM ends a run like Ctrl-C, so fixtures' teardown stops the servers; if even that is
cut short (a second signal, SIGKILL), tests/lifeline.py still takes them down.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, text

from flipkart_api import create_app
from flipkart_api.auth.service import create_admin
from flipkart_api.catalog.seed import seed_catalog
from flipkart_api.db import session
from flipkart_api.migrate import upgrade
from flipkart_api.settings import Settings, load_settings

from . import servers

TABLES = (
    "idempotency_keys",
    "order_items",
    "orders",
    "cart_items",
    "products",
    "categories",
    "users",
    "delivery_attempts",
    "deliveries",
    "webhook_endpoints",
    "outbox_events",
    "search_terms",
    "search_brands",
)
# The worker's queue on PostgreSQL (procrastinate's tables; SQLite has none).
QUEUE_TABLES = (
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_jobs",
    "procrastinate_workers",
)
SEED_PRODUCTS = 60
CATALOG = 400  # the search and facet tests' catalog
ADMIN = {"email": "admin@example.in", "password": "admin-password-1"}
# Servers configured means the dev-only key may not sign: every such test passes this.
TEST_SECRET_KEY = "test-only-secret-key-" + "x" * 32


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM -> KeyboardInterrupt: pytest stops and runs every fixture's teardown."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends us at once
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """Turn SIGTERM (CI's timeout, `kill`) into Ctrl-C, in this process or xdist worker."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _unavailable(reason: str) -> None:
    """Skip loudly, or fail under CI where every backend must be exercised."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but a real server is unavailable: {reason}")
    pytest.skip(f"REAL SERVER UNAVAILABLE, backend tests skipped: {reason}")


def system_binary(name: str, packages: str) -> str:
    """`name` on PATH or in Debian's sbin directories; skip loudly (fail under CI) without it."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        _unavailable(f"{name} is not installed (apt-get install {packages})")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def pg_server() -> Iterator[servers.PostgresServer]:
    """A throwaway PostgreSQL for the whole session."""
    try:
        server = servers.start_postgres()
    except servers.ServerUnavailable as exc:
        _unavailable(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[servers.RedisServer]:
    """A throwaway Redis for the whole session."""
    try:
        server = servers.start_redis()
    except servers.ServerUnavailable as exc:
        _unavailable(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_url(pg_server: servers.PostgresServer) -> Iterator[str]:
    """A migrated database; tests truncate it instead of re-creating it."""
    url = pg_server.create_database("flipkart_test")
    upgrade(url)
    yield url
    for engine in _reset_engines.values():
        engine.dispose()
    _reset_engines.clear()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file that each test copies (migrating per test is slow)."""
    path = tmp_path_factory.mktemp("template") / "flipkart.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


def sqlite_settings(tmp_path: Path, template: Path, **overrides: Any) -> Settings:
    """Settings for a fresh copy of the migrated SQLite file and the in-process cache."""
    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    shutil.copy(template, instance / "flipkart.sqlite3")
    return load_settings(
        app_env="test", instance_dir=instance, **({"ratelimit_enabled": False} | overrides)
    )


# One pooled engine per database for the resets: a new engine per test spent more time
# connecting (~20 ms) than the TRUNCATE itself.
_reset_engines: dict[str, Engine] = {}


def reset_postgres(url: str, redis_url: str | None) -> None:
    """Empty every table and the cache: each test starts from nothing."""
    engine = _reset_engines.get(url)
    if engine is None:
        engine = _reset_engines[url] = create_engine(url, pool_size=1, pool_pre_ping=True)
    with engine.begin() as conn:
        tables = ", ".join((*TABLES, *QUEUE_TABLES))
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    if redis_url:
        with redis.Redis.from_url(redis_url) as client:
            client.flushdb()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which storage the test runs on."""
    name: str = request.param
    return name


@pytest.fixture
def settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for the chosen backend."""
    if backend == "sqlite":
        return sqlite_settings(tmp_path, request.getfixturevalue("sqlite_template"))
    url = request.getfixturevalue("pg_url")
    redis_url = request.getfixturevalue("redis_server").url()
    reset_postgres(url, redis_url)
    return load_settings(
        app_env="test",
        database_url=url,
        redis_url=redis_url,
        secret_key=TEST_SECRET_KEY,
        ratelimit_enabled=False,
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """A fresh app on the chosen backend."""
    application = create_app(settings)
    yield application
    application.extensions["db_engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def seeded(app: Flask) -> Flask:
    """The demo category tree and SEED_PRODUCTS products."""
    with app.app_context():
        seed_catalog(session(), SEED_PRODUCTS)
    return app


@pytest.fixture
def catalog(app: Flask) -> Flask:
    """The demo catalog at CATALOG products: 20 of each leaf, every brand and series there."""
    with app.app_context():
        seed_catalog(session(), CATALOG)
    return app


def bearer(client: FlaskClient, email: str, password: str) -> dict[str, str]:
    """Authorization headers for an existing user."""
    response = client.post("/api/v1/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


@pytest.fixture
def admin_headers(app: Flask, client: FlaskClient) -> dict[str, str]:
    """Headers of an admin made with the same code as `flipkart-api create-admin`."""
    with app.app_context():
        create_admin(session(), ADMIN["email"], ADMIN["password"])
    return bearer(client, ADMIN["email"], ADMIN["password"])


@pytest.fixture
def customer_headers(client: FlaskClient) -> dict[str, str]:
    """Headers of a freshly registered customer."""
    body = {"email": "asha@example.in", "password": "correct-horse-1", "name": "Asha"}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    return bearer(client, body["email"], body["password"])
