"""/metrics of a real replica (`flipkart-api serve`, 2 granian workers) and of the front door.

- The counters of one scrape are the sum over the replica's worker processes, exact.
- A worker killed mid-life leaves its counts (they never go down) but no request in flight.
- Through the public front door (nginx with TLS), /metrics is a 404 however it is spelt.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from flipkart_api.metric_buffer import FLUSH_SECONDS

from . import servers
from .faults.stack import CLI, Replica, production_env
from .front_door import FrontDoor, start_front_door, stop_front_door

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

DETAIL = "/api/v1/products/<int:product_id>"


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of one replica's /metrics."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    assert response.status == 200, text[:500]
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests_counted(samples: dict, status: str = "200") -> float:  # type: ignore[type-arg]
    """flipkart_http_requests_total for GET of a product's detail."""
    labels = frozenset({"route": DETAIL, "method": "GET", "status": status}.items())
    return float(samples.get(("flipkart_http_requests_total", labels), 0.0))


def get(port: int, path: str) -> int:
    """One GET on a fresh connection (so the kernel hands them to both workers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status


@pytest.fixture(scope="module")
def replica(
    tmp_path_factory: pytest.TempPathFactory, pg_server: servers.PostgresServer
) -> Iterator[tuple[Replica, Path]]:
    """A production-configured replica with 2 workers; its metrics directory."""
    workdir = tmp_path_factory.mktemp("metrics")
    redis = servers.start_redis()
    url = pg_server.create_database(f"flipkart_metrics_{os.getpid()}")
    directory = workdir / "prometheus"
    env = production_env(workdir, url, redis.url(0), redis.url(1)) | {
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }
    for args in (["migrate"], ["seed", "--products", "30", "-q"]):
        done = subprocess.run([CLI, *args], env=env, capture_output=True, timeout=180)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"left by an earlier run")
    started = Replica(servers.free_port(), env, workdir / "replica.log")
    started.start()
    yield started, directory
    started.stop()
    redis.stop()


def _workers(replica: Replica) -> list[int]:
    """The granian worker processes: the children of the replica's main process."""
    assert replica.process is not None
    children = Path(f"/proc/{replica.process.pid}/task/{replica.process.pid}/children")
    return [int(pid) for pid in children.read_text().split()]


def test_one_scrape_counts_every_request_of_every_worker_exactly(
    replica: tuple[Replica, Path],
) -> None:
    server, directory = replica
    assert not (directory / "counter_999999.db").exists(), "an earlier run's values were kept"
    before = requests_counted(scrape(server.port))
    sent = 400
    statuses = [get(server.port, f"/api/v1/products/{1 + i % 30}") for i in range(sent)]
    assert statuses == [200] * sent
    # Whichever worker answers the scrape, it sums both workers' files (each worker writes
    # its counts there every second: metric_buffer.FLUSH_SECONDS).
    time.sleep(FLUSH_SECONDS * 1.5)
    counts = [requests_counted(scrape(server.port)) - before for _ in range(6)]
    assert counts == [sent] * 6
    writers = {
        int(m[1]) for p in directory.glob("counter_*.db") if (m := re.search(r"_(\d+)", p.name))
    }
    assert len(writers & set(_workers(server))) == 2, "both workers should have answered some"
    assert scrape(server.port)[("flipkart_http_requests_in_flight", frozenset())] == 0


def test_a_killed_worker_keeps_its_counts_and_leaves_nothing_in_flight(
    replica: tuple[Replica, Path],
) -> None:
    server, _ = replica
    for i in range(50):
        get(server.port, f"/api/v1/products/{1 + i % 30}")
    time.sleep(FLUSH_SECONDS * 1.5)  # all of it in the files: what a kill cannot take back
    before = requests_counted(scrape(server.port))
    victim = _workers(server)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while victim in _workers(server) or len(_workers(server)) < 2:
        assert time.monotonic() < deadline, "granian did not respawn the worker"
        time.sleep(0.2)
    for i in range(20):
        assert get(server.port, f"/api/v1/products/{1 + i % 30}") == 200
    time.sleep(FLUSH_SECONDS * 1.5)
    after = scrape(server.port)
    assert requests_counted(after) == before + 20  # the dead worker's counts are still there
    assert after[("flipkart_http_requests_in_flight", frozenset())] == 0


@pytest.fixture(scope="module")
def door(
    tmp_path_factory: pytest.TempPathFactory, pg_server: servers.PostgresServer
) -> Iterator[FrontDoor]:
    started = start_front_door(tmp_path_factory.mktemp("door"), pg_server, replicas=1)
    yield started
    stop_front_door(started)


@pytest.mark.parametrize(
    "path",
    ["/metrics", "/metrics?x=1", "/%6detrics", "/./metrics", "/api/../metrics", "//metrics"],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_metrics_cannot_be_reached_through_the_front_door(
    door: FrontDoor, path: str, method: str
) -> None:
    # The replica behind it does answer them: so a 404 here is the front door's doing.
    assert scrape(door.replicas[0].port)
    conn = door.connect()
    conn.request(method, path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 404, (path, response.status)
    assert b"flipkart_" not in body


@pytest.mark.parametrize("path", ["/metrics", "/%6detrics", "/metrics?x=1"])
def test_metrics_cannot_be_reached_through_the_http_cache(door: FrontDoor, path: str) -> None:
    # Kubernetes' Ingress sends every path to Varnish, with X-Forwarded-For as any proxy,
    # and Varnish passes what it does not cache on to the replicas (here through nginx's
    # internal server, as in compose). The app does not answer a proxied scrape.
    conn = http.client.HTTPConnection("127.0.0.1", door.varnish_port, timeout=10)
    conn.request("GET", path, headers={"X-Forwarded-For": "203.0.113.7"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 404, (path, response.status)
    assert b"flipkart_" not in body
