"""The request's session when PostgreSQL drops the connection (restart, failover, kill)."""

from __future__ import annotations

from flask import Flask, g
from sqlalchemy import create_engine, text

from flipkart_api import create_app, db
from flipkart_api.settings import load_settings

from .conftest import reset_postgres


def _terminate(url: str, pid: int) -> None:
    """Kill one backend from another connection, as a fast shutdown does to every backend."""
    other = create_engine(url)
    with other.connect() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    other.dispose()


def _app(url: str) -> Flask:
    return create_app(load_settings(app_env="test", database_url=url, ratelimit_enabled=False))


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
