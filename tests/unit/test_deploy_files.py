"""Generated deployment files are up to date with their one source."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_kubernetes_vcl_config_map_is_the_shipped_vcl() -> None:
    """deploy/k8s/base/varnish-vcl.yaml carries deploy/varnish/default.vcl byte for byte."""
    spec = importlib.util.spec_from_file_location("render_vcl", ROOT / "deploy/k8s/render_vcl.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "deploy/k8s/base/varnish-vcl.yaml").read_text()
    assert committed == module.render(), "run make render-vcl"
    vcl = (ROOT / "deploy/varnish/default.vcl").read_text()
    assert "\n".join(f"    {line}" if line else "" for line in vcl.splitlines()) in committed
