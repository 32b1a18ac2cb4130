"""`make push` to a real registry, then pull into a clean engine state and run it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT, docker, http, run_dev_container, wait_for, wait_healthy

KIT = ROOT.parent / "shared" / "docker" / "local-registry.sh"


@pytest.fixture
def registry() -> Iterator[str]:
    """The kit's registry on 127.0.0.1:5000, stopped afterwards."""
    if not KIT.exists():
        pytest.skip(f"{KIT} not found")
    started = subprocess.run(["bash", str(KIT)], capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr
    try:
        yield "127.0.0.1:5000"
    finally:
        subprocess.run(["bash", str(KIT), "--stop"], capture_output=True, timeout=60)


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_push_delete_pull_run(registry: str) -> None:
    pushed = _make("push", f"REGISTRY={registry}/flipkart", "RELEASE=1")
    assert pushed.returncode == 0, pushed.stdout[-2000:] + pushed.stderr[-2000:]
    version = next(
        line.split('"')[1]
        for line in Path(ROOT / "pyproject.toml").read_text().splitlines()
        if line.startswith("version")
    )
    sha = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    ref = f"{registry}/flipkart/flipkart-api"
    status, listing = http(f"http://{registry}/v2/flipkart/flipkart-api/tags/list")
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
