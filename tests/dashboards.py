"""The Grafana dashboard's queries, taken out of its JSON and run where Grafana is not.

Grafana does not run on the development machines, so what a dashboard can get wrong is
checked piece by piece: `panel_queries` lists every panel's PromQL (rows and nested panels
walked), `substitute` replaces Grafana's variables ($__rate_interval, $route, ...) so a
plain Prometheus can run the query, `check_against` runs each one there and says whether it
returned data, `promtool_check` parses them all with promtool, and `metric_problems` names
any metric or label a query uses that the metric contract (/work/contract/metrics.md at
issue 16) and the exporters do not have. `schema_problems` checks the JSON against
Grafana's own dashboard model (grafana-foundation-sdk, the 11.6 build).

tests/test_dashboard.py uses all of it; the container stack test runs `check_against` on
the real stack's Prometheus.
"""

from __future__ import annotations

import enum
import json
import re
import subprocess
import tempfile
import types
import typing
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "deploy" / "monitoring" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "flipkart-api.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "flipkart.yml"
# Where the compose service mounts GRAFANA/dashboards and GRAFANA/provisioning.
CONTAINER_DASHBOARDS = "/etc/grafana/dashboards"
CONTAINER_PROVISIONING = "/etc/grafana/provisioning"
DATASOURCE_UID = "flipkart-prometheus"
PROMTOOL = "/usr/bin/promtool"

# Every metric a query may use, with its labels (job and instance come from the scrape).
# The app's: the contract. The exporters': the contract's names, each checked against the
# /metrics of Debian 12's exporter scraping a real server (postgres_exporter 0.11.1,
# redis_exporter 1.45.0, nginx-prometheus-exporter 0.11.0, prometheus_varnish_exporter
# 1.6.1, node_exporter 1.5.0), plus redis_memory_max_bytes, which that check found too.
HISTOGRAMS = {
    "flipkart_http_request_duration_seconds": frozenset({"route", "method"}),
    # the worker's (job worker; src/flipkart_api/events/worker_metrics.py)
    "flipkart_delivery_duration_seconds": frozenset({"channel"}),
}
KNOWN_METRICS: dict[str, frozenset[str]] = {
    # app (job flipkart-api)
    "flipkart_http_requests_total": frozenset({"route", "method", "status"}),
    "flipkart_http_requests_in_flight": frozenset(),
    "flipkart_cache_requests_total": frozenset({"kind", "result"}),
    "flipkart_cache_breaker_open": frozenset(),
    "flipkart_cache_invalidations_pending": frozenset(),
    "flipkart_db_pool_size": frozenset(),
    "flipkart_db_pool_connections_in_use": frozenset(),
    "flipkart_db_pool_overflow": frozenset(),
    "flipkart_db_pool_checkout_timeouts_total": frozenset(),
    "flipkart_orders_placed_total": frozenset(),
    "flipkart_orders_rejected_total": frozenset({"reason"}),
    "flipkart_orders_replayed_total": frozenset(),
    "flipkart_rate_limited_total": frozenset({"route"}),
    "flipkart_edge_purges_total": frozenset({"result"}),
    "flipkart_build_info": frozenset({"version", "revision"}),
    # the event worker (job worker): attempts where they are made, the queue at scrape
    "flipkart_deliveries_total": frozenset({"channel", "outcome"}),
    "flipkart_deliveries_pending": frozenset({"channel"}),
    "flipkart_events_oldest_undelivered_age_seconds": frozenset({"channel"}),
    "flipkart_outbox_undispatched": frozenset(),
    # Prometheus itself, for every target
    "up": frozenset(),
    # postgres_exporter (job postgres)
    "pg_up": frozenset(),
    "pg_settings_max_connections": frozenset({"server"}),
    "pg_stat_activity_count": frozenset({"datname", "state", "server"}),
    **{
        f"pg_stat_database_{name}": frozenset({"datid", "datname", "server"})
        for name in (
            "numbackends",
            "xact_commit",
            "xact_rollback",
            "deadlocks",
            "blks_hit",
            "blks_read",
            "tup_fetched",
            "tup_inserted",
            "tup_updated",
            "tup_deleted",
            "conflicts",
            "temp_bytes",
        )
    },
    # redis_exporter (job redis)
    "redis_up": frozenset(),
    "redis_connected_clients": frozenset(),
    "redis_memory_used_bytes": frozenset(),
    "redis_memory_max_bytes": frozenset(),
    "redis_keyspace_hits_total": frozenset(),
    "redis_keyspace_misses_total": frozenset(),
    # nginx-prometheus-exporter (job nginx)
    "nginx_up": frozenset(),
    "nginx_http_requests_total": frozenset(),
    "nginx_connections_active": frozenset(),
    # prometheus_varnish_exporter (job varnish)
    "varnish_up": frozenset(),
    "varnish_main_cache_hit": frozenset(),
    "varnish_main_cache_miss": frozenset(),
    "varnish_main_cache_hitpass": frozenset(),
    "varnish_main_n_purges": frozenset(),
    "varnish_main_client_req": frozenset(),
    # node_exporter (job node)
    "node_filesystem_avail_bytes": frozenset({"device", "fstype", "mountpoint"}),
    "node_filesystem_size_bytes": frozenset({"device", "fstype", "mountpoint"}),
}
for _name, _labels in HISTOGRAMS.items():
    KNOWN_METRICS[f"{_name}_bucket"] = _labels | {"le"}
    KNOWN_METRICS[f"{_name}_sum"] = _labels
    KNOWN_METRICS[f"{_name}_count"] = _labels
