"""The HTTP cache on the real engine: Varnish (deploy/varnish/default.vcl) in front of replicas.

Replicas are `flipkart-api serve` on PostgreSQL and a Redis of this module's own, with
EDGE_PURGE_URLS pointing at the Varnish, as in the stacks. Everything here goes through the
Varnish the way nginx sends it (anonymous GET/HEAD; the rest passes through).
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from . import servers
from .faults.stack import CLI, Replica, call, production_env
from .varnish import Varnish, start_varnish

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ADMIN = {"email": "edge-admin@example.in", "password": "edge-admin-password"}
ADDRESS = {
    "name": "Edge",
    "line1": "1 MG Road",
    "city": "Pune",
    "state": "MH",
    "pincode": "411001",
    "phone": "9876543210",
}


@dataclass
class EdgeStack:
    """Varnish in front of replicas; `redis` is this stack's own (a test may stop it)."""

    varnish: Varnish
    replicas: list[Replica]
    redis: servers.RedisServer
    env: dict[str, str]

    def read(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
        """(status, X-Edge, JSON body) of an anonymous GET through the cache."""
        response = self.varnish.get(path, headers)
        body = response.data  # type: ignore[attr-defined]
        return response.status, response.getheader("X-Edge", ""), json.loads(body or b"null")

    def write(self, method: str, path: str, token: str, body: Any = None) -> Any:
        """A write through the cache (it passes), with a bearer token; returns the reply."""
        return call(self.varnish.port, method, path, body, {"Authorization": f"Bearer {token}"})

    def token(self, email: str, password: str) -> str:
        """A bearer token from POST /auth/token (through the cache, which passes it)."""
        reply = call(
            self.varnish.port, "POST", "/api/v1/auth/token", {"email": email, "password": password}
        )
        assert reply.status == 200, reply.body
        token: str = reply.json()["access_token"]
        return token


def start_edge_stack(
    workdir: Path, pg: servers.PostgresServer, replicas: int, **env: str
) -> EdgeStack:
    """Migrate and seed a database, start replicas purging a Varnish in front of them."""
    redis = servers.start_redis()
    url = pg.create_database(f"flipkart_edge_{os.getpid()}_{len(list(workdir.parent.iterdir()))}")
    varnish_port = servers.free_port()
    base = production_env(workdir, url, redis.url(0), redis.url(1))
    base |= {"EDGE_PURGE_URLS": f"http://127.0.0.1:{varnish_port}", "WEB_CONCURRENCY": "1"}
    base |= env
    for args in (["migrate"], ["seed", "--products", "60", "-q"]):
        done = subprocess.run([CLI, *args], env=base, capture_output=True, timeout=180)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    admin = base | {"ADMIN_PASSWORD": ADMIN["password"]}
    done = subprocess.run(
        [CLI, "create-admin", "--email", ADMIN["email"]], env=admin, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    started = [
        Replica(servers.free_port(), base, workdir / f"replica{i}.log") for i in range(replicas)
    ]
    for replica in started:
        replica.start()
    varnish = start_varnish(workdir / "varnish", [r.port for r in started], port=varnish_port)
    return EdgeStack(varnish, started, redis, base)


def stop_edge_stack(stack: EdgeStack) -> None:
    """Stop what start_edge_stack started, by PID."""
    stack.varnish.stop()
    for replica in stack.replicas:
        replica.stop()
    stack.redis.stop()


@pytest.fixture(scope="module")
def edge(
    tmp_path_factory: pytest.TempPathFactory, pg_server: servers.PostgresServer
) -> Iterator[EdgeStack]:
    stack = start_edge_stack(tmp_path_factory.mktemp("edge"), pg_server, replicas=2)
    yield stack
    stop_edge_stack(stack)


@pytest.fixture(scope="module")
def admin_token(edge: EdgeStack) -> str:
    return edge.token(ADMIN["email"], ADMIN["password"])


def test_a_detail_is_cached_and_purged_by_the_write_that_changes_it(
    edge: EdgeStack, admin_token: str
) -> None:
    path = "/api/v1/products/3"
    first, second = edge.read(path), edge.read(path)
    assert (first[0], first[1], second[1]) == (200, "MISS", "HIT")
    other = edge.read("/api/v1/products/4")
    assert edge.read("/api/v1/products/4")[1] == "HIT"
    reply = edge.write("PATCH", path, admin_token, {"price": first[2]["price"] - 100})
    assert reply.status == 200, reply.body
    status, source, body = edge.read(path)
    assert (status, source, body["price"]) == (200, "MISS", first[2]["price"] - 100)
    # Exactly the keys the write touched: another product's detail stays cached.
    assert edge.read("/api/v1/products/4")[1:] == ("HIT", other[2])


def test_lists_search_and_categories_are_purged_by_their_keys(
    edge: EdgeStack, admin_token: str
) -> None:
    listing = "/api/v1/products?sort=price&limit=50"
    edge.read(listing)
    edge.read("/api/v1/categories")
    assert edge.read(listing)[1] == edge.read("/api/v1/categories")[1] == "HIT"
    row = edge.read(listing)[2]["items"][0]
    assert (
        edge.write("PATCH", f"/api/v1/products/{row['id']}", admin_token, {"stock": 0}).status
        == 200
    )
    _, source, page = edge.read(listing)
    assert source == "MISS"
    assert next(p for p in page["items"] if p["id"] == row["id"])["stock"] == 0
    assert edge.read("/api/v1/categories")[1] == "HIT"  # a product write leaves the tree
    created = edge.write("POST", "/api/v1/categories", admin_token, {"name": "Edge Tools"})
    assert created.status == 201, created.body
    _status, source, tree = edge.read("/api/v1/categories")
    assert source == "MISS"
    assert "edge-tools" in {c["slug"] for c in tree["items"]}


def test_suggestions_are_cached_at_the_edge_and_purged_by_a_text_write(
    edge: EdgeStack, admin_token: str
) -> None:
    """Every keystroke may ask: the answer is stored, and a new name shows at once."""
    path = "/api/v1/search/suggest?q=edgy"
    first, second = edge.read(path), edge.read(path)
    assert (first[0], first[1], second[1]) == (200, "MISS", "HIT")
    assert first[2]["products"] == []
    reply = edge.write("PATCH", "/api/v1/products/5", admin_token, {"name": "Edgyphone 1"})
    assert reply.status == 200, reply.body
    status, source, body = edge.read(path)
    assert (status, source) == (200, "MISS")
    assert [p["name"] for p in body["products"]] == ["Edgyphone 1"]


def test_a_product_write_purges_only_the_list_pages_it_can_change(
    edge: EdgeStack, admin_token: str
) -> None:
    """A price write: the pages listing the product and those ordered by price, no others."""
    newest, by_price = "/api/v1/products?sort=newest&limit=5", "/api/v1/products?sort=price&limit=5"
    every = "/api/v1/products?sort=newest&limit=100"  # all 60 seeded products and more
    pages = {path: edge.read(path)[2]["items"] for path in (newest, by_price, every)}
    assert [edge.read(path)[1] for path in pages] == ["HIT", "HIT", "HIT"]
    shown = {item["id"] for path in (newest, by_price) for item in pages[path]}
    target = next(item for item in pages[every] if item["id"] not in shown)
    time.sleep(0.3)  # past store-check-margin (vcl_hit sends young objects to the app)
    reply = edge.write(
        "PATCH", f"/api/v1/products/{target['id']}", admin_token, {"price": target["price"] - 1}
    )
    assert reply.status == 200, reply.body
    assert edge.read(newest)[1] == "HIT"  # neither lists it nor is ordered by price
    assert edge.read(by_price)[1] == "MISS"  # ordered by price: it may have moved onto it
    _, source, page = edge.read(every)
    assert source == "MISS"  # lists it
    assert next(i for i in page["items"] if i["id"] == target["id"])["price"] == target["price"] - 1
    # A field no list filters or sorts by: only the pages listing it.
    reply = edge.write(
        "PATCH", f"/api/v1/products/{target['id']}", admin_token, {"mrp": target["mrp"] + 1}
    )
    assert reply.status == 200, reply.body
    time.sleep(0.3)
    assert [edge.read(path)[1] for path in (newest, by_price, every)] == ["HIT", "HIT", "MISS"]


def test_query_strings_in_any_order_are_one_object(edge: EdgeStack) -> None:
    assert edge.read("/api/v1/products?limit=3&sort=-price&in_stock=true")[0] == 200
    assert edge.read("/api/v1/products?in_stock=true&sort=-price&limit=3")[1] == "HIT"


def test_orders_purge_the_stock_they_move(edge: EdgeStack) -> None:
    reply = call(
        edge.varnish.port,
        "POST",
        "/api/v1/auth/register",
        {"email": "shopper@example.in", "password": "shopper-password", "name": "S"},
    )
    assert reply.status == 201, reply.body
    token = edge.token("shopper@example.in", "shopper-password")
    pid = edge.read("/api/v1/products?in_stock=true&sort=-price&limit=1")[2]["items"][0]["id"]
    path = f"/api/v1/products/{pid}"
    stock = edge.read(path)[2]["stock"]
    assert edge.read(path)[1] == "HIT"
    order = {"items": [{"product_id": pid, "quantity": 1}], "shipping_address": ADDRESS}
    placed = edge.write("POST", "/api/v1/orders", token, order)
    assert placed.status == 201, placed.body
    status, source, after = edge.read(path)
    assert (status, source, after["stock"]) == (200, "MISS", stock - 1)
    cancelled = edge.write("POST", f"/api/v1/orders/{placed.json()['id']}/cancel", token)
    assert cancelled.status == 200, cancelled.body
    assert edge.read(path)[2]["stock"] == stock


def test_personal_and_failed_answers_are_never_served_from_the_cache(
    edge: EdgeStack, admin_token: str
) -> None:
    """Two users, one cache: each sees their own account; errors are asked for every time."""
    users = []
    for n in (1, 2):
        email = f"person{n}@example.in"
        call(edge.varnish.port, "POST", "/api/v1/auth/register",
             {"email": email, "password": "person-password", "name": f"P{n}"})  # fmt: skip
        users.append((email, edge.token(email, "person-password")))
    for _ in range(3):
        for email, token in users:
            auth = {"Authorization": f"Bearer {token}"}
            status, source, me = edge.read("/api/v1/users/me", auth)
            assert (status, source, me["email"]) == (200, "MISS", email)
            status, source, _detail = edge.read("/api/v1/products/2", auth)
            assert (status, source) == (200, "MISS")  # even a public path, when authorised
    for path, status in (
        ("/api/v1/products/999999", 404),
        ("/api/v1/products?limit=0", 422),
        ("/api/v1/cart", 401),
    ):
        assert [edge.read(path)[:2] for _ in range(3)] == [(status, "MISS")] * 3, path
    assert edge.read("/api/v1/products/2", {"Cookie": "session=1"})[1] == "MISS"


def test_with_redis_down_the_cache_still_serves_and_purges(
    edge: EdgeStack, admin_token: str
) -> None:
    path = "/api/v1/products/9"
    before = edge.read(path)[2]
    assert edge.read(path)[1] == "HIT"
    edge.redis.halt()
    try:
        assert edge.read(path)[1:] == ("HIT", before)
        reply = edge.write("PATCH", path, admin_token, {"price": before["price"] - 1})
        assert reply.status == 200, reply.body
        status, source, after = edge.read(path)
        assert (status, source, after["price"]) == (200, "MISS", before["price"] - 1)
    finally:
        edge.redis.restart()


# -- the race the counter closes, on a stub origin --------------------------------------
class _SlowOrigin(http.server.BaseHTTPRequestHandler):
    """Answers /api/v1/products/1 after `delay` with the current `version`, tagged xkey: k;
    `served` notes the version of each such answer as it is made."""

    version = "old"
    delay = threading.Event()
    served: list[str] = []

    def do_GET(self) -> None:
        body = self.version.encode()
        if self.path.startswith("/api/v1/products/1"):
            _SlowOrigin.served.append(self.version)
            _SlowOrigin.delay.wait(5)  # the test releases it after purging
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "public, max-age=0, s-maxage=60")
        self.send_header("xkey", "k")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


def test_an_answer_made_before_a_purge_and_arriving_after_it_is_not_stored(
    tmp_path: Path,
) -> None:
    """A miss reads the old rows, the write commits and purges, then the miss lands.

    xkey (and ban) only reach objects already in the cache: without the VCL's purge counter
    the late answer would be stored and served until its TTL. Here it is delivered to the
    request that asked before the write, and the next read fetches afresh.
    """
    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowOrigin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    varnish = start_varnish(tmp_path / "v", [origin.server_address[1]])
    try:
        _SlowOrigin.version, _SlowOrigin.delay = "old", threading.Event()
        early: list[bytes] = []
        reader = threading.Thread(
            target=lambda: early.append(varnish.get("/api/v1/products/1").data)  # type: ignore[attr-defined]
        )
        reader.start()
        time.sleep(0.3)  # the fetch is under way, holding the old version
        _SlowOrigin.version = "new"  # the write commits ...
        purge = call(varnish.port, "PURGE", "/", headers={"xkey-purge": "k"})  # ... and purges
        assert purge.status == 200
        _SlowOrigin.delay.set()
        reader.join(10)
        assert early == [b"old"]  # it asked before the write: the old answer is right for it
        late = varnish.get("/api/v1/products/1")
        assert (late.data, late.getheader("X-Edge")) == (b"new", "MISS")  # type: ignore[attr-defined]
    finally:
        varnish.stop()
        origin.shutdown()
        origin.server_close()


# The windows a descheduled thread opens, held open with vmod_vtc (it ships with varnishd):
# between the answer's purge-mark check and its store, and between the store and the
# fetching request's own look (this vcl_deliver runs before the production one).
# The margin (vcl_hit's distrust of a young object) is raised from 0.1 s to 2 s to cover them.
SLOW_STORE = (
    "import vtc;\n"
    "sub vcl_deliver { if (obj.hits == 0 && resp.http.x-edge-object) { vtc.sleep(0.5s); } }",
    'sub vcl_init { var.global_set("store-check-margin", "2"); }\n'
    'sub vcl_backend_response { if (bereq.url ~ "^/api/v1/products/1") { vtc.sleep(1s); } }',
)


def test_a_purge_between_the_check_and_the_store_does_not_leave_the_old_answer(
    tmp_path: Path,
) -> None:
    """The answer passed the purge-mark check, then the purge ran before it was indexed.

    Without the VCL's second look the old answer would be served, from the cache, to a read
    that started after the write had returned: while it is being stored (vcl_hit), and
    until its TTL (vcl_deliver drops it).
    """
    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowOrigin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    before, after = SLOW_STORE
    varnish = start_varnish(
        tmp_path / "v", [origin.server_address[1]], before_vcl=before, after_vcl=after
    )
    path = "/api/v1/products/1"
    try:
        _SlowOrigin.version, _SlowOrigin.served = "old", []
        _SlowOrigin.delay = threading.Event()
        _SlowOrigin.delay.set()  # answers at once: the VCL holds the windows open
        answers: dict[str, tuple[bytes, str]] = {}

        def read(name: str) -> None:
            response = varnish.get(path)
            answers[name] = (response.data, response.getheader("X-Edge", ""))  # type: ignore[attr-defined]

        early = threading.Thread(target=read, args=("early",))
        early.start()
        deadline = time.monotonic() + 5
        while not _SlowOrigin.served and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # Varnish has the old answer and has checked the marks
        _SlowOrigin.version = "new"  # the write commits ...
        purge = call(varnish.port, "PURGE", "/", headers={"xkey-purge": "k"})  # ... and purges
        assert purge.status == 200
        # The write has returned. This read waits for the object being stored, and gets it
        # before the fetching request has looked again.
        waiter = threading.Thread(target=read, args=("waiter",))
        waiter.start()
        early.join(10)
        waiter.join(10)
        assert answers["early"] == (b"old", "MISS")  # asked before the write: right for it
        assert answers["waiter"][0] == b"new", answers
        # Past the margin in which vcl_hit distrusts it: the object itself must be gone.
        time.sleep(1.2)
        late = varnish.get(path)
        assert late.data == b"new", (late.data, late.getheader("X-Edge"))  # type: ignore[attr-defined]
        assert _SlowOrigin.served[0] == "old", _SlowOrigin.served
    finally:
        varnish.stop()
        origin.shutdown()
        origin.server_close()


def test_an_instance_the_app_cannot_purge_is_stale_for_at_most_the_ttl(
    edge: EdgeStack, admin_token: str, tmp_path: Path
) -> None:
    """The purge is lost (nothing listens where the app sends it): the bound is s-maxage."""
    ttl = 2
    dead = servers.free_port()
    env = edge.env | {"EDGE_PURGE_URLS": f"http://127.0.0.1:{dead}", "EDGE_TTL_SECONDS": str(ttl)}
    replica = Replica(servers.free_port(), env, tmp_path / "replica.log")
    replica.start()
    varnish = start_varnish(tmp_path / "v", [replica.port])
    try:
        path = "/api/v1/products/11"
        old = json.loads(varnish.get(path).data)  # type: ignore[attr-defined]
        assert varnish.get(path).getheader("X-Edge") == "HIT"
        headers = {"Authorization": f"Bearer {admin_token}"}
        patched = call(replica.port, "PATCH", path, {"price": old["price"] - 7}, headers)
        assert patched.status == 200, patched.body
        returned = time.monotonic()
        seen = []
        while time.monotonic() - returned < ttl + 3:
            seen.append((time.monotonic() - returned, json.loads(varnish.get(path).data)["price"]))  # type: ignore[attr-defined]
            if seen[-1][1] != old["price"]:
                break
            time.sleep(0.1)
        stale_for = max((t for t, price in seen if price == old["price"]), default=0.0)
        assert seen[0][1] == old["price"]  # the purge really was lost: the old price is served
        assert seen[-1][1] == old["price"] - 7, seen[-3:]
        assert stale_for <= ttl + 0.5, seen[-3:]
        log = (tmp_path / "replica.log").read_text()
        assert "HTTP cache purge of" in log
        assert "failed" in log
    finally:
        varnish.stop()
        replica.stop()
