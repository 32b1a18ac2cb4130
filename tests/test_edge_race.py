"""The freshness promise under load: no read that starts after a write returned shows older data.

Through the front door (tests/front_door.py: nginx with TLS -> Varnish -> 3 replicas on
PostgreSQL), as a client sees it. Writers
raise prices (admin PATCH) and place orders while readers fetch the same products through
the cache; every read's start time and values, and every write's return time, are recorded
(one monotonic clock). Prices only go up and stock only goes down, so a read that started
after a write's response must show a price at least that write's and stock at most what the
orders returned by then left. Bounded: at least 10,000 reads and 500 writes, or 150 s.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from . import servers
from .front_door import ADMIN, FrontDoor, start_front_door, stop_front_door
from .test_http_cache import ADDRESS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

PRICED = list(range(1, 9))  # products whose price the writer raises
ORDERED = list(range(9, 13))  # products the customer orders from
MIN_READS, MIN_WRITES, MAX_SECONDS = 10_000, 500, 150
READERS = 4


@dataclass(frozen=True)
class Read:
    started: float
    product: int
    price: int
    stock: int
    source: str


@dataclass(frozen=True)
class Write:
    returned: float
    product: int
    price: int | None  # a price write; None for an order of one unit


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, pg_server: servers.PostgresServer
) -> Iterator[FrontDoor]:
    started = start_front_door(tmp_path_factory.mktemp("race"), pg_server, replicas=3)
    yield started
    stop_front_door(started)


class Client:
    """One keep-alive HTTPS connection to the front door."""

    def __init__(self, door: FrontDoor) -> None:
        self.door = door
        self.conn = door.connect()

    def request(
        self, method: str, path: str, body: object = None, token: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = json.dumps(body).encode() if body is not None else None
        try:
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            self.conn.close()  # a dropped keep-alive connection: once more, on a new one
            self.conn = self.door.connect()
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def test_no_read_after_a_write_returned_shows_older_data(stack: FrontDoor) -> None:
    admin = stack.token(ADMIN["email"], ADMIN["password"])
    account = {"email": "racer@example.in", "password": "racer-password", "name": "R"}
    status, _, body = stack.request("POST", "/api/v1/auth/register", account)
    assert status == 201, body
    customer = stack.token("racer@example.in", "racer-password")
    setup = Client(stack)
    for pid in PRICED:
        status, _, body = setup.request(
            "PATCH", f"/api/v1/products/{pid}", {"mrp": 10**9, "price": 1000}, admin
        )
        assert status == 200, body
    for pid in ORDERED:
        status, _, body = setup.request(
            "PATCH", f"/api/v1/products/{pid}", {"stock": 100_000}, admin
        )
        assert status == 200, body
    setup.close()
    initial_stock = 100_000

    reads: list[Read] = []
    writes: list[Write] = []
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + MAX_SECONDS  # checked by the main loop below
    errors: list[str] = []

    def read_loop(seed: int) -> None:
        client, rng = Client(stack), random.Random(seed)
        while not stop.is_set():
            pid = rng.choice(PRICED + ORDERED)
            started = time.monotonic()
            status, headers, body = client.request("GET", f"/api/v1/products/{pid}")
            if status != 200:
                errors.append(f"read {pid}: {status} {body[:200]!r}")
                continue
            product = json.loads(body)
            read = Read(started, pid, product["price"], product["stock"], headers.get("x-edge", ""))
            with lock:
                reads.append(read)
        client.close()

    def price_loop() -> None:
        client, price = Client(stack), 1000
        while not stop.is_set():
            for pid in PRICED:
                price += 1
                path = f"/api/v1/products/{pid}"
                status, _, body = client.request("PATCH", path, {"price": price}, admin)
                if status != 200:
                    errors.append(f"patch {pid}: {status} {body[:200]!r}")
                    continue
                with lock:
                    writes.append(Write(time.monotonic(), pid, price))
        client.close()

    def order_loop() -> None:
        client, rng = Client(stack), random.Random(7)
        while not stop.is_set():
            pid = rng.choice(ORDERED)
            order = {"items": [{"product_id": pid, "quantity": 1}], "shipping_address": ADDRESS}
            status, _, body = client.request("POST", "/api/v1/orders", order, customer)
            if status != 201:
                errors.append(f"order {pid}: {status} {body[:200]!r}")
                continue
            with lock:
                writes.append(Write(time.monotonic(), pid, None))
        client.close()

    threads = [threading.Thread(target=read_loop, args=(n,)) for n in range(READERS)]
    threads += [threading.Thread(target=price_loop), threading.Thread(target=order_loop)]
    for thread in threads:
        thread.start()
    # Until both counts are reached, too many errors, or the deadline.
    while time.monotonic() < deadline and len(errors) <= 20:
        time.sleep(0.5)
        with lock:
            if len(reads) >= MIN_READS and len(writes) >= MIN_WRITES:
                break
    stop.set()
    for thread in threads:
        thread.join(30)

    assert not errors, errors[:5]
    stale = []
    for read in reads:
        returned_before = [
            w for w in writes if w.product == read.product and w.returned < read.started
        ]
        prices = [w.price for w in returned_before if w.price is not None]
        if prices and read.price < max(prices):
            stale.append(("price", read, max(prices)))
        ordered = sum(1 for w in returned_before if w.price is None)
        if read.product in ORDERED and read.stock > initial_stock - ordered:
            stale.append(("stock", read, initial_stock - ordered))
    hits = sum(1 for r in reads if r.source == "HIT")
    summary = (
        f"edge race: {len(reads)} reads ({hits / max(len(reads), 1):.1%} cache hits), "
        f"{len(writes)} writes, {len(stale)} stale"
    )
    print(summary)
    assert len(reads) >= MIN_READS, summary
    assert len(writes) >= MIN_WRITES, summary
    assert stale == [], (summary, stale[:5])
