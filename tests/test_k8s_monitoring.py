"""Kubernetes scrape configuration (deploy/k8s/monitoring/) agrees with the Deployment.

No cluster here, and Debian's promtool is built without Kubernetes service discovery: so
what can drift is checked from the files themselves.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"


def _deployment() -> dict[str, Any]:
    docs = list(yaml.safe_load_all((K8S / "base" / "deployment.yaml").read_text()))
    (deployment,) = [d for d in docs if d and d["kind"] == "Deployment"]
    return deployment


def _pod_template() -> tuple[dict[str, str], dict[str, str], list[dict[str, Any]]]:
    """The API pods' labels, annotations and the app container's ports."""
    template = _deployment()["spec"]["template"]
    (container,) = [c for c in template["spec"]["containers"] if c["name"] == "api"]
    meta = template["metadata"]
    return meta["labels"], meta.get("annotations", {}), container["ports"]


def test_the_pods_are_annotated_for_the_port_and_path_of_metrics() -> None:
    _, annotations, ports = _pod_template()
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) in {p["containerPort"] for p in ports}
    assert annotations["prometheus.io/path"] == "/metrics"


def test_the_podmonitor_selects_the_api_pods_and_their_port() -> None:
    labels, _, ports = _pod_template()
    monitor = yaml.safe_load((K8S / "monitoring" / "podmonitor.yaml").read_text())
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in {p["name"] for p in ports}
    assert endpoint["path"] == "/metrics"
    assert {"targetLabel": "job", "replacement": "flipkart-api"} in endpoint["relabelings"]


def test_the_plain_prometheus_config_keeps_the_api_pods_at_their_annotated_port() -> None:
    labels, annotations, _ = _pod_template()
    config = yaml.safe_load((K8S / "monitoring" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "flipkart-api"  # what deploy/monitoring/rules select
    rules = {tuple(r.get("source_labels", [])): r for r in job["relabel_configs"]}
    keep = rules[("__meta_kubernetes_pod_label_app_kubernetes_io_component",)]
    assert re.fullmatch(keep["regex"], labels["app.kubernetes.io/component"])
    address = rules[("__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port")]
    joined = f"10.1.2.3:8080;{annotations['prometheus.io/port']}"  # Prometheus joins with ;
    match = re.fullmatch(address["regex"], joined)
    assert match is not None
    assert match.expand(address["replacement"].replace("$", "\\")) == "10.1.2.3:5000"
    for pattern in config["rule_files"]:
        assert list((K8S / "monitoring").glob(pattern)), pattern
