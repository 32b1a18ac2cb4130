"""`docker compose up` (compose.yaml) gives a working dev stack on 127.0.0.1."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from typing import Any

from ..test_orders import ADDRESS
from .conftest import Stack, docker, http, wait_for

# Inside the worker's container: GET a path of its probe port, print the status and body.
WORKER_GET = (
    "import sys, urllib.request, urllib.error\n"
    "try:\n"
    "    r = urllib.request.urlopen('http://127.0.0.1:8001' + sys.argv[1], timeout=5)\n"
    "except urllib.error.HTTPError as e:\n"
    "    r = e\n"
    "print(r.status); print(r.read().decode(), end='')\n"
)


def test_dev_stack_serves(dev_stack: Stack) -> None:
    dev_stack.compose("up", "-d", "--build", "--wait", timeout=900)
    base = f"http://127.0.0.1:{dev_stack.env['WEB_PORT']}"
    wait_for(base + "/livez")
    status, body = http(base + "/")
    assert status == 200
    assert body is not None
    assert body["data"].startswith("PostgreSQL")
    status, health = http(base + "/health")
    assert status == 200
    assert health is not None
    assert health["status"] == "healthy"
    status, product = http(base + "/api/v1/products/1")
    assert status == 200
    assert product is not None
    assert product["id"] == 1
    # Live reload needs granian's reload extra (watchfiles): the dev image installs
    # requirements-reload.lock (build arg RELOAD=1); the production image leaves it out.
    reload = dev_stack.compose(
        "exec", "-T", "web", "python", "-c", "import watchfiles", check=False
    )
    assert reload.returncode == 0, reload.stderr
    assert "--reload" in dev_stack.compose("top", "web").stdout
    token = _signs_tokens_with_its_generated_key(dev_stack)
    _the_worker_takes_the_orders_events(dev_stack, token)


def _post(url: str, body: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        reply: dict[str, Any] = json.loads(response.read())
        return reply


def _signs_tokens_with_its_generated_key(dev_stack: Stack) -> str:
    """DATABASE_URL is set, so the dev-only key may not sign: `migrate` wrote a random one."""
    base = f"http://127.0.0.1:{dev_stack.env['WEB_PORT']}/api/v1"
    user = {"email": "dev@example.in", "password": "dev-password-1", "name": "Dev"}
    _post(base + "/auth/register", user)
    token = _post(base + "/auth/token", {"email": user["email"], "password": user["password"]})
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
        base + "/users/me", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert json.loads(response.read())["email"] == user["email"]
    key = dev_stack.compose("exec", "-T", "web", "wc", "-c", "/app/instance/secret_key")
    assert int(key.stdout.split()[0]) >= 32
    return str(token["access_token"])


def _worker_get(dev_stack: Stack, path: str) -> tuple[int, str]:
    out = dev_stack.compose("exec", "-T", "worker", "python", "-c", WORKER_GET, path).stdout
    status, _, body = out.partition("\n")
    return int(status), body


def _the_worker_takes_the_orders_events(dev_stack: Stack, token: str) -> None:
    """Healthy (`up --wait` waited for it), ready, and it picks up an order's email.

    The `mail` profile is not started here (no Mailpit image in CI), so the email to the
    default SMTP_URL (smtp://mailpit:1025) cannot be sent: the worker fans the event out
    and makes the attempt, which ends in a retry (the delivery is kept).
    """
    (worker,) = dev_stack.containers("worker")
    state = json.loads(docker("inspect", worker).stdout)[0]["State"]
    assert state["Health"]["Status"] == "healthy", state
    assert _worker_get(dev_stack, "/readyz") == (200, "ready\n")
    base = f"http://127.0.0.1:{dev_stack.env['WEB_PORT']}/api/v1"
    status, listing = http(base + "/products?in_stock=true&limit=1")
    assert status == 200
    assert listing is not None
    product = listing["items"][0]["id"]
    order = {"items": [{"product_id": product, "quantity": 1}], "shipping_address": ADDRESS}
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
        base + "/orders", data=json.dumps(order).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 201
    attempted = re.compile(
        r'^flipkart_deliveries_total\{channel="email",outcome="retry"\} [1-9]', re.M
    )
    deadline = time.monotonic() + 30
    while True:
        status, metrics = _worker_get(dev_stack, "/metrics")
        assert status == 200
        if attempted.search(metrics):
            break
        assert time.monotonic() < deadline, metrics[-3000:]
        time.sleep(1)
    assert re.search(r'^flipkart_deliveries_pending\{channel="email"\} 1\.0$', metrics, re.M)
    assert re.search(r"^flipkart_outbox_undispatched 0\.0$", metrics, re.M)
