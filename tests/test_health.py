"""The tutorial's `/`, /health, /livez and /readyz."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from flask.testing import FlaskClient

from flipkart_api import create_app
from flipkart_api.settings import load_settings

from . import servers
from .conftest import TEST_SECRET_KEY, sqlite_settings

LEAKY_WORDS = ("Error", "Exception", "Traceback", "refused", "psycopg", "sqlalchemy")


def test_root_tutorial_contract(client: FlaskClient) -> None:
    body = client.get("/").get_json()
    assert set(body) == {"message", "data"}
    assert body["message"] in ("From Database!", "From Redis Cache!")


def test_root_names_only_the_product_and_major_version(client: FlaskClient) -> None:
    """Not SELECT version()'s build string (patch level, compiler, OS)."""
    for _ in range(2):  # from the database, then from the cache
        response = client.get("/")
        data = response.get_json()["data"]
        assert re.fullmatch(r"PostgreSQL 1[0-9]|PostgreSQL [2-9][0-9]|SQLite 3", data), data


def test_health_healthy(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "healthy",
        "checks": {"database": "ok", "cache": "ok"},
        "instance": socket.gethostname(),
    }


def test_livez_and_readyz(client: FlaskClient) -> None:
    assert client.get("/livez").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ok"}


def test_database_down_is_503_without_exception_text(tmp_path: Path) -> None:
    closed = f"postgresql+psycopg://nobody@127.0.0.1:{servers.free_port()}/nothing"
    app = create_app(
        load_settings(
            app_env="test",
            database_url=closed,
            instance_dir=tmp_path,
            secret_key=TEST_SECRET_KEY,
        )
    )
    client = app.test_client()
    health = client.get("/health")
    assert health.status_code == 503
    assert health.get_json() == {
        "status": "unhealthy",
        "checks": {"database": "unavailable", "cache": "ok"},
        "instance": socket.gethostname(),
    }
    assert client.get("/livez").status_code == 200  # liveness never touches dependencies
    assert client.get("/readyz").status_code == 503
    products = client.get("/api/v1/products/1")
    assert products.status_code == 503
    assert products.mimetype == "application/problem+json"
    for response in (health, products, client.get("/readyz")):
        text = response.get_data(as_text=True)
        assert not any(word in text for word in LEAKY_WORDS), text


def test_cache_unreachable_is_degraded(tmp_path: Path, sqlite_template: Path) -> None:
    dead_redis = f"redis://127.0.0.1:{servers.free_port()}/0"
    app = create_app(
        sqlite_settings(tmp_path, sqlite_template, redis_url=dead_redis, secret_key=TEST_SECRET_KEY)
    )
    client = app.test_client()
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "degraded",
        "checks": {"database": "ok", "cache": "unavailable"},
        "instance": socket.gethostname(),
    }
    root = client.get("/")
    assert root.status_code == 200
    assert root.get_json()["message"] == "From Database!"


def test_readyz_503_until_migrated(tmp_path: Path) -> None:
    (tmp_path / "instance").mkdir()
    app = create_app(load_settings(app_env="test", instance_dir=tmp_path / "instance"))
    client = app.test_client()
    assert client.get("/readyz").status_code == 503
    assert client.get("/livez").status_code == 200


def test_readyz_on_unmigrated_postgres(pg_server: servers.PostgresServer) -> None:
    url = pg_server.create_database("not_migrated")
    other = create_app(load_settings(app_env="test", database_url=url, secret_key=TEST_SECRET_KEY))
    assert other.test_client().get("/readyz").status_code == 503
    other.extensions["db_engine"].dispose()


def test_proxy_fix_trusts_exactly_the_configured_hops(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """Behind one nginx the client is the last X-Forwarded-For entry, never a spoofed first."""
    from flask import request

    app = create_app(sqlite_settings(tmp_path, sqlite_template, proxy_hops=1))

    @app.get("/_whoami")
    def whoami() -> dict[str, str]:
        return {"ip": request.remote_addr or ""}

    headers = {"X-Forwarded-For": "6.6.6.6, 203.0.113.9"}
    assert app.test_client().get("/_whoami", headers=headers).get_json()["ip"] == "203.0.113.9"
    direct = create_app(sqlite_settings(tmp_path, sqlite_template))

    @direct.get("/_whoami")
    def whoami_direct() -> dict[str, str]:
        return {"ip": request.remote_addr or ""}

    assert direct.test_client().get("/_whoami", headers=headers).get_json()["ip"] == "127.0.0.1"


def test_readyz_accepts_a_newer_schema_during_rolling_updates(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """Old replicas stay ready when the new release has already migrated further."""
    from sqlalchemy import text

    from flipkart_api import db

    app = create_app(sqlite_settings(tmp_path, sqlite_template))
    client = app.test_client()
    with app.app_context(), db.engine().begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dcafe9999'"))
    assert client.get("/readyz").status_code == 200
    with app.app_context(), db.engine().begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    assert client.get("/readyz").status_code == 503  # behind: not ready
