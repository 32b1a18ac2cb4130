"""Real concurrency over HTTP: one cart line written by many requests while its product goes."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .test_order_concurrency import Api, _serve, pg_server_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
ROUNDS = 6
PUTS = 24  # concurrent PUTs of one line per round


@pytest.fixture
def pg_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """The app server on PostgreSQL + Redis, 4 workers x 4 threads."""
    env = pg_server_env(request)
    yield from _serve(env, tmp_path)


def _product(api: Api, admin: str, n: int) -> int:
    body = {
        "sku": f"CART-RACE-{n}",
        "name": f"Cart race {n}",
        "category": "mobiles",
        "price": 100,
        "mrp": 100,
        "stock": 50,
    }
    status, product = api.call("POST", "/api/v1/products", body, admin)
    assert status == 201, product
    pid: int = product["id"]
    return pid


def test_concurrent_puts_of_one_line_and_a_product_delete_never_500(pg_api: Api) -> None:
    """Many PUTs of the same line race each other and the product's DELETE: 200 or 404 only.

    Before the upsert, two PUTs that both found no line both INSERTed (unique violation,
    500), and a PUT that found the product before its DELETE committed hit the foreign key
    (500).
    """
    api = pg_api
    admin = api.token("ops@example.in", "ops-password-1")
    api.call("POST", "/api/v1/categories", {"name": "Mobiles"}, admin)
    customer = {"email": "racer@example.in", "password": "racer-pass-1", "name": "R"}
    assert api.call("POST", "/api/v1/auth/register", customer)[0] == 201
    token = api.token(customer["email"], customer["password"])
    puts: Counter[int] = Counter()
    deletes: Counter[int] = Counter()
    for n in range(ROUNDS):
        pid = _product(api, admin, n)
        start = threading.Barrier(PUTS + 1)

        def put(i: int, pid: int = pid, start: threading.Barrier = start) -> int:
            start.wait()
            body = {"quantity": 1 + i % 10}
            return api.call("PUT", f"/api/v1/cart/items/{pid}", body, token)[0]

        def delete(pid: int = pid, start: threading.Barrier = start) -> int:
            start.wait()
            return api.call("DELETE", f"/api/v1/products/{pid}", None, admin)[0]

        with ThreadPoolExecutor(PUTS + 1) as pool:
            # The DELETE goes in the middle of the PUTs, so some land before it, some after.
            futures = [pool.submit(put, i) for i in range(PUTS // 2)]
            deleted = pool.submit(delete)
            futures += [pool.submit(put, i) for i in range(PUTS // 2, PUTS)]
            puts.update(f.result() for f in futures)
            deletes[deleted.result()] += 1
        status, cart = api.call("GET", "/api/v1/cart", None, token)
        assert status == 200
        assert pid not in [line["product_id"] for line in cart["items"]]
    print(f"\ncart race: PUT statuses {dict(puts)}, DELETE statuses {dict(deletes)}")
    assert set(puts) <= {200, 404}, puts
    assert deletes == {204: ROUNDS}
    assert puts[200] > 0
