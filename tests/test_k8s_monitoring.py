"""Kubernetes scrape configuration (deploy/k8s/monitoring/) agrees with the Deployments.

No cluster here, and Debian's promtool is built without Kubernetes service discovery: so
what can drift is checked from the files themselves.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"


# The Prometheus job the rules select -> its Deployment's file and container.
SCRAPED = {"flipkart-api": ("deployment.yaml", "api"), "worker": ("worker.yaml", "worker")}


def _deployment(file: str = "deployment.yaml") -> dict[str, Any]:
    docs = list(yaml.safe_load_all((K8S / "base" / file).read_text()))
    (deployment,) = [d for d in docs if d and d["kind"] == "Deployment"]
    return deployment


def _pod_template(
    job: str = "flipkart-api",
) -> tuple[dict[str, str], dict[str, str], list[dict[str, Any]]]:
    """The job's pods' labels, annotations and the app container's ports."""
    file, name = SCRAPED[job]
    template = _deployment(file)["spec"]["template"]
    (container,) = [c for c in template["spec"]["containers"] if c["name"] == name]
    meta = template["metadata"]
    return meta["labels"], meta.get("annotations", {}), container["ports"]


@pytest.mark.parametrize("job", SCRAPED)
def test_the_pods_are_annotated_for_the_port_and_path_of_metrics(job: str) -> None:
    _, annotations, ports = _pod_template(job)
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) in {p["containerPort"] for p in ports}
    assert annotations["prometheus.io/path"] == "/metrics"


def test_the_podmonitors_select_their_pods_and_port() -> None:
    docs = list(yaml.safe_load_all((K8S / "monitoring" / "podmonitor.yaml").read_text()))
    monitors = {}
    for monitor in docs:
        assert (monitor["apiVersion"], monitor["kind"]) == (
            "monitoring.coreos.com/v1",
            "PodMonitor",
        )
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        (job,) = [r["replacement"] for r in endpoint["relabelings"] if r["targetLabel"] == "job"]
        monitors[job] = monitor
    assert set(monitors) == set(SCRAPED)
    for job, monitor in monitors.items():
        labels, _, ports = _pod_template(job)
        assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        assert endpoint["port"] in {p["name"] for p in ports}
        assert endpoint["path"] == "/metrics"
    # Each selects only its own pods: the API's monitor never scrapes a worker's port 5000.
    api, worker = (monitors[j]["spec"]["selector"]["matchLabels"] for j in SCRAPED)
    assert not api.items() <= _pod_template("worker")[0].items()
    assert not worker.items() <= _pod_template("flipkart-api")[0].items()


def test_the_plain_prometheus_config_keeps_each_job_at_its_annotated_port() -> None:
    config = yaml.safe_load((K8S / "monitoring" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(SCRAPED)  # what deploy/monitoring/rules select
    for name, job in jobs.items():
        labels, annotations, ports = _pod_template(name)
        rules = {tuple(r.get("source_labels", [])): r for r in job["relabel_configs"]}
        keep = rules[("__meta_kubernetes_pod_label_app_kubernetes_io_component",)]
        assert re.fullmatch(keep["regex"], labels["app.kubernetes.io/component"])
        for other in set(SCRAPED) - {name}:  # never the other job's pods
            other_labels = _pod_template(other)[0]
            assert not re.fullmatch(keep["regex"], other_labels["app.kubernetes.io/component"])
        address = rules[("__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port")]
        joined = f"10.1.2.3:8080;{annotations['prometheus.io/port']}"  # Prometheus joins with ;
        match = re.fullmatch(address["regex"], joined)
        assert match is not None
        port = ports[0]["containerPort"]
        assert match.expand(address["replacement"].replace("$", "\\")) == f"10.1.2.3:{port}"
    for pattern in config["rule_files"]:
        assert list((K8S / "monitoring").glob(pattern)), pattern
