"""Fixtures of `make test-faults`: one stack for the module, customers, and the report.

The drills share the stack and run in file order; each adds its figures to `report`,
which is written to build/faults.json and printed as a table when the module ends.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from .. import servers
from .load import Load, Order
from .stack import ROOT, Stack, call, production_env

PRODUCTS = 300
READ_PRODUCTS = 20  # only read by the load (and one admin price change)
ORDER_PRODUCTS = 20  # ordered by the load; restocked high so no order is ever short
ORDER_STOCK = 100_000
CUSTOMERS = 3  # one writer thread each
ADMIN = ("faults-admin@example.in", "faults-admin-password-1")
REPORT = ROOT / "build" / "faults.json"


@dataclass
class Shop:
    """The stack plus what the drills need to drive and check it."""

    stack: Stack
    admin: dict[str, str]
    tokens: list[str]
    read_ids: list[int]
    order_ids: list[int]
    start_stock: dict[int, int]
    loads: list[Load] = field(default_factory=list)  # every drill's load, for the totals

    @property
    def orders(self) -> list[Order]:
        """Every order any drill's load tried to place."""
        return [order for load in self.loads for order in load.orders]

    def sql(self, statement: str, **params: Any) -> list[Any]:
        """Rows of one query against the stack's database."""
        engine = create_engine(self.stack.database_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(statement), params))
        finally:
            engine.dispose()


def _token(port: int, email: str, password: str) -> str:
    reply = call(port, "POST", "/api/v1/auth/token", {"email": email, "password": password})
    assert reply.status == 200, reply.body
    return str(reply.json()["access_token"])


@pytest.fixture(scope="module")
def shop() -> Iterator[Shop]:
    """PostgreSQL, two Redis, 3 production replicas and nginx, seeded; all stopped afterwards."""
    try:
        pg, redis_server = servers.start_postgres(), servers.start_redis()
        limits_redis = servers.start_redis()
    except servers.ServerUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but a real server is unavailable: {exc}")
        pytest.skip(f"REAL SERVER UNAVAILABLE, fault drills skipped: {exc}")
    if shutil.which("nginx") is None:
        pg.stop()
        redis_server.stop()
        limits_redis.stop()
        pytest.skip("nginx is not installed")
    workdir = Path(tempfile.mkdtemp(prefix="flipkart-faults-"))
    url = pg.create_database("faults")
    env = production_env(workdir, url, redis_server.url(), limits_redis.url())
    stack = Stack(workdir, pg, redis_server, limits_redis, url, env)
    try:
        stack.start(PRODUCTS)
        stack.cli("create-admin", "--email", ADMIN[0], "--password", ADMIN[1])
        admin = {"Authorization": f"Bearer {_token(stack.port, *ADMIN)}"}
        tokens = []
        for n in range(CUSTOMERS):
            user = {"email": f"buyer{n}@example.in", "password": "correct-horse-1", "name": "B"}
            assert call(stack.port, "POST", "/api/v1/auth/register", user).status == 201
            tokens.append(_token(stack.port, user["email"], user["password"]))
        shop = Shop(stack, admin, tokens, [], [], {})
        in_stock = [r.id for r in shop.sql("SELECT id FROM products WHERE stock > 0 ORDER BY id")]
        shop.read_ids = in_stock[:READ_PRODUCTS]
        shop.order_ids = in_stock[READ_PRODUCTS : READ_PRODUCTS + ORDER_PRODUCTS]
        for pid in shop.order_ids:
            path = f"/api/v1/products/{pid}"
            patch = call(stack.port, "PATCH", path, {"stock": ORDER_STOCK}, admin)
            assert patch.status == 200, patch.body
        shop.start_stock = {r.id: r.stock for r in shop.sql("SELECT id, stock FROM products")}
        yield shop
    finally:
        stack.stop()
        _keep_logs(
            workdir,
            pg.logfile,
            redis_server.workdir / "redis.log",
            limits_redis.workdir / "redis.log",
        )
        pg.stop()
        redis_server.stop()
        limits_redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _keep_logs(workdir: Path, *more: Path) -> None:
    """Copy the replicas', nginx's and the servers' logs to build/faults-logs/ for post-mortems."""
    target = REPORT.parent / "faults-logs"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for log in [*workdir.rglob("*.log"), *more]:
        if log.is_file():
            shutil.copy(log, target / f"{log.parent.name}-{log.name}")


@pytest.fixture(scope="module")
def report() -> Iterator[dict[str, dict[str, Any]]]:
    """Figures per drill; written to build/faults.json and printed at the end."""
    figures: dict[str, dict[str, Any]] = {}
    yield figures
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps({"cpus": os.cpu_count(), "drills": figures}, indent=2) + "\n")
    columns = ("requests", "failed", "status_5xx", "max_latency_outage_s", "recovery_s")
    lines = [f"{'drill':34}" + "".join(f"{c:>22}" for c in columns)]
    for name, row in figures.items():
        lines.append(f"{name:34}" + "".join(f"{row.get(c, '-')!s:>22}" for c in columns))
    print("\n\nfault drills (" + str(REPORT.relative_to(ROOT)) + ")\n" + "\n".join(lines))
