"""Real concurrency over HTTP: one customer's simultaneous orders cannot pass the caps together."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from .test_order_concurrency import Api, _serve, pg_server_env
from .test_orders import ADDRESS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
ATTEMPTS = 30


@pytest.fixture
def pg_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """The app server on PostgreSQL + Redis, 4 workers x 4 threads, default caps (5, 50)."""
    env = pg_server_env(request, ORDERS_MAX_OPEN="5", ORDERS_MAX_OPEN_UNITS="50")
    yield from _serve(env, tmp_path)


def _setup(api: Api) -> tuple[str, list[int]]:
    """A customer's token and two products with stock no race here can exhaust."""
    admin = api.token("ops@example.in", "ops-password-1")
    api.call("POST", "/api/v1/categories", {"name": "Hoard"}, admin)
    ids = []
    for i in range(2):
        body = {
            "sku": f"HOARD-{i}",
            "name": f"Hoardable {i}",
            "category": "hoard",
            "price": 100,
            "mrp": 100,
            "stock": 100_000,
        }
        status, product = api.call("POST", "/api/v1/products", body, admin)
        assert status == 201, product
        ids.append(product["id"])
    customer = {"email": "hoarder@example.in", "password": "hoarder-pass-1", "name": "H"}
    assert api.call("POST", "/api/v1/auth/register", customer)[0] == 201
    return api.token(customer["email"], customer["password"]), ids


def _race(api: Api, token: str, body: dict[str, Any]) -> Counter[int]:
    start = threading.Barrier(ATTEMPTS)

    def place(_: int) -> int:
        start.wait()
        return api.call("POST", "/api/v1/orders", body, token)[0]

    with ThreadPoolExecutor(ATTEMPTS) as pool:
        return Counter(pool.map(place, range(ATTEMPTS)))


def _open_orders(api: Api, token: str) -> list[dict[str, Any]]:
    orders = api.call("GET", "/api/v1/orders?limit=100", None, token)[1]["items"]
    return [o for o in orders if o["status"] == "placed"]


def test_simultaneous_orders_pass_the_order_cap_exactly_five_times(pg_api: Api) -> None:
    token, (a, _) = _setup(pg_api)
    body = {"items": [{"product_id": a, "quantity": 1}], "shipping_address": ADDRESS}
    counts = _race(pg_api, token, body)
    print(f"\norder cap race: {dict(counts)}")
    assert counts == {201: 5, 409: ATTEMPTS - 5}
    assert len(_open_orders(pg_api, token)) == 5


def test_simultaneous_orders_pass_the_unit_cap_exactly_twice(pg_api: Api) -> None:
    token, (a, b) = _setup(pg_api)
    twenty = [{"product_id": a, "quantity": 10}, {"product_id": b, "quantity": 10}]
    counts = _race(pg_api, token, {"items": twenty, "shipping_address": ADDRESS})
    print(f"\nunit cap race: {dict(counts)}")
    assert counts == {201: 2, 409: ATTEMPTS - 2}  # 40 units held; a third would make 60
    held = sum(i["quantity"] for o in _open_orders(pg_api, token) for i in o["items"])
    assert held == 40
