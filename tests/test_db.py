"""The request's session when PostgreSQL drops the connection (restart, failover, kill)."""

from __future__ import annotations

import time

import pytest
from flask import Flask, g
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from flipkart_api import create_app, db
from flipkart_api.settings import load_settings

from .conftest import TEST_SECRET_KEY, reset_postgres


def _terminate(url: str, pid: int) -> None:
    """Kill one backend from another connection, as a fast shutdown does to every backend."""
    other = create_engine(url)
    with other.connect() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    other.dispose()


def _app(url: str) -> Flask:
    return create_app(
        load_settings(
            app_env="test",
            database_url=url,
            secret_key=TEST_SECRET_KEY,
            ratelimit_enabled=False,
        )
    )


def test_teardown_survives_a_connection_the_server_terminated(pg_url: str) -> None:
    """The work is done and answered; the lost connection must not turn that into a 500."""
    reset_postgres(pg_url, None)
    app = _app(pg_url)
    with app.app_context():
        pid = db.session().scalar(text("SELECT pg_backend_pid()"))
        _terminate(pg_url, pid)
        assert "db_session" in g  # leaving the context rolls back on the dead connection
    # The pool dropped the dead connection: the next request is served normally.
    response = app.test_client().get("/api/v1/products/1")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    app.extensions["db_engine"].dispose()


def test_pooled_connection_the_server_terminated_is_replaced(pg_url: str) -> None:
    """Pre-ping finds the pooled connection dead and reconnects: the request never notices."""
    reset_postgres(pg_url, None)
    app = _app(pg_url)
    client = app.test_client()
    with app.app_context():
        conn = db.engine().connect()
        pid = conn.scalar(text("SELECT pg_backend_pid()"))
        conn.close()  # back to the pool (size 1 in use), where the next request picks it up
    _terminate(pg_url, pid)
    response = client.get("/api/v1/products/1")
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    app.extensions["db_engine"].dispose()


def test_app_connections_notice_a_silent_server(pg_url: str) -> None:
    """libpq gives up on a server that stops answering (the partition drill shows the effect)."""
    app = _app(pg_url)
    with app.app_context(), db.engine().connect() as conn:
        params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
    dead = app.config["SETTINGS"].db_dead_peer_seconds
    assert params["tcp_user_timeout"] == str(dead * 1000)
    assert params["keepalives"] == "1"
    idle, count = int(params["keepalives_idle"]), int(params["keepalives_count"])
    assert idle + count * int(params["keepalives_interval"]) <= dead
    app.extensions["db_engine"].dispose()


@pytest.mark.slow  # waits out the idle-transaction timeout
def test_a_transaction_left_idle_releases_its_locks(pg_url: str) -> None:
    """A client that vanished mid-transaction does not hold a product's row lock for hours.

    The server ends an app session idle in a transaction after 10 s (db.SESSION_SETTINGS):
    here the "vanished" client holds a lock and says nothing; another writer gets the row.
    """
    reset_postgres(pg_url, None)
    app = _app(pg_url)
    other = create_engine(pg_url)
    with other.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS lock_probe (id int PRIMARY KEY)"))
        conn.execute(text("INSERT INTO lock_probe VALUES (1) ON CONFLICT DO NOTHING"))
    try:
        with app.app_context(), db.engine().connect() as stalled:
            assert stalled.scalar(text("SHOW jit")) == "off"
            assert stalled.scalar(text("SHOW idle_in_transaction_session_timeout")) == "10s"
            stalled.execute(text("SELECT id FROM lock_probe WHERE id = 1 FOR UPDATE"))
            start = time.monotonic()
            with other.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '20s'"))
                conn.execute(text("UPDATE lock_probe SET id = 1 WHERE id = 1"))
            waited = time.monotonic() - start
            with pytest.raises(DBAPIError, match="idle-in-transaction timeout"):
                stalled.execute(text("SELECT 1"))
        assert 9 <= waited <= 15, waited
    finally:
        with other.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS lock_probe"))
        other.dispose()
        app.extensions["db_engine"].dispose()