TARGET_LABELS = frozenset({"job", "instance"})

# What `substitute` puts for a dashboard variable left at "All" (the variables' allValue).
ALL = ".*"
DASHBOARD_VARIABLES = ("instance", "route")


# --- walking the JSON --------------------------------------------------------------------


def load(path: Path = DASHBOARD) -> dict[str, Any]:
    """The dashboard JSON as a dict."""
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def iter_panels(panels: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, depth first: rows, then the panels a (collapsed) row holds, and so on."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels") or [])


def panel_queries(path: Path | dict[str, Any] = DASHBOARD) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel, in the order Grafana shows them.

    `path` may also be an already loaded dashboard. A target without an `expr` (not a
    Prometheus query) is left out; tests/test_dashboard.py requires there is none.
    """
    dashboard = path if isinstance(path, dict) else load(path)
    found = []
    for panel in iter_panels(dashboard.get("panels") or []):
        for target in panel.get("targets") or []:
            if target.get("expr"):
                found.append((str(panel.get("title", "")), str(target["expr"])))
    return found


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<selector>.+),)?\s*(?P<label>\w+)\s*\)\s*$")


def variable_queries(path: Path | dict[str, Any] = DASHBOARD) -> list[tuple[str, str]]:
    """(variable name, PromQL) for each query variable: `label_values(sel, l)` as a query.

    Grafana answers label_values from the series API; `group by (l) (sel)` finds the same
    values, so the variable can be checked like a panel.
    """
    dashboard = path if isinstance(path, dict) else load(path)
    found = []
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query)
        match = _LABEL_VALUES.match(text)
        if match is None:
            raise ValueError(f"variable {variable.get('name')}: not a label_values(): {text}")
        selector = match["selector"] or "{__name__=~'.+'}"
        found.append((str(variable["name"]), f"group by ({match['label']}) ({selector})"))
    return found


# --- Grafana's variables -----------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$\{(?P<braced>\w+)(?::(?P<format>\w+))?\}|\[\[(?P<bracketed>\w+)\]\]|\$(?P<plain>\w+)"
)


def _regex_value(values: str | Sequence[str]) -> str:
    """What Grafana puts for a multi-value variable in a Prometheus regex matcher.

    One value: the value with regex metacharacters escaped; several: `(a|b)`. The result
    goes inside a PromQL double-quoted string, so backslashes are doubled.
    """
    if isinstance(values, str):
        return values  # given as it is (".*", or a regex the caller wrote)
    escaped = [re.escape(v).replace("\\", "\\\\") for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(
    expr: str,
    variables: Mapping[str, str | Sequence[str]] | None = None,
    *,
    rate_interval: str = "1m",
    interval: str = "15s",
    range_: str = "1h",
) -> str:
    """`expr` with Grafana's variables replaced, ready for a plain Prometheus.

    Built-ins: $__rate_interval, $__interval (and _ms), $__range (and _s, _ms). The
    dashboard's own variables ($route, $instance, in any of Grafana's spellings: $x, ${x},
    ${x:regex}, [[x]]) are ".*" (their "All") unless `variables` gives them: a string is put
    as it is, a list of values is escaped and joined as Grafana does (`["/a"]` -> `/a`,
    `["/a", "/b"]` -> `(/a|/b)`). Any other variable is an error, so a typo in a dashboard
    variable fails instead of reaching Prometheus.
    """
    seconds = _duration_seconds(range_)
    builtins = {
        "__rate_interval": rate_interval,
        "__interval": interval,
        "__interval_ms": str(int(_duration_seconds(interval) * 1000)),
        "__range": range_,
        "__range_s": str(int(seconds)),
        "__range_ms": str(int(seconds * 1000)),
    }
    given = dict(variables or {})
    unknown = set(given) - set(DASHBOARD_VARIABLES)
    if unknown:
        raise ValueError(f"not a variable of the dashboard: {sorted(unknown)}")

    def replace(match: re.Match[str]) -> str:
        name = match["braced"] or match["bracketed"] or match["plain"]
        if name in builtins:
            return builtins[name]
        if name in DASHBOARD_VARIABLES:
            return _regex_value(given.get(name, ALL))
        raise ValueError(f"unknown Grafana variable ${name} in: {expr}")

    return _VARIABLE.sub(replace, expr)


def _duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration such as 90s, 5m, 1h30m."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(n) * units[u] for n, u in parts)


# --- metric and label names --------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SELECTOR = re.compile(r"(?<![\w:])([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENT = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(?!\s*\(|[\w:])")
KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "atan2", "start", "end"}
)


@dataclass(frozen=True)
class Names:
    """The names a query uses."""

    metrics: frozenset[str]
    matchers: tuple[tuple[str, str], ...]  # (metric, label) in {...} selectors
    grouping: frozenset[str]  # labels in by/without/on/ignoring/group_* clauses


def names(expr: str) -> Names:
    """Metric names, selector labels and grouping labels in a (substituted) PromQL query."""
    text = _STRING.sub('""', expr)
    matchers = []
    metrics = set()
    for match in _SELECTOR.finditer(text):
        metric = match[1] or ""
        if metric and metric not in KEYWORDS:
            metrics.add(metric)
        for label in _MATCHER.findall(match[2]):
            matchers.append((metric, label))
    text = _SELECTOR.sub(lambda m: f" {m[1] or ''} ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery durations
    grouping = set()
    for match in _GROUPING.finditer(text):
        grouping |= {label.strip() for label in match[2].split(",") if label.strip()}
    text = _GROUPING.sub(" ", text)
    metrics |= {name for name in _IDENT.findall(text) if name not in KEYWORDS}
    return Names(frozenset(metrics), tuple(matchers), frozenset(grouping))


def metric_problems(expr: str) -> list[str]:
    """What in `expr` the known metrics do not have: a metric name, a label, a grouping label."""
    used = names(substitute(expr))
    problems = [f"unknown metric {m}" for m in sorted(used.metrics - set(KNOWN_METRICS))]
    for metric, label in used.matchers:
        if label == "__name__":
            continue
        allowed = KNOWN_METRICS.get(metric, frozenset()) | TARGET_LABELS
        if metric in KNOWN_METRICS and label not in allowed:
            problems.append(f"{metric} has no label {label}")
    labels = TARGET_LABELS.union(*(KNOWN_METRICS.get(m, frozenset()) for m in used.metrics))
    problems += [f"no metric of the query has label {g}" for g in sorted(used.grouping - labels)]
    return problems


# --- promtool ----------------------------------------------------------------------------


def promtool_check(queries: Sequence[tuple[str, str]], promtool: str = PROMTOOL) -> list[str]:
    """Parse every (substituted) query with promtool; the errors, each with its panel title.

    Each query becomes a recording rule of a throwaway rules file and `promtool check rules`
    parses the file: the PromQL parser of Prometheus itself.
    """
    records = {f"dashboard:query_{i}": title for i, (title, _) in enumerate(queries)}
    rules = [
        {"record": record, "expr": substitute(expr)}
        for record, (_, expr) in zip(records, queries, strict=True)
    ]
    with tempfile.TemporaryDirectory(prefix="dashboard-rules-") as directory:
        path = Path(directory) / "dashboard.rules.json"  # YAML is a superset of JSON
        path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
        done = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
        )
    if done.returncode == 0:
        return []
    output = (done.stdout + done.stderr).strip()
    errors = [line for line in output.splitlines() if re.search(r"rule \d+|parse error", line)]
    named = []
    for line in errors or [output]:
        for record, title in records.items():
            if f'"{record}"' in line or f"record: {record}" in line:
                line = f"{title}: {line}"
                break
        else:
            index = re.search(r"rule (\d+)", line)
            if index and 0 < int(index[1]) <= len(queries):
                line = f"{queries[int(index[1]) - 1][0]}: {line}"
        named.append(line)
    return named


# --- running the queries -----------------------------------------------------------------


@dataclass(frozen=True)
class QueryCheck:
    """One query run against a Prometheus: did it return data."""

    title: str
    expr: str  # as in the dashboard
    query: str  # as sent
    has_data: bool
    series: int = 0
    error: str = ""


def query(prometheus_url: str, promql: str, timeout: float = 10.0) -> dict[str, Any]:
    """POST /api/v1/query; the decoded answer (errors come back as status "error")."""
    if not prometheus_url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {prometheus_url}")
    body = urllib.parse.urlencode({"query": promql}).encode()
    endpoint = f"{prometheus_url.rstrip('/')}/api/v1/query"
    request = urllib.request.Request(endpoint, data=body)  # noqa: S310 (http(s) only, above)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as exc:  # 400/422 carry Prometheus's error as JSON
        try:
            answer = json.load(exc)
        except ValueError:
            answer = {"status": "error", "error": f"HTTP {exc.code}"}
    return answer


def check_against(
    prometheus_url: str,
    queries: Sequence[tuple[str, str]],
    variables: Mapping[str, str | Sequence[str]] | None = None,
    *,
    rate_interval: str = "1m",
    timeout: float = 10.0,
) -> list[QueryCheck]:
    """Run every (title, expr) against Prometheus at `prometheus_url`; one QueryCheck each.

    Queries are substituted first (`variables`, `rate_interval` as in `substitute`). Data
    means a non-empty vector or matrix (or a scalar). A failing request is a QueryCheck
    with `error` set and no data, never an exception, so a caller can report them all.
    """
    checks = []
    for title, expr in queries:
        promql = substitute(expr, variables, rate_interval=rate_interval)
        try:
            answer = query(prometheus_url, promql, timeout=timeout)
        except (OSError, ValueError) as exc:
            checks.append(QueryCheck(title, expr, promql, False, error=repr(exc)))
            continue
        if answer.get("status") != "success":
            error = f"{answer.get('errorType', '')}: {answer.get('error', answer)}"
            checks.append(QueryCheck(title, expr, promql, False, error=error))
            continue
        data = answer["data"]
        if data["resultType"] in ("vector", "matrix"):
            count = len(data["result"])
            checks.append(QueryCheck(title, expr, promql, count > 0, series=count))
        else:
            checks.append(QueryCheck(title, expr, promql, True, series=1))
    return checks


# --- Grafana's dashboard model -----------------------------------------------------------


def schema_problems(dashboard: dict[str, Any]) -> list[str]:
    """Where `dashboard` departs from Grafana's dashboard model; [] when it does not.

    grafana-foundation-sdk holds the models Grafana's schema (its CUE "kinds" and each
    panel plugin's options) generates, with `from_json` decoders. They validate nothing
    themselves, so two checks are made on the decoded dashboard:

    - round trip: decode, encode, compare. A key the model does not have (a misspelt
      field, an option the panel type lacks) does not come back, nor does a panel type
      without a model.
    - types: every decoded field against its annotation in the model (str, int, float,
      bool, lists, maps, unions, literals, enums by value, nested models).
    """
    from grafana_foundation_sdk.cog import runtime, variants
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()  # panel options and Prometheus queries decode to their models
    model = Dashboard.from_json(dashboard)

    def encode(value: object) -> object:
        if hasattr(value, "to_json"):
            return value.to_json()
        if isinstance(value, enum.Enum):
            return value.value
        raise TypeError(f"cannot encode {value!r}")

    back = json.loads(json.dumps(model.to_json(), default=encode))
    problems = [
        f"panel {panel.get('id')}: type {panel.get('type')!r} has no model in the SDK"
        for panel in iter_panels(dashboard.get("panels") or [])
        if panel.get("type") != "row" and runtime.panelcfg_config(str(panel.get("type"))) is None
    ]
    problems += [f"{where}: {what}" for where, what in _differences(dashboard, back, "")]
    problems += _type_problems(model, "dashboard", variants)
    return problems


def _differences(ours: object, back: object, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(ours, dict):
        if not isinstance(back, dict):
            yield where, f"an object that the model decodes as {type(back).__name__}"
            return
        for key, value in ours.items():
            if key not in back:
                yield f"{where}.{key}", "not in Grafana's model (dropped on decoding)"
            else:
                yield from _differences(value, back[key], f"{where}.{key}")
    elif isinstance(ours, list):
        if not isinstance(back, list) or len(ours) != len(back):
            yield where, "a list the model does not keep as it is"
            return
        for i, (mine, theirs) in enumerate(zip(ours, back, strict=True)):
            yield from _differences(mine, theirs, f"{where}[{i}]")
    elif ours != back and not (isinstance(ours, int | float) and ours == back):
        yield where, f"{ours!r} comes back as {back!r}"


def _type_problems(obj: object, where: str, variants: types.ModuleType) -> list[str]:
    """Each attribute of a decoded model object against the model's annotation of it."""
    cls = type(obj)
    if not cls.__module__.startswith("grafana_foundation_sdk."):
        return []
    try:
        hints = typing.get_type_hints(cls)
    except NameError as exc:  # an annotation the SDK itself cannot resolve: skip it
        return [f"{where}: the model's annotations do not resolve ({exc})"]
    problems = []
    for name, hint in hints.items():
        if hasattr(obj, name):
            problems += _check_value(getattr(obj, name), hint, f"{where}.{name}", variants)
    return problems


