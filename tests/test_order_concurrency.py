"""Real concurrency over HTTP: app-server workers racing for the last units of stock."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from . import servers
from .conftest import TEST_SECRET_KEY, reset_postgres
from .test_orders import ADDRESS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]  # app servers of its own
CLI = str(Path(sys.executable).parent / "flipkart-api")
ATTEMPTS = 60
STOCK = 20


class Api:
    """A tiny JSON client for a server on 127.0.0.1."""

    def __init__(self, base: str) -> None:
        self.base = base

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None, **headers: str
    ) -> tuple[int, Any]:
        """(status, parsed body) of one request."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        for name, value in headers.items():
            request.add_header(name.replace("_", "-"), value)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def token(self, email: str, password: str) -> str:
        """An access token."""
        status, body = self.call(
            "POST", "/api/v1/auth/token", {"email": email, "password": password}
        )
        assert status == 200, body
        return str(body["access_token"])


def _serve(env: dict[str, str], workdir: Path) -> Iterator[Api]:
    port = servers.free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(workdir),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "APP_ENV": "test",
        "RATELIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        # One buyer places 20 orders here: these races are about stock, and the open-order
        # caps have races of their own (test_order_caps_concurrency.py).
        "ORDERS_MAX_OPEN": "0",
        "ORDERS_MAX_OPEN_UNITS": "0",
    } | env
    subprocess.run([CLI, "migrate"], env=env, cwd=workdir, check=True, capture_output=True)
    admin = ["create-admin", "--email", "ops@example.in", "--password", "ops-password-1"]
    subprocess.run([CLI, *admin], env=env, cwd=workdir, check=True, capture_output=True)
    proc = subprocess.Popen(
        [CLI, "serve"], env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    api = Api(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if api.call("GET", "/livez")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        yield api
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
        assert "Traceback" not in output, output[-3000:]


def pg_server_env(request: pytest.FixtureRequest, **extra: str) -> dict[str, str]:
    """A served app's environment on the emptied session PostgreSQL + Redis, 4 x 4."""
    url = request.getfixturevalue("pg_url")
    redis_url = request.getfixturevalue("redis_server").url()
    reset_postgres(url, redis_url)
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "WEB_CONCURRENCY": "4",
        "WEB_THREADS": "4",
    }
    return env | extra


@pytest.fixture(params=["postgres", "sqlite"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """The app server on PostgreSQL + Redis with 4 workers, or on the embedded SQLite default."""
    if request.param == "postgres":
        env = pg_server_env(request)
    else:
        (tmp_path / "instance").mkdir()
        shutil.copy(
            request.getfixturevalue("sqlite_template"), tmp_path / "instance" / "flipkart.sqlite3"
        )
        env = {"WEB_THREADS": "16"}
    yield from _serve(env, tmp_path)


def _setup(api: Api, products: int) -> tuple[str, list[int]]:
    """A customer token and `products` products with STOCK units each."""
    admin = api.token("ops@example.in", "ops-password-1")
    api.call("POST", "/api/v1/categories", {"name": "Mobiles"}, admin)
    ids = []
    for i in range(products):
        body = {
            "sku": f"RACE-{i}",
            "name": f"Race phone {i}",
            "category": "mobiles",
            "price": 100,
            "mrp": 100,
            "stock": STOCK,
        }
        status, product = api.call("POST", "/api/v1/products", body, admin)
        assert status == 201, product
        ids.append(product["id"])
    api.call(
        "POST",
        "/api/v1/auth/register",
        {"email": "buyer@example.in", "password": "buyer-pass-1", "name": "B"},
    )
    return api.token("buyer@example.in", "buyer-pass-1"), ids


def _race(
    api: Api, token: str, bodies: list[dict[str, Any]], **headers: str
) -> tuple[list[int], list[Any], float]:
    started = time.monotonic()
    with ThreadPoolExecutor(len(bodies)) as pool:
        results = list(
            pool.map(lambda b: api.call("POST", "/api/v1/orders", b, token, **headers), bodies)
        )
    return [s for s, _ in results], [b for _, b in results], time.monotonic() - started


def _report(name: str, counts: Counter[int], elapsed: float) -> None:
    """The figures the closing note quotes (visible with `pytest -s`)."""
    sold, conflicts = counts[201], counts[409]
    print(
        f"\n{name}: attempts={ATTEMPTS} stock={STOCK} sold={sold} 409s={conflicts} {elapsed:.2f}s"
    )


def _stock(api: Api, product_id: int) -> int:
    value: int = api.call("GET", f"/api/v1/products/{product_id}")[1]["stock"]
    return value


def test_last_units_are_sold_exactly_once(api: Api) -> None:
    token, (pid,) = _setup(api, 1)
    body = {"items": [{"product_id": pid, "quantity": 1}], "shipping_address": ADDRESS}
    codes, _, elapsed = _race(api, token, [body] * ATTEMPTS)
    counts = Counter(codes)
    _report("single product", counts, elapsed)
    assert counts == {201: STOCK, 409: ATTEMPTS - STOCK}
    assert _stock(api, pid) == 0
    orders = api.call("GET", "/api/v1/orders?limit=100", None, token)[1]["items"]
    assert sum(i["quantity"] for o in orders for i in o["items"]) == STOCK


def test_multi_line_orders_in_opposite_orders_never_deadlock(api: Api) -> None:
    token, (a, b) = _setup(api, 2)
    forward = {
        "items": [{"product_id": a, "quantity": 1}, {"product_id": b, "quantity": 1}],
        "shipping_address": ADDRESS,
    }
    backward = {
        "items": [{"product_id": b, "quantity": 1}, {"product_id": a, "quantity": 1}],
        "shipping_address": ADDRESS,
    }
    codes, _, elapsed = _race(api, token, [forward, backward] * (ATTEMPTS // 2))
    counts = Counter(codes)
    _report("two products, opposite line order", counts, elapsed)
    assert counts == {201: STOCK, 409: ATTEMPTS - STOCK}
    assert (_stock(api, a), _stock(api, b)) == (0, 0)


def test_concurrent_requests_with_one_key_create_one_order(api: Api) -> None:
    token, (pid,) = _setup(api, 1)
    body = {"items": [{"product_id": pid, "quantity": 2}], "shipping_address": ADDRESS}
    codes, bodies, _ = _race(api, token, [body] * 12, Idempotency_Key="tap-twice-1")
    assert codes == [201] * 12, bodies
    assert len({b["id"] for b in bodies}) == 1
    assert _stock(api, pid) == STOCK - 2
    assert len(api.call("GET", "/api/v1/orders", None, token)[1]["items"]) == 1
