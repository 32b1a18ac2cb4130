"""compose.prod.yaml: nginx in front of 3 replicas, surviving kills, stops and restarts.

The tests run in file order against one stack (module-scoped fixture).
"""

from __future__ import annotations

import http.client as httpclient
import json
import threading
import time
from collections import Counter

import pytest

from .conftest import Stack, docker, http, wait_for

pytestmark = pytest.mark.timeout(900)
LOAD_REQUESTS = 3000  # bounded: 4 clients x 750 GETs
LOAD_SECONDS = 120  # and bounded in time


class Load:
    """A bounded GET loop through nginx on 127.0.0.1, counting every outcome."""

    def __init__(self, port: int, clients: int = 4) -> None:
        self.port = port
        self.codes: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(clients)]
        self._per_client = LOAD_REQUESTS // clients

    def _run(self, index: int) -> None:
        deadline = time.monotonic() + LOAD_SECONDS
        conn = httpclient.HTTPConnection("127.0.0.1", self.port, timeout=10)
        paths = ["/api/v1/products/1", "/health", "/api/v1/products?limit=5", "/"]
        for n in range(self._per_client):
            if time.monotonic() > deadline:
                break
            try:
                conn.request("GET", paths[(n + index) % len(paths)])
                response = conn.getresponse()
                response.read()
                code = response.status
            except (OSError, httpclient.HTTPException):
                conn.close()
                code, conn = 0, httpclient.HTTPConnection("127.0.0.1", self.port, timeout=10)
            with self._lock:
                self.codes[code] += 1
        conn.close()

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for t in self._threads:
            t.join()

    @property
    def failed(self) -> int:
        """Requests that were not answered 200."""
        return sum(n for code, n in self.codes.items() if code != 200)


def _base(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.ports['http']}"


def test_stack_comes_up_and_migrates_exactly_once(prod_stack: Stack) -> None:
    started = time.monotonic()
    prod_stack.compose("up", "-d", "--wait", timeout=900)
    print(f"\nprod stack up in {time.monotonic() - started:.1f}s")
    rows = [
        json.loads(line)
        for line in prod_stack.compose(
            "ps", "-a", "--format", "json", "migrate"
        ).stdout.splitlines()
    ]
    assert len(rows) == 1, rows
    assert rows[0]["ExitCode"] == 0
    count = prod_stack.compose(
        "exec",
        "-T",
        "db",
        "psql",
        "-U",
        "flipkart",
        "-d",
        "flipkart",
        "-tAc",
        "SELECT count(*) FROM alembic_version",
    ).stdout.strip()
    assert count == "1"
    # Production does not seed on its own; give the load something to read.
    prod_stack.compose("exec", "-T", "web", "flipkart-api", "seed", "--products", "50")
    running = [
        json.loads(line)
        for line in prod_stack.compose("ps", "--format", "json").stdout.splitlines()
    ]
    publishing = {
        c["Service"] for c in running for p in c.get("Publishers") or [] if p["PublishedPort"]
    }
    assert publishing == {"nginx"}


def test_requests_reach_all_three_replicas(prod_stack: Stack) -> None:
    wait_for(_base(prod_stack) + "/livez")
    assert len(prod_stack.containers("web")) == 3
    instances = set()
    for _ in range(60):
        status, body = http(_base(prod_stack) + "/health")
        assert status == 200
        assert body is not None
        instances.add(body["instance"])
    assert len(instances) == 3, instances


def test_sigkill_of_a_replica_under_load_fails_no_get(prod_stack: Stack) -> None:
    victim = prod_stack.containers("web")[0]
    with Load(prod_stack.ports["http"]) as load:
        time.sleep(1)
        docker("kill", "--signal", "KILL", victim)
        time.sleep(2)
        prod_stack.compose("up", "-d", "--wait", timeout=300)
    print(f"\nSIGKILL under load: sent={sum(load.codes.values())} codes={dict(load.codes)}")
    assert load.failed == 0, load.codes
    assert len(prod_stack.containers("web")) == 3


def test_graceful_stop_under_load_drops_nothing(prod_stack: Stack) -> None:
    victim = prod_stack.containers("web")[1]
    with Load(prod_stack.ports["http"]) as load:
        time.sleep(1)
        started = time.monotonic()
        docker("stop", "--time", "30", victim)
        stop_seconds = time.monotonic() - started
    sent = sum(load.codes.values())
    print(f"\ngraceful stop under load: {stop_seconds:.1f}s, sent={sent} codes={dict(load.codes)}")
    assert stop_seconds < 15, "stop took most of the grace period: SIGTERM did not reach gunicorn"
    assert load.failed == 0, load.codes
    prod_stack.compose("up", "-d", "--wait", timeout=300)


def test_data_survives_down_and_up(prod_stack: Stack) -> None:
    user = {"email": "keep@example.in", "password": "keep-me-please", "name": "Keep"}
    request = _post(_base(prod_stack) + "/api/v1/auth/register", user)
    assert request == 201
    prod_stack.compose("down", "--timeout", "10")
    prod_stack.compose("up", "-d", "--wait", timeout=600)
    wait_for(_base(prod_stack) + "/livez")
    login = _post(
        _base(prod_stack) + "/api/v1/auth/token",
        {"email": user["email"], "password": user["password"]},
    )
    assert login == 200


def test_adminer_with_the_tools_profile(prod_stack: Stack) -> None:
    prod_stack.compose("--profile", "tools", "up", "-d", "adminer", timeout=300)
    wait_for(f"http://127.0.0.1:{prod_stack.ports['adminer']}/", seconds=60)


def _post(url: str, body: dict[str, str]) -> int:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")  # noqa: S310
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
