"""Restore drill on the production stack: back up with the compose `backup` service,
`down -v` (the database volume is gone), `up`, restore with the `restore` service, and the
API serves exactly the data it served before.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..drill import Snapshot, row_counts, snapshot
from .conftest import ROOT, Stack, docker, prod_stack_named

pytestmark = pytest.mark.timeout(900)
ADDRESS = {
    "name": "Asha Verma",
    "line1": "12 MG Road",
    "city": "Bengaluru",
    "state": "Karnataka",
    "pincode": "560001",
    "phone": "9876543210",
}
CUSTOMERS = 3
RUNTIME_PREFIX = "procrastinate_"


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, image: str) -> Iterator[Stack]:
    """The production stack under a project of its own."""
    yield from prod_stack_named(request, image, "fk-backup-test")


def _call(
    stack: Stack, method: str, path: str, body: object = None, token: str | None = None
) -> tuple[int, Any]:
    """One JSON request through nginx: (status, parsed body)."""
    url = f"{stack.base}/api/v1{path}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - https
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=stack.tls()) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _token(stack: Stack, n: int) -> str:
    status, body = _call(
        stack, "POST", "/auth/token", {"email": f"c{n}@example.in", "password": f"password-{n}-ok"}
    )
    assert status == 200, body
    return str(body["access_token"])


def _snapshot(stack: Stack) -> Snapshot:
    """Counts and checksums, through psql in the db container."""

    def query(sql: str) -> list[tuple[str, ...]]:
        out = stack.compose(
            "exec",
            "-T",
            "db",
            "psql",
            "-U",
            "flipkart",
            "-d",
            "flipkart",
            "-v",
            "ON_ERROR_STOP=1",
            "-tA",
            "-F",
            "|",
            "-c",
            sql,
        ).stdout
        return [tuple(line.split("|")) for line in out.splitlines() if line]

    # procrastinate's tables (and their sequences) are the running worker's queue: its
    # heartbeats and the housekeeping jobs it defers every few seconds change them between
    # any two snapshots. The app's tables, the outbox and its deliveries included, must
    # come back exactly.
    return {k: v for k, v in snapshot(query).items() if not _runtime(k)}


def _runtime(name: str) -> bool:
    return name.removeprefix("seq:").startswith(RUNTIME_PREFIX)


def _script(stack: Stack, name: str, backup: Path) -> float:
    """deploy/backup/<name> --compose (what `make backup-docker` runs); its duration."""
    compose = f"docker compose -p {stack.project} -f {ROOT / 'compose.prod.yaml'}"
    env = os.environ | stack.env | {"COMPOSE_CMD": compose, "BACKUP_FILE": str(backup)}
    started = time.monotonic()
    done = subprocess.run(
        [str(ROOT / "deploy" / "backup" / name), "--compose"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return time.monotonic() - started


def test_restore_drill_after_down_v(stack: Stack, tmp_path: Path) -> None:
    started = time.monotonic()
    stack.compose("up", "-d", "--wait", timeout=900)
    print(f"\nbackup drill: stack up in {time.monotonic() - started:.1f}s")
    stack.compose("exec", "-T", "web", "flipkart-api", "seed", "--products", "200")
    for n in range(CUSTOMERS):
        user = {"email": f"c{n}@example.in", "password": f"password-{n}-ok", "name": f"C{n}"}
        assert _call(stack, "POST", "/auth/register", user)[0] == 201
        token = _token(stack, n)
        for k in range(3):
            line = {"product_id": 1 + n * 10 + k, "quantity": 1 + k}
            status, body = _call(
                stack, "POST", "/orders", {"items": [line], "shipping_address": ADDRESS}, token
            )
            assert status == 201, body
    product = stack.get("/api/v1/products/1")[1]
    before = _snapshot(stack)
    assert row_counts(before)["orders"] == CUSTOMERS * 3

    backup = tmp_path / "backups" / "drill.dump"
    backup_s = _script(stack, "backup.sh", backup)
    assert backup.stat().st_size > 0

    stack.compose("down", "-v", "--timeout", "10")
    volumes = docker("volume", "ls", "-q", "--filter", f"name={stack.project}_pgdata").stdout
    assert not volumes.strip(), "down -v left the database volume"
    assert backup.exists(), "down -v took the backup with it"

    stack.compose("up", "-d", "--wait", timeout=900)
    stack.wait_for("/livez")
    assert row_counts(_snapshot(stack))["orders"] == 0  # migrated, empty
    restore_s = _script(stack, "restore.sh", backup)

    after = _snapshot(stack)
    assert after == before
    print(
        f"backup drill: backup {backup_s:.1f}s ({backup.stat().st_size} bytes), restore"
        f" {restore_s:.1f}s, rows {row_counts(after)}"
    )

    # The API serves the restored data, and new ids do not collide with restored ones.
    assert stack.get("/api/v1/products/1")[1] == product
    token = _token(stack, 0)
    status, orders = _call(stack, "GET", "/orders", token=token)
    assert status == 200
    assert len(orders["items"]) == 3
    line = {"product_id": 2, "quantity": 1}
    status, body = _call(
        stack, "POST", "/orders", {"items": [line], "shipping_address": ADDRESS}, token
    )
    assert status == 201, body
