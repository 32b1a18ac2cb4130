"""`docker compose up` (compose.yaml) gives a working dev stack on 127.0.0.1."""

from __future__ import annotations

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
