"""The Grafana dashboard (deploy/monitoring/grafana), checked without running Grafana.

- structure: JSON, unique ids, the provisioned data source on every panel and query,
  a PromQL expression on every target, a grid without overlaps, provisioning files that
  point where the compose service mounts the dashboards;
- names: every metric and label a query uses is in the metric contract or was checked
  against the exporters (tests/dashboards.py, KNOWN_METRICS), so a typo fails here;
- schema: Grafana's own dashboard model (grafana-foundation-sdk) decodes the JSON with
  nothing dropped and every field of its type;
- PromQL: promtool (Prometheus's parser) parses every query, variables substituted;
- end to end (slow): a real replica and worker on PostgreSQL + Redis under a little
  traffic, scraped by a real Prometheus (Debian's), answer every app panel's query with data. The
  exporters' panels run in the container stack test, where the exporters are.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from . import dashboards, lifeline, servers
from .conftest import system_binary
from .test_orders import ADDRESS

SCHEMA_VERSION = 41  # Grafana 11.6's (grafana-foundation-sdk's 11.6 models say the same)
PANEL_TYPES = {"row", "timeseries", "stat"}
SECTIONS = ["Overview", "Traffic", "App cache", "HTTP cache (Varnish)", "Database", "Redis"]
SECTIONS += ["Orders", "nginx", "Worker"]
# Fixed windows are the SLO's (burn rate over 5m/1h/6h, budget over 30 d); every other
# range is Grafana's $__rate_interval.
SLO_WINDOWS = {"5m", "1h", "6h", "30d"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return dashboards.load()


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(dashboards.iter_panels(dashboard["panels"]))


def _grafana_sdk_or_skip() -> None:
    try:
        import grafana_foundation_sdk  # noqa: F401
    except ImportError:
        reason = "grafana-foundation-sdk is not installed (requirements-dev.lock, make install)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)


# --- structure ---------------------------------------------------------------------------


def test_dashboard_is_current_and_sectioned(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] == SCHEMA_VERSION
    assert dashboard["uid"] == "flipkart-api"
    assert "id" not in dashboard  # a provisioned dashboard gets its id from Grafana
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == SECTIONS
    assert {p["type"] for p in _panels(dashboard)} <= PANEL_TYPES


def test_panel_ids_are_unique(dashboard: dict[str, Any]) -> None:
    ids = [p.get("id") for p in _panels(dashboard)]
    assert all(isinstance(i, int) for i in ids), ids
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_every_panel_and_query_uses_the_provisioned_datasource(dashboard: dict[str, Any]) -> None:
    uid = _provisioned_datasource()["uid"]
    assert uid == dashboards.DATASOURCE_UID
    wrong = []
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        if panel.get("datasource") != {"type": "prometheus", "uid": uid}:
            wrong.append((panel["title"], panel.get("datasource")))
        for target in panel.get("targets", []):
            if target.get("datasource") != {"type": "prometheus", "uid": uid}:
                wrong.append((panel["title"], target.get("refId"), target.get("datasource")))
    for variable in dashboard["templating"]["list"]:
        if variable.get("datasource") != {"type": "prometheus", "uid": uid}:
            wrong.append((variable["name"], variable.get("datasource")))
    assert not wrong


def test_every_target_has_a_promql_expression(dashboard: dict[str, Any]) -> None:
    missing = []
    for panel in _panels(dashboard):
        targets = panel.get("targets", [])
        if panel["type"] != "row" and not targets:
            missing.append((panel["title"], "no targets"))
        ref_ids = [t.get("refId") for t in targets]
        if len(ref_ids) != len(set(ref_ids)):
            missing.append((panel["title"], "refIds repeat"))
        missing += [(panel["title"], t.get("refId")) for t in targets if not t.get("expr")]
    assert not missing


def test_grid_positions_are_present_and_disjoint(dashboard: dict[str, Any]) -> None:
    problems = _grid_problems(dashboard["panels"])
    for row in dashboard["panels"]:  # a collapsed row keeps its panels' grid to itself
        if row["type"] == "row" and row.get("collapsed"):
            problems += _grid_problems(row.get("panels", []))
        elif row["type"] == "row":
            assert row.get("panels", []) == [], f"open row {row['title']!r} holds panels"
    assert not problems


def _grid_problems(panels: list[dict[str, Any]]) -> list[str]:
    taken: dict[tuple[int, int], str] = {}
    problems = []
    for panel in panels:
        pos = panel.get("gridPos")
        if not pos or not all(isinstance(pos.get(k), int) for k in "xywh"):
            problems.append(f"{panel['title']}: gridPos {pos}")
            continue
        if pos["x"] < 0 or pos["y"] < 0 or pos["w"] < 1 or pos["h"] < 1 or pos["x"] + pos["w"] > 24:
            problems.append(f"{panel['title']}: outside the 24-column grid {pos}")
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                if (x, y) in taken:
                    problems.append(f"{panel['title']} overlaps {taken[(x, y)]} at {(x, y)}")
                    break
                taken[(x, y)] = panel["title"]
            else:
                continue
            break
    return problems


def _provisioned_datasource() -> dict[str, Any]:
    config = yaml.safe_load(dashboards.DATASOURCES.read_text())
    assert config["apiVersion"] == 1
    (datasource,) = config["datasources"]
    return dict(datasource)


def test_provisioning_files_parse_and_point_at_the_dashboards() -> None:
    datasource = _provisioned_datasource()
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"  # the compose service
    assert datasource["access"] == "proxy"
    assert datasource["editable"] is False
    providers = yaml.safe_load(dashboards.PROVIDERS.read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["allowUiUpdates"] is False
    assert provider["options"]["path"] == dashboards.CONTAINER_DASHBOARDS
    # What the provider reads in the container is GRAFANA/dashboards here: only dashboards.
    assert sorted(p.name for p in dashboards.DASHBOARD.parent.iterdir()) == [
        dashboards.DASHBOARD.name
    ]


def test_compose_mounts_what_the_provisioning_expects() -> None:
    compose = yaml.safe_load((dashboards.ROOT / "compose.prod.yaml").read_text())
    grafana = compose["services"].get("grafana")
    if grafana is None:
        pytest.skip("compose.prod.yaml has no grafana service yet (the integrator adds it)")
    mounts = {}
    for volume in grafana.get("volumes", []):
        source, target, *_ = volume.split(":")
        mounts[target] = (dashboards.ROOT / source).resolve()
    assert mounts[dashboards.CONTAINER_DASHBOARDS] == dashboards.DASHBOARD.parent
    assert mounts[dashboards.CONTAINER_PROVISIONING] == dashboards.GRAFANA / "provisioning"
    assert "monitoring" in grafana.get("profiles", [])


def test_every_section_of_the_issue_has_its_panels(dashboard: dict[str, Any]) -> None:
    used = set()
    for _, expr in dashboards.panel_queries(dashboard):
        used |= dashboards.names(dashboards.substitute(expr)).metrics
    app = {m for m in dashboards.KNOWN_METRICS if m.startswith("flipkart_")}
    app -= {"flipkart_http_request_duration_seconds_sum"}  # the quantiles need only buckets
    app -= {"flipkart_http_request_duration_seconds_count"}
    app -= {"flipkart_delivery_duration_seconds_sum", "flipkart_delivery_duration_seconds_count"}
    assert app <= used, f"app metrics without a panel: {sorted(app - used)}"
    for exporter in ("pg_up", "redis_up", "nginx_up", "varnish_main_cache_hit", "up"):
        assert exporter in used


def test_ranges_are_the_rate_interval_or_an_slo_window(dashboard: dict[str, Any]) -> None:
    odd = []
    for title, expr in dashboards.panel_queries(dashboard):
        for window in re.findall(r"\[([^\]]+)\]", expr):
            if window != "$__rate_interval" and window not in SLO_WINDOWS:
                odd.append((title, window))
    assert not odd


# --- names -------------------------------------------------------------------------------


def test_queries_use_only_known_metrics_and_labels(dashboard: dict[str, Any]) -> None:
    queries = dashboards.panel_queries(dashboard) + dashboards.variable_queries(dashboard)
    problems = [(title, p) for title, expr in queries for p in dashboards.metric_problems(expr)]
    assert not problems


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("sum(rate(flipkart_http_request_total[$__rate_interval]))", "unknown metric"),
        ('sum by (route) (flipkart_rate_limited_total{rute="/x"})', "has no label rute"),
        ("sum by (reasons) (flipkart_orders_rejected_total)", "has label reasons"),
        ("flipkart_orders_placed_total / on() group_left rdis_up", "unknown metric rdis_up"),
        (
            "histogram_quantile(0.9, rate(flipkart_http_request_duration_seconds[5m]))",
            "unknown metric",
        ),
    ],
)
def test_a_typo_is_caught(expr: str, problem: str) -> None:
    assert any(problem in p for p in dashboards.metric_problems(expr))


def test_names_leave_functions_keywords_strings_and_durations_out() -> None:
    expr = (
        'sum by (route) (rate(flipkart_http_requests_total{route=~"a|b(c)"}[5m] offset 1h))'
        " / 2e3 or on() vector(0) > bool 1"
    )
    found = dashboards.names(expr)
    assert found.metrics == {"flipkart_http_requests_total"}
    assert found.grouping == {"route"}
    assert found.matchers == (("flipkart_http_requests_total", "route"),)


# --- helpers -----------------------------------------------------------------------------


def test_substitute_replaces_grafana_variables() -> None:
    expr = 'rate(x{route=~"$route", instance=~"${instance:regex}"}[$__rate_interval]) [[route]]'
    assert dashboards.substitute(expr) == 'rate(x{route=~".*", instance=~".*"}[1m]) .*'
    one = dashboards.substitute('{route=~"$route"}', {"route": ["/api/v1/products"]})
    assert one == '{route=~"/api/v1/products"}'
    both = dashboards.substitute('{route=~"$route"}', {"route": ["/a.b", "/c"]})
    assert both == '{route=~"(/a\\\\.b|/c)"}'  # escaped as regex, then for the PromQL string
    assert dashboards.substitute("[$__interval] $__range_s", interval="30s") == "[30s] 3600"
    with pytest.raises(ValueError, match="unknown Grafana variable"):
        dashboards.substitute('{route=~"$rute"}')
    with pytest.raises(ValueError, match="not a variable"):
        dashboards.substitute("x", {"path": ".*"})


def test_panel_queries_walk_collapsed_rows() -> None:
    nested = {
        "panels": [
            {"type": "stat", "title": "top", "targets": [{"expr": "up"}]},
            {
                "type": "row",
                "title": "r",
                "collapsed": True,
                "panels": [
                    {"type": "timeseries", "title": "inner", "targets": [{"expr": "a"}, {}]},
                ],
            },
        ]
    }
    assert dashboards.panel_queries(nested) == [("top", "up"), ("inner", "a")]


def test_variables_are_label_values_of_app_metrics(dashboard: dict[str, Any]) -> None:
    assert dashboards.variable_queries(dashboard) == [
        ("instance", 'group by (instance) (flipkart_http_requests_total{job="flipkart-api"})'),
        (
            "route",
            'group by (route) (flipkart_http_requests_total{job="flipkart-api", '
            'instance=~"$instance"})',
        ),
    ]
    for variable in dashboard["templating"]["list"]:
        assert variable["allValue"] == dashboards.ALL
        assert variable["includeAll"]
        assert variable["multi"]


# --- schema ------------------------------------------------------------------------------


def test_json_matches_grafanas_dashboard_model(dashboard: dict[str, Any]) -> None:
    _grafana_sdk_or_skip()
    assert dashboards.schema_problems(dashboard) == []


def _set(path: str, value: object) -> Any:
    def change(dashboard: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = dashboard
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[last] = value

    return change


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_set("panels.6.options.legend.displayMode", "lists"), "is not one of"),
        (_set("panels.6.gridPos.w", "12"), "is not an integer"),
        (_set("panels.6.gridpos", {}), "not in Grafana's model"),
        (_set("panels.1.options.textMode", "bogus"), "is not one of"),
        (_set("panels.6.fieldConfig.defaults.custom.fillOpacty", 10), "not in Grafana's model"),
        (_set("panels.6.targets.0.exprs", "up"), "not in Grafana's model"),
        (_set("panels.6.type", "graph"), "has no model"),
        (_set("schemaVersion", "41"), "is not an integer"),
        (_set("templating.list.0.refresh", 7), "is not one of"),
    ],
)
def test_schema_check_catches_mistakes(
    dashboard: dict[str, Any], change: Any, problem: str
) -> None:
    _grafana_sdk_or_skip()
    broken = copy.deepcopy(dashboard)
    change(broken)
    assert any(problem in p for p in dashboards.schema_problems(broken))


# --- PromQL ------------------------------------------------------------------------------


def test_every_query_parses_with_promtool(dashboard: dict[str, Any]) -> None:
    promtool = system_binary("promtool", "prometheus")
    queries = dashboards.panel_queries(dashboard) + dashboards.variable_queries(dashboard)
    assert dashboards.promtool_check(queries, promtool) == []


def test_promtool_check_names_the_broken_panel() -> None:
    promtool = system_binary("promtool", "prometheus")
    queries = [("fine", "sum(up)"), ("broken", "sum(rate(up[$__rate_interval])")]
    errors = dashboards.promtool_check(queries, promtool)
    assert errors
    assert all(e.startswith("broken: ") for e in errors), errors


# --- end to end --------------------------------------------------------------------------

PROMETHEUS_CONFIG = """global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: flipkart-api
    metrics_path: /metrics
    static_configs: [{targets: ["127.0.0.1:%(app)d"]}]
  - job_name: worker
    metrics_path: /metrics
    static_configs: [{targets: ["127.0.0.1:%(worker)d"]}]
  - job_name: prometheus
    static_configs: [{targets: ["127.0.0.1:%(prometheus)d"]}]
