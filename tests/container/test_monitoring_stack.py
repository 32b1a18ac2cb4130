"""compose.prod.yaml --profile monitoring on a real engine: scraped, queried, alerting.

Prometheus (deploy/monitoring/prometheus-test.yml: production's config and rules, 2 s
intervals) scrapes the 3 replicas and every exporter while a load runs through nginx; every
panel of the Grafana dashboard must return data from it; a stuck replica (frozen with
`docker pause`: it stays in Docker's DNS but answers nothing) fires FlipkartReplicaDown,
which reaches a real webhook receiver through Alertmanager, and resolves when it is back.
Grafana has no stand-in image here, so it is the one service of the profile not started.
The tests run in file order against one stack.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from .. import dashboards, servers
from ..test_orders import ADDRESS
from .conftest import ROOT, Stack, docker, node_exporter_image, prod_stack_named
from .test_prod_stack import Load

pytestmark = pytest.mark.timeout(900)
OVERRIDE = "tests/container/monitoring/compose.override.yaml"
SERVICES = [
    *("web", "worker", "nginx", "varnish", "varnish-log", "prometheus", "alertmanager"),
    "alert-receiver",
    *("postgres-exporter", "redis-exporter", "nginx-exporter", "varnish-exporter"),
    "node-exporter",
]
# Every job of deploy/monitoring/prometheus.yml and how many targets it has in this stack.
JOBS = {"flipkart-api": 3, "worker": 1, "postgres": 1, "redis": 2, "nginx": 1, "varnish": 1,
        "node": 1, "alertmanager": 1, "prometheus": 1}  # fmt: skip


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, image: str) -> Iterator[Stack]:
    """The production stack with the monitoring profile, Prometheus on a free port."""
    for stack in prod_stack_named(request, image, "fk-monitoring-test"):
        stack.files.append(OVERRIDE)
        stack.ports |= {"prometheus": servers.free_port(), "alertmanager": servers.free_port()}
        stack.env |= {
            "PROMETHEUS_CONFIG": "prometheus-test.yml",
            "PROMETHEUS_PORT": str(stack.ports["prometheus"]),
            "ALERTMANAGER_PORT": str(stack.ports["alertmanager"]),
            "NODE_EXPORTER_IMAGE": node_exporter_image(),
            # A relay that refuses every connection: the order's email is attempted and
            # retried, so the worker's delivery counters and histogram have series.
            "SMTP_URL": "smtp://127.0.0.1:25",
        }
        yield stack


def instant(stack: Stack, promql: str) -> list[dict[str, Any]]:
    """The stack's Prometheus's answer to an instant query (dashboards.query): its series."""
    answer = dashboards.query(f"http://127.0.0.1:{stack.ports['prometheus']}", promql)
    assert answer["status"] == "success", answer
    series: list[dict[str, Any]] = answer["data"]["result"]
    return series


SCREENSHOTS = ROOT / "build" / "screenshots"  # the README's picture is copied from here


def screenshot(stack: Stack, page: str, name: str) -> None:
    """A headless Chromium picture of a Prometheus page (build/screenshots/<name>.png)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        assert os.environ.get("CI") != "true", "chromium is not installed"
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{stack.ports['prometheus']}{page}"
    try:  # Prometheus 2's own UI; Debian's build (the stand-in) has the classic one only
        urllib.request.urlopen(url, timeout=10).close()
    except urllib.error.HTTPError:
        url = f"http://127.0.0.1:{stack.ports['prometheus']}/classic{page}"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1400,900", "--virtual-time-budget=8000",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=127.0.0.1",
         f"--screenshot={SCREENSHOTS / (name + '.png')}", url],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000, "an empty page"


def notifications(stack: Stack) -> list[dict[str, Any]]:
    """Every notification the receiver got from Alertmanager, oldest first."""
    (receiver,) = stack.containers("alert-receiver")
    out = docker("logs", receiver).stdout  # not `compose logs`: it adds terminal codes
    return [json.loads(line.split(" ", 1)[1]) for line in out.splitlines()
            if line.startswith("NOTIFICATION ")]  # fmt: skip


