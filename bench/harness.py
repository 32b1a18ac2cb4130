"""Load benchmarks: this project against the tutorial's design, side by side in one run.

Starts everything natively on 127.0.0.1: PostgreSQL and Redis (tests/servers.py), 3 replicas
of our app (`flipkart-api serve`, production settings) and 3 of the tutorial baseline
(bench/baseline: gunicorn, 4 sync workers), each set behind nginx (bench/nginx.conf.tmpl).
Each scenario runs wrk for a fixed time after a warm-up, `repeats` times, through nginx and
directly against one replica. Then: the app-server comparison, resources, and latency
against catalog size (bench/scaling.py). Figures are medians with min-max; every ratio
compares runs of this same process. Writes bench/results/<date>[-quick].json, .md and PNGs.

    .venv/bin/python -m bench.harness            # full run, about 20 minutes
    .venv/bin/python -m bench.harness --quick    # under 3 minutes, keeps the harness from rotting

Every process started here is stopped by PID at the end, also on failure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from tests import servers

from bench import load, report, scaling, stack

REPLICAS = 3
HOT_SET = 1_000


@dataclass(frozen=True)
class Profile:
    """How long, how often, how big."""

    duration: int
    warmup: int
    repeats: int
    connections: int
    products: int
    catalog_sizes: tuple[int, ...]
    cold_starts: int


PROFILES = {
    "quick": Profile(1, 1, 1, 32, 2_000, (2_000, 4_000), 1),
    "full": Profile(8, 2, 3, 64, 10_000, (10_000, 100_000, 1_000_000), 3),
}


@dataclass(frozen=True)
class Scenario:
    """One load: which stack, a path or a Lua script (with its arguments)."""

    name: str
    stack: str  # "ours" or "baseline"
    path: str = "/"
    script: str | None = None
    args: tuple[str, ...] = ()


def scenarios(token: str) -> list[Scenario]:
    """What is measured through nginx and against one replica; ratios pair some of them."""
    return [
        Scenario("tutorial GET / (baseline)", "baseline"),
        Scenario("tutorial GET / (ours)", "ours"),
        Scenario("cached product detail, hot set of 1,000", "ours", script="hot_detail"),
        Scenario("cached filtered list", "ours", script="filtered_list", args=("0", "same")),
        Scenario("uncached filtered list", "ours", script="filtered_list", args=("0", "vary")),
        Scenario("cached search", "ours", script="search", args=("0", "same")),
        Scenario("uncached search", "ours", script="search", args=("0", "vary")),
        Scenario("POST /api/v1/orders", "ours", script="orders", args=(str(HOT_SET), token)),
        Scenario("GET /health (baseline)", "baseline", "/health"),
        Scenario("GET /health (ours)", "ours", "/health"),
    ]


def measure(url: str, profile: Profile, workdir: Path, sc: Scenario) -> dict[str, Any]:
    """Warm up, then `repeats` timed runs; medians with min-max."""
    load.run(url, profile.warmup, profile.connections, workdir, sc.script, sc.args)
    runs = [
        load.run(url, profile.duration, profile.connections, workdir, sc.script, sc.args)
        for _ in range(profile.repeats)
    ]
    return load.summarise(runs)


def _post(url: str, body: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        result: dict[str, Any] = json.loads(response.read())
        return result


def customer_token(base: str) -> str:
    """Register a customer and return a bearer token."""
    credentials = {"email": "bench@example.in", "password": "bench-password-1"}
    _post(f"{base}/api/v1/auth/register", credentials | {"name": "Bench"})
    token: str = _post(f"{base}/api/v1/auth/token", credentials)["access_token"]
    return token


def stock_snapshot(engine: sa.Engine) -> dict[int, int]:
    """product id -> stock + units sold in live orders (must stay constant)."""
    sql = sa.text(
        "SELECT p.id, p.stock + COALESCE(SUM(l.quantity) FILTER "
        "(WHERE o.status <> 'cancelled'), 0) FROM products p "
        "LEFT JOIN order_items l ON l.product_id = p.id LEFT JOIN orders o ON o.id = l.order_id "
        "WHERE p.id <= :n GROUP BY p.id"
    )
    with engine.connect() as conn:
        return {row[0]: row[1] for row in conn.execute(sql, {"n": HOT_SET})}


def resources(procs: stack.Procs) -> dict[str, Any]:
    """RSS per worker and per replica (our replicas: the processes `serve` started)."""
    replicas = [p for p in procs if p.args == [stack.CLI, "serve"]][:REPLICAS]
    per_replica, rss, pss = [], [], []
    for proc in replicas:
        tree = [stack.memory_mb(p) for p in stack.tree_pids(proc.pid)]
        per_replica.append(sum(r for r, _ in tree))
        rss += [r for r, _ in tree[1:]]  # the workers; tree[0] is the server's main process
        pss += [p for _, p in tree[1:]]
    return {
        "rss_per_worker_mb": round(statistics.median(rss), 1),
        "rss_per_worker_max_mb": round(max(rss), 1),
        "pss_per_worker_mb": round(statistics.median(pss), 1),
        "rss_per_replica_mb": round(statistics.median(per_replica), 1),
        "workers_per_replica": len(rss) // max(len(replicas), 1),
    }


def cold_starts(env: dict[str, str], count: int) -> list[float]:
    """Seconds from `flipkart-api serve` to /health answering 200, for fresh replicas."""
    times = []
    for _ in range(count):
        with stack.processes() as procs:
            port = stack.serve_ours(procs, env)
            times.append(round(stack.wait_ok(f"http://127.0.0.1:{port}/health"), 2))
    return times


def server_comparison(
    procs: stack.Procs, env: dict[str, str], profile: Profile, workdir: Path, granian: int
) -> list[dict[str, Any]]:
    """Our app on one replica under each app server: the same requests, directly."""
    ports = {"granian": granian}
    for name in ("gunicorn-gthread", "gunicorn-sync"):
        ports[name] = stack.serve_ours(procs, env, name)
        stack.wait_ok(f"http://127.0.0.1:{ports[name]}/health")
    rows = []
    for sc in (
        Scenario("cached product detail", "ours", script="hot_detail"),
        Scenario("cached search", "ours", script="search", args=("0", "same")),
        Scenario("GET /health", "ours", "/health"),
    ):
        for server, port in ports.items():
            figures = measure(f"http://127.0.0.1:{port}", profile, workdir, sc)
            rows.append({"scenario": sc.name, "server": server, **figures})
            report.progress(f"{server}: {sc.name}", figures)
    return rows


def main() -> None:
    """Set up both stacks, run everything, write the results."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    mode = "quick" if parser.parse_args().quick else "full"
    profile = PROFILES[mode]
    workdir = Path(tempfile.mkdtemp(prefix="flipkart-bench-"))
    # Durable like production: an order's commit waits for its WAL flush.
    pg, redis_server = servers.start_postgres(durable=True), servers.start_redis()
    document: dict[str, Any] = {"mode": mode, "profile": asdict(profile)}
    document["image"] = report.image_figures()
    try:
        url = pg.create_database("bench")
        env = stack.production_env(url, redis_server.url(0), workdir)
        stack.cli(env, "migrate")
        stack.cli(env, "seed", "--products", str(profile.products))
        engine = sa.create_engine(url)
        with engine.begin() as conn:  # enough stock that orders/s measures orders, not 409s
            conn.execute(
                sa.text("UPDATE products SET stock = 1000000 WHERE id <= :n"), {"n": HOT_SET}
            )
        with stack.processes() as procs:
            ports = {
                "ours": [stack.serve_ours(procs, env) for _ in range(REPLICAS)],
                "baseline": [
                    stack.serve_baseline(procs, env, url, redis_server.url(1))
                    for _ in range(REPLICAS)
                ],
            }
            for port in ports["ours"] + ports["baseline"]:
                stack.wait_ok(f"http://127.0.0.1:{port}/health")
            document["resources_idle"] = resources(procs)
            # "ours" is nginx as shipped (deploy/nginx/default.conf: no upstream keep-alive);
            # the keep-alive variant is measured for the cached detail read as well.
            fronts = {
                "ours": stack.start_nginx(procs, workdir, "ours", ports["ours"], keepalive=False),
                "ours-keepalive": stack.start_nginx(
                    procs, workdir, "ours-keepalive", ports["ours"], keepalive=True
                ),
                "baseline": stack.start_nginx(
                    procs, workdir, "baseline", ports["baseline"], keepalive=False
                ),
            }
            token = customer_token(f"http://127.0.0.1:{fronts['ours']}")
            before = stock_snapshot(engine)
            results = []
            for sc in scenarios(token):
                targets = {"nginx": fronts[sc.stack], "direct": ports[sc.stack][0]}
                if sc.name.startswith("cached product detail"):
                    targets["nginx with upstream keep-alive"] = fronts["ours-keepalive"]
                for via, port in targets.items():
                    figures = measure(f"http://127.0.0.1:{port}{sc.path}", profile, workdir, sc)
                    results.append({"scenario": sc.name, "stack": sc.stack, "via": via, **figures})
                    report.progress(f"{sc.name} [{via}]", figures)
            after = stock_snapshot(engine)
            document["orders_conservation"] = {
                "products": len(before),
                "stock_plus_sold_unchanged": before == after,
                "negative_stock": _negative_stock(engine),
            }
            document["resources_after_load"] = resources(procs)
            document["results"] = results
            document["servers"] = server_comparison(procs, env, profile, workdir, ports["ours"][0])
        document["cold_start_s"] = cold_starts(env, profile.cold_starts)
        engine.dispose()
        document["scaling"] = scaling.run(workdir, profile.catalog_sizes, profile)
    finally:
        pg.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report.write(document)


def _negative_stock(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.text("SELECT count(*) FROM products WHERE stock < 0")) or 0)


if __name__ == "__main__":
    main()
