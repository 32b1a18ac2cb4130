"""The bench report's resources table says how much the image adds to its base."""

from __future__ import annotations

import json
from typing import Any

from bench import report

IMAGE = {
    "image": "flipkart-api:test",
    "base": "python:3.13-slim",
    "image_mb": 170.1,
    "above_base_mb": 53.9,
    "revision": "abc1234",
    "measured_on": "2026-12-01",
}


def _last_full_run() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((report.RESULTS / "2026-11-28.json").read_text())
    return doc


def _resources(doc: dict[str, Any]) -> str:
    doc["targets"] = report.targets(doc)
    return report._markdown(doc, []).split("## Resources")[1].split("\n## ")[0]


def test_resources_table_has_the_image_above_its_base() -> None:
    doc = _last_full_run() | {"image": IMAGE}
    resources = _resources(doc)
    assert "| image above its base `python:3.13-slim` (MB; 170.1 in all) | 53.9 " in resources
    assert "revision abc1234, 2026-12-01" in resources
    target = next(t for t in doc["targets"] if t["target"].startswith("image above its base"))
    assert target["value"] == 53.9
    assert target["bound"] == "<= 60"
    assert target["met"] is True


def test_resources_table_says_when_the_image_was_not_measured() -> None:
    doc = _last_full_run() | {"image": None}
    assert "image above its base (MB) | not measured" in _resources(doc)
    assert not any(t["target"].startswith("image") for t in doc["targets"])


def test_the_container_tests_figures_are_what_the_report_reads() -> None:
    """bench/results/image-latest.json, as tests/container/test_image.py writes it."""
    figures = report.image_figures()
    assert figures is not None
    assert {"base", "image_mb", "above_base_mb", "revision", "measured_on"} <= set(figures)
    assert figures["above_base_mb"] <= report.MAX_IMAGE_ABOVE_BASE_MB
