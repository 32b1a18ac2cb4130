"""The image: non-root, health-checked, hadolint-clean, and how big it is."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .conftest import ROOT, docker, run_dev_container, wait_for, wait_healthy

RESULTS = ROOT / "bench" / "results"


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_is_non_root_and_becomes_healthy(image: str) -> None:
    config = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "10001:10001"
    assert config["Healthcheck"]["Test"][:2] == ["CMD", "python"]
    assert "/livez" in config["Healthcheck"]["Test"][-1]
    assert config["Labels"]["org.opencontainers.image.revision"]
    assert not any(e.startswith("SECRET_KEY=") for e in config["Env"])
    started = time.monotonic()
    name, port = run_dev_container(image, "image-test")
    try:
        wait_for(f"http://127.0.0.1:{port}/livez")
        serving_after = time.monotonic() - started
        wait_healthy(name)
        healthy_after = time.monotonic() - started
        assert docker("exec", name, "id", "-u").stdout.strip() == "10001"
        assert docker("top", name, "-o", "pid,user,args").stdout.count("root") == 0
    finally:
        docker("rm", "-f", name, check=False)
    _record_sizes(image, serving_after, healthy_after)


def test_production_image_refuses_insecure_config(image: str) -> None:
    result = docker("run", "--rm", image, check=False)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr


def _record_sizes(image: str, serving_after: float, healthy_after: float) -> None:
    """Image size, size above the base image, and cold start; printed and written to a file."""
    size = int(docker("image", "inspect", image, "--format", "{{.Size}}").stdout)
    base = os.environ.get("PYTHON_IMAGE", "python:3.13-slim")
    base_size = int(docker("image", "inspect", base, "--format", "{{.Size}}").stdout)
    figures = {
        "image": image,
        "base": base,
        "image_mb": round(size / 1e6, 1),
        "above_base_mb": round((size - base_size) / 1e6, 1),
        "cold_start_to_first_200_s": round(serving_after, 1),
        "cold_start_to_healthy_s": round(healthy_after, 1),
    }
    print(f"\nimage figures: {figures}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "image-latest.json").write_text(json.dumps(figures, indent=2) + "\n")
