"""`make push` to a real registry, then pull into a clean engine state and run it.

The registry is TEST_REGISTRY_ADDR (host:port of one already running: the GitHub workflow's
`registry:2` service container), else the offline kit's (`../shared/docker/local-registry.sh`
on LOCAL_REGISTRY_ADDR, default 127.0.0.1:5000; started and stopped here). With neither it
skips, and fails under CI=true.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT, docker, http, run_dev_container, wait_for, wait_healthy

KIT = ROOT.parent / "shared" / "docker" / "local-registry.sh"


@pytest.fixture
def registry() -> Iterator[str]:
    """host:port of a plain-HTTP registry (127.0.0.0/8 is insecure-by-default to Docker)."""
    given = os.environ.get("TEST_REGISTRY_ADDR", "")
    if given:
        assert http(f"http://{given}/v2/")[0] == 200, f"no registry at TEST_REGISTRY_ADDR={given}"
        yield given
        return
    if not KIT.exists():
        message = f"no registry: set TEST_REGISTRY_ADDR=host:port or provide {KIT}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    # The kit prints its address: 127.0.0.1:5000 unless LOCAL_REGISTRY_ADDR says otherwise.
    started = subprocess.run(["bash", str(KIT)], capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr
    try:
        yield started.stdout.split()[-1]
    finally:
        subprocess.run(["bash", str(KIT), "--stop"], capture_output=True, timeout=60)


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_push_delete_pull_run(registry: str) -> None:
    # A namespace of its own: a registry that outlives the test holds no tags of earlier runs.
    namespace = f"flipkart-{secrets.token_hex(4)}"
    pushed = _make("push", f"REGISTRY={registry}/{namespace}", "RELEASE=1")
    assert pushed.returncode == 0, pushed.stdout[-2000:] + pushed.stderr[-2000:]
    version = next(
        line.split('"')[1]
        for line in Path(ROOT / "pyproject.toml").read_text().splitlines()
        if line.startswith("version")
    )
    sha = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    ref = f"{registry}/{namespace}/flipkart-api"
    status, listing = http(f"http://{registry}/v2/{namespace}/flipkart-api/tags/list")
    assert status == 200
    assert listing is not None
    tags = listing["tags"]
    assert set(tags) == {version, sha, "latest"}

    # Forget the image entirely (every tag of its id), so the pull has to fetch it.
    image_id = docker("image", "inspect", f"{ref}:{version}", "--format", "{{.Id}}").stdout.strip()
    docker("rmi", "-f", image_id)
    assert docker("image", "inspect", image_id, check=False).returncode != 0
    docker("pull", f"{ref}:{sha}")

    name, port = run_dev_container(f"{ref}:{sha}", "registry-test")
    try:
        wait_for(f"http://127.0.0.1:{port}/livez")
        wait_healthy(name)
    finally:
        docker("rm", "-f", name, check=False)