def _check_value(value: object, hint: Any, where: str, variants: types.ModuleType) -> list[str]:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is typing.Any or hint is object:  # panel options, field config: the plugin's model
        return _type_problems(value, where, variants)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return []
        tries = [_check_value(value, arg, where, variants) for arg in args if arg is not type(None)]
        return [] if any(not t for t in tries) else min(tries, key=len)
    if origin is typing.Literal:
        return [] if value in args else [f"{where}: {value!r} is not one of {args}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, not a list"]
        return [
            p
            for i, v in enumerate(value)
            for p in _check_value(v, args[0], f"{where}[{i}]", variants)
        ]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not an object"]
        return [
            p for k, v in value.items() for p in _check_value(v, args[1], f"{where}.{k}", variants)
        ]
    if isinstance(hint, type):
        if issubclass(hint, enum.Enum):
            valid = {member.value for member in hint}
            raw = value.value if isinstance(value, enum.Enum) else value
            return (
                [] if raw in valid else [f"{where}: {raw!r} is not one of {sorted(valid, key=str)}"]
            )
        if hint is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            return [] if ok else [f"{where}: {value!r} is not a number"]
        if hint is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
            return [] if ok else [f"{where}: {value!r} is not an integer"]
        if hint in (str, bool):
            return (
                [] if isinstance(value, hint) else [f"{where}: {value!r} is not a {hint.__name__}"]
            )
        if isinstance(value, hint):
            return _type_problems(value, where, variants)
        if hint is variants.Dataquery and isinstance(value, variants.Dataquery):
            return _type_problems(value, where, variants)
        return [f"{where}: a {type(value).__name__}, not a {hint.__name__}"]
    return []
