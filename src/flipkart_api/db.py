"""Engine and pool, one session per request, backend-specific inserts, and the migration lock."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, Result
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from . import metrics
from .settings import Settings

log = logging.getLogger(__name__)

# Any fixed key works: it only has to be the same for every replica running `migrate`.
MIGRATION_LOCK_KEY = 0x666B617069  # "fkapi"
MIGRATION_LOCK_POLL_S = 0.2  # between tries of the lock (migration_lock)


def build_engine(settings: Settings) -> Engine:
    """An explicit pool with pre-ping, so a restarted database costs one retry, not errors."""
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        settings.instance_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 15},
            pool_pre_ping=True,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "connect_timeout": settings.db_connect_timeout_seconds,
            "application_name": "flipkart-api",
            **dead_peer_args(settings.db_dead_peer_seconds),
            "options": " ".join(f"-c {name}={value}" for name, value in SESSION_SETTINGS.items()),
        },
    )


# Server-side settings of every app connection.
SESSION_SETTINGS = {
    # JIT compiles a query whose *estimated* cost is high, then runs it in 1 ms: it added
    # 10-15 ms to catalog reads at 1,000,000 products. Off for OLTP traffic.
    "jit": "off",
    # The app never leaves a transaction waiting on itself this long; a client that vanished
    # mid-transaction (partition, SIGKILL) would otherwise hold its row locks (a product's
    # stock) until the server's own TCP keepalive gives up, two hours by default.
    "idle_in_transaction_session_timeout": "10s",
}


def dead_peer_args(seconds: int) -> dict[str, int]:
    """libpq options that notice a silent server within about `seconds`.

    tcp_user_timeout ends a connection whose sent data stays unacknowledged (a query sent
    into a partition); keepalives end one that waits on a reply that never comes
    (idle + count x interval seconds). Either way the query fails: the request is a 503.
    """
    idle = max(1, seconds // 2)
    return {
        "tcp_user_timeout": seconds * 1000,
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": 1,
        "keepalives_count": max(1, seconds - idle),
    }


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL lets readers run beside a writer; foreign keys are off by default in SQLite."""
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see _sqlite_begin).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=15000")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    """BEGIN IMMEDIATE for a unit of work (uow.py): take the write lock first, waiting for it.

    A deferred transaction that reads and then writes can fail at once with SQLITE_BUSY when
    another writer committed in between; taking the lock up front makes writers queue.
    """
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


EVENTS = "flipkart_events_enabled"  # Session.info: does a write publish its events?


def init_app(app: Flask, settings: Settings) -> None:
    """Create the engine and session factory and close the request's session on teardown."""
    engine = build_engine(settings)
    _count_pool(engine)
    app.extensions["db_engine"] = engine
    # events_enabled rides on each session, so outbox.publish needs no settings of its own.
    factory = sessionmaker(engine, expire_on_commit=False, info={EVENTS: settings.events_enabled})
    from .uow import guard  # uow imports this module

    guard(factory)  # every write goes through a unit of work
    app.extensions["db_sessionmaker"] = factory
    app.teardown_appcontext(_close_session)


def _count_pool(engine: Engine) -> None:
    """Keep the pool gauges (flipkart_db_pool_*) current as connections come and go."""
    pool: Any = engine.pool  # QueuePool on both backends: size(), checkedout()
    size = pool.size()
    metrics.POOL_SIZE.set(size)

    def _show(in_use: int) -> None:
        metrics.POOL_IN_USE.set(in_use)
        metrics.POOL_OVERFLOW.set(max(in_use - size, 0))

    # The checkin event comes before the pool takes the connection back: one less then.
    event.listen(engine, "checkout", lambda *_: _show(pool.checkedout()))
    event.listen(engine, "checkin", lambda *_: _show(pool.checkedout() - 1))


def engine() -> Engine:
    """The current app's engine."""
    eng: Engine = current_app.extensions["db_engine"]
    return eng


def session() -> Session:
    """The request's session, created on first use; rolled back and closed at teardown.

    It reads; it writes only inside a unit of work (uow.UnitOfWork).
    """
    if "db_session" not in g:
        g.db_session = current_app.extensions["db_sessionmaker"]()
    sess: Session = g.db_session
    return sess


def _close_session(_exc: BaseException | None) -> None:
    """Anything not committed by a service is rolled back here."""
    sess: Session | None = g.pop("db_session", None)
    if sess is None:
        return
    try:
        sess.close()
    except DBAPIError as exc:
        # The server dropped the connection (restart, failover) after the request's work:
        # it rolled back itself and the pool has discarded the connection, so the answer
        # already built stands. Any other failure to roll back is a real error.
        if not exc.connection_invalidated:
            raise
        log.warning("database connection lost before the session closed")


def dialect_insert(sess: Session, table: Any) -> Any:
    """The backend's own INSERT (PostgreSQL or SQLite), which has ON CONFLICT clauses."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if sess.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def insert_ignoring_conflicts(sess: Session, table: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING for the session's backend (PostgreSQL or SQLite)."""
    return dialect_insert(sess, table).on_conflict_do_nothing()


@contextlib.contextmanager
def migration_lock(conn: Connection) -> Iterator[None]:
    """Serialise concurrent `migrate` runs (several replicas) with a PostgreSQL advisory lock.

    Tried, not waited for: a run blocked in pg_advisory_lock() holds a snapshot, which a
    CREATE INDEX CONCURRENTLY of the lock's holder waits for (migration 0010), and the
    deadlock detector ended every waiting run. Between tries no transaction is open.
    """
    if conn.dialect.name != "postgresql":
        yield  # SQLite is single-host; its own file lock serialises writers.
        return
    while not conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY}):
        conn.rollback()
        time.sleep(MIGRATION_LOCK_POLL_S)
    try:
        yield
    finally:
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched (typed: Session.execute says Result, it is a cursor's)."""
    return int(getattr(result, "rowcount", 0) or 0)