def test_the_monitoring_profile_comes_up_and_every_target_is_scraped(stack: Stack) -> None:
    stack.compose("--profile", "monitoring", "up", "-d", "--wait", *SERVICES, timeout=900)
    stack.wait_for("/readyz")
    deadline = time.monotonic() + 120
    while True:
        results = instant(stack, "up")
        jobs: dict[str, list[float]] = {}
        for sample in results:
            jobs.setdefault(sample["metric"]["job"], []).append(float(sample["value"][1]))
        counts = {job: len(values) for job, values in jobs.items()}
        if counts == JOBS and all(v == 1 for values in jobs.values() for v in values):
            break
        assert time.monotonic() < deadline, f"targets not all up: {jobs}"
        time.sleep(2)


def _post(stack: Stack, path: str, body: dict[str, Any], token: str = "") -> dict[str, Any]:
    """POST JSON through nginx (HTTPS, the certificate verified); the JSON answer."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
        stack.base + path, data=json.dumps(body).encode(), headers=headers
    )
    with urllib.request.urlopen(request, timeout=10, context=stack.tls()) as answer:  # noqa: S310
        reply: dict[str, Any] = json.loads(answer.read())
        return reply


def _place_an_order(stack: Stack) -> None:
    """A customer's order: its event goes through the worker (an email attempt, retried)."""
    stack.compose("exec", "-T", "web", "flipkart-api", "seed", "--products", "5", "-q")
    login = {"email": "monitoring@example.in", "password": "correct-horse-1"}
    _post(stack, "/api/v1/auth/register", login | {"name": "M"})
    token = _post(stack, "/api/v1/auth/token", login)["access_token"]
    status, listing = stack.get("/api/v1/products?in_stock=true&limit=1")
    assert status == 200
    assert listing is not None
    item = {"product_id": listing["items"][0]["id"], "quantity": 1}
    _post(stack, "/api/v1/orders", {"items": [item], "shipping_address": ADDRESS}, token)


def test_every_dashboard_panel_returns_data_under_load(stack: Stack) -> None:
    _place_an_order(stack)
    with Load(stack) as load:
        time.sleep(20)  # ten scrapes under load: rate() over $__rate_interval has points
        url = f"http://127.0.0.1:{stack.ports['prometheus']}"
        checks = dashboards.check_against(url, dashboards.panel_queries(), rate_interval="30s")
        graph = urllib.parse.urlencode(
            {"g0.expr": "sum by (route) (rate(flipkart_http_requests_total[30s]))",
             "g0.tab": "0", "g0.range_input": "2m"}
        )  # fmt: skip
        screenshot(stack, f"/graph?{graph}", "prometheus-graph")
    empty = [(c.title, c.query, c.error) for c in checks if not c.has_data]
    assert not empty, empty
    # A 5-product catalog: product 1 may be a 404; what matters is that nothing failed.
    assert set(load.codes) <= {200, 404}, load.codes


def test_a_stuck_replica_fires_an_alert_through_alertmanager_and_it_resolves(
    stack: Stack,
) -> None:
    victim = stack.containers("web")[0]
    docker("pause", victim)
    try:
        fired = _wait_for_notification(stack, "firing", seconds=150)
        screenshot(stack, "/alerts", "prometheus-alerts")
    finally:
        docker("unpause", victim)
    alert = fired["alerts"][0]
    assert alert["labels"]["severity"] == "ticket"
    assert alert["labels"]["job"] == "flipkart-api"
    runbook = alert["annotations"]["runbook"]
    assert runbook == "deploy/monitoring/RUNBOOK.md#alert-flipkartreplicadown"
    resolved = _wait_for_notification(stack, "resolved", seconds=90)
    assert resolved["alerts"][0]["labels"]["instance"] == alert["labels"]["instance"]


def _wait_for_notification(stack: Stack, status: str, seconds: float) -> dict[str, Any]:
    """The first FlipkartReplicaDown notification with this status (firing or resolved)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for note in notifications(stack):
            name = note["groupLabels"].get("alertname") or note["commonLabels"].get("alertname")
            if name == "FlipkartReplicaDown" and note["status"] == status:
                return note
        time.sleep(3)
    alerts = instant(stack, "ALERTS")
    raise AssertionError(f"no {status} FlipkartReplicaDown within {seconds}s: {alerts}")