"""


def _app_only(expr: str) -> bool:
    """True for a query of the app's metrics (and `up`) only, none of an exporter's."""
    used = dashboards.names(dashboards.substitute(expr)).metrics
    return all(m.startswith("flipkart_") or m == "up" for m in used)


@pytest.fixture
def prometheus_on_a_replica(
    pg_server: servers.PostgresServer, tmp_path: Path
) -> Iterator[tuple[str, int]]:
    """A real replica and worker (PostgreSQL + Redis), a real Prometheus scraping both."""
    from .faults.stack import CLI, Replica, production_env
    from .worker_process import WorkerProcess

    binary = system_binary("prometheus", "prometheus")
    redis = servers.start_redis()
    replica = None
    worker = None
    prometheus = None
    try:
        url = pg_server.create_database(f"flipkart_dashboard_{os.getpid()}")
        env = production_env(tmp_path, url, redis.url(0), redis.url(1))
        for args in (["migrate"], ["seed", "--products", "20", "-q"]):
            done = subprocess.run([CLI, *args], env=env, capture_output=True, timeout=120)
            assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
        # Two workers, so one scrape must cover both (prometheus-client's multi-process
        # mode, in a directory of the test's own).
        serve_env = env | {"WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "m")}
        (tmp_path / "m").mkdir()  # as an emptyDir or a tmpfs would be
        replica = Replica(servers.free_port(), serve_env, tmp_path / "replica.log")
        replica.start()
        # The order's email goes to a port nothing listens on: attempted, refused, retried,
        # so the delivery counters and the histogram have series.
        smtp = f"smtp://127.0.0.1:{servers.free_port()}"
        worker = WorkerProcess(servers.free_port(), env | {"SMTP_URL": smtp}, tmp_path / "w.log")
        worker.start()
        port = servers.free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            PROMETHEUS_CONFIG % {"app": replica.port, "worker": worker.port, "prometheus": port}
        )
        with (tmp_path / "prometheus.log").open("ab") as log:
            prometheus = lifeline.spawn(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                sig=signal.SIGTERM,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        yield f"http://127.0.0.1:{port}", replica.port
    finally:
        if prometheus is not None and prometheus.poll() is None:
            prometheus.terminate()  # our PID only
            try:
                prometheus.wait(timeout=10)
            except subprocess.TimeoutExpired:
                prometheus.kill()
                prometheus.wait(timeout=10)
        if worker is not None:
            worker.stop()
        if replica is not None:
            replica.stop()
        redis.stop()
        shutil.rmtree(tmp_path / "tsdb", ignore_errors=True)


def _reads(port: int, products: list[dict[str, Any]]) -> None:
    """Product, category and search reads (misses, then cache hits) and a 404."""
    from .faults.stack import call

    for product in products:
        call(port, "GET", f"/api/v1/products/{product['id']}")
    call(port, "GET", "/api/v1/categories")
    call(port, "GET", "/api/v1/products?q=phone")
    call(port, "GET", "/no-such-page")


def _orders(port: int) -> list[dict[str, Any]]:
    """A customer, an order and its idempotent replay; the products."""
    from .faults.stack import call

    products: list[dict[str, Any]] = call(port, "GET", "/api/v1/products?limit=5").json()["items"]
    login = {"email": "dashboard@example.in", "password": "correct-horse-1"}
    assert call(port, "POST", "/api/v1/auth/register", login | {"name": "D"}).status == 201
    token = call(port, "POST", "/api/v1/auth/token", login).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    product = next(p for p in products if p["stock"] > 0)
    order = {"items": [{"product_id": product["id"], "quantity": 1}], "shipping_address": ADDRESS}
    once = bearer | {"Idempotency-Key": "dashboard-test-1"}
    first = call(port, "POST", "/api/v1/orders", order, once)
    assert first.status == 201, first.body
    assert call(port, "POST", "/api/v1/orders", order, once).headers["idempotent-replayed"]
    return products


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(90)
def test_every_app_panel_returns_data_from_a_real_replica(
    dashboard: dict[str, Any], prometheus_on_a_replica: tuple[str, int]
) -> None:
    prometheus, app_port = prometheus_on_a_replica
    queries = [q for q in dashboards.panel_queries(dashboard) if _app_only(q[1])]
    queries += dashboards.variable_queries(dashboard)
    assert len(queries) >= 25
    deadline = time.monotonic() + 45
    products = _orders(app_port)
    missing: list[dashboards.QueryCheck] = []
    while time.monotonic() < deadline:
        _reads(app_port, products)  # rates over the last window stay above zero
        # Several scrapes in: every rate() has two samples in its window.
        checks = dashboards.check_against(prometheus, queries, rate_interval="30s")
        missing = [c for c in checks if not c.has_data]
        if not missing:
            break
        time.sleep(1)
    assert not missing, json.dumps([c.__dict__ for c in missing], indent=1)
    # One route picked, as a person would in the $route drop-down: the per-route panels
    # still answer.
    route = {"route": ["/api/v1/products/<int:product_id>"]}
    per_route = [q for q in queries if "$route" in q[1]]
    checks = dashboards.check_against(prometheus, per_route, route, rate_interval="30s")
    assert all(c.has_data for c in checks), [c.title for c in checks if not c.has_data]
    # And the check can fail: a misspelt metric has no data, a broken query says why.
    typo, broken = dashboards.check_against(
        prometheus, [("typo", "flipkart_http_request_total"), ("broken", "sum(up")]
    )
    assert not typo.has_data
    assert not typo.error
    assert not broken.has_data
    assert "parse error" in broken.error
