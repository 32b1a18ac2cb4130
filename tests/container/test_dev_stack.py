"""`docker compose up` (compose.yaml) gives a working dev stack on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from .conftest import Stack, http, wait_for


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
    _signs_tokens_with_its_generated_key(dev_stack)


def _post(url: str, body: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        reply: dict[str, Any] = json.loads(response.read())
        return reply


def _signs_tokens_with_its_generated_key(dev_stack: Stack) -> None:
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
