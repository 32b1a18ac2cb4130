"""What the metrics cost (issue 16): cached reads with them on and off, and a scrape under load.

Two replicas of the app, the same but for METRICS_ENABLED, read the same cached product
detail directly (the cache front's hit: the cheapest request there is, so the counting is
the largest share of it), in turn A B, B A, ... so the machine's drift hits both alike.
While the metrics-on replica is at full load, /metrics is scraped over and over and timed.
Targets: throughput with metrics within 5% of without; a scrape under 20 ms at full load.

    .venv/bin/python -m bench.metrics_cost [--quick]   # alone; the full bench runs it too
"""

from __future__ import annotations

import concurrent.futures
import http.client
import statistics
import time
from pathlib import Path
from typing import Any

from . import load, stack

PATH = "/api/v1/products/1"
SCRAPE_GAP_S = 0.2  # Prometheus scrapes every 15 s; this is 75 times as often


def scrape_ms(port: int) -> tuple[float, int]:
    """One GET /metrics on a fresh connection, as Prometheus does: (milliseconds, bytes)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"/metrics answered {response.status}")
    return (time.perf_counter() - started) * 1000, len(body)


def _scrapes_during(port: int, seconds: float) -> list[tuple[float, int]]:
    """Scrapes every SCRAPE_GAP_S for `seconds` (run beside a load)."""
    out: list[tuple[float, int]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out.append(scrape_ms(port))
        time.sleep(SCRAPE_GAP_S)
    return out


def run(
    procs: stack.Procs, env: dict[str, str], duration: int, repeats: int, connections: int,
    workdir: Path,
) -> dict[str, Any]:  # fmt: skip
    """Start the two replicas, measure, return the figures (the replicas stop with procs)."""
    ports = {
        "on": stack.serve_ours(procs, env | {"METRICS_ENABLED": "true"}),
        "off": stack.serve_ours(procs, env | {"METRICS_ENABLED": "false"}),
    }
    for port in ports.values():
        stack.wait_ok(f"http://127.0.0.1:{port}/health")
        stack.wait_ok(f"http://127.0.0.1:{port}{PATH}")  # the detail is now cached
    for port in ports.values():  # warm-up
        load.run(f"http://127.0.0.1:{port}{PATH}", 1, connections, workdir)
    runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    scrapes: list[tuple[float, int]] = []
    for i in range(max(2, repeats + 1)):
        for name in ("on", "off") if i % 2 == 0 else ("off", "on"):
            url = f"http://127.0.0.1:{ports[name]}{PATH}"
            if name == "off":
                runs[name].append(load.run(url, duration, connections, workdir))
                continue
            # Scrapes beside the load on the same replica: what Prometheus sees at full load.
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                timed = pool.submit(_scrapes_during, ports["on"], duration - 0.5)
                runs[name].append(load.run(url, duration, connections, workdir))
                scrapes += timed.result()
    on, off = load.summarise(runs["on"]), load.summarise(runs["off"])
    times = sorted(ms for ms, _ in scrapes)
    return {
        "path": PATH,
        "on": on,
        "off": off,
        "ratio": round(on["rps"]["median"] / off["rps"]["median"], 3),
        "scrape": {
            "count": len(times),
            "median_ms": round(statistics.median(times), 2) if times else None,
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2)
            if times
            else None,
            "max_ms": round(times[-1], 2) if times else None,
            "bytes": scrapes[-1][1] if scrapes else None,
        },
    }


def targets(figures: dict[str, Any]) -> list[tuple[str, float, str, float, str]]:
    """The issue's two targets: (name, value, op, bound, why it can be missed)."""
    scrape = figures["scrape"]
    return [
        (
            "cached detail req/s, metrics on / off (one replica, directly)",
            figures["ratio"],
            ">=",
            0.95,
            "the counting on the cheapest request there is (metric_buffer.py)",
        ),
        (
            "one replica's /metrics scrape at full load (ms, median)",
            scrape["median_ms"],
            "<",
            20.0,
            "a scrape queues with the load's requests for the same worker threads",
        ),
        (
            "one replica's /metrics scrape at full load (ms, p99)",
            scrape["p99_ms"],
            "<",
            20.0,
            "a scrape queues with the load's requests for the same worker threads (the "
            "replica is saturated: its requests' own p99 is in the row above)",
        ),
    ]


def markdown(figures: dict[str, Any]) -> list[str]:
    """The report's section."""
    on, off, scrape = figures["on"], figures["off"], figures["scrape"]

    def row(name: str, r: dict[str, Any]) -> str:
        return (
            f"| {name} | {r['rps']['median']:,.0f} ({r['rps']['min']:,.0f}-"
            f"{r['rps']['max']:,.0f}) | {r['p50_ms']['median']:.2f} | {r['p99_ms']['median']:.2f} |"
        )

    return [
        "",
        "## Metrics on and off (one replica, 2 workers, its cached detail, interleaved)",
        "",
        f"`GET {figures['path']}` answered by the cache front from Redis, on two replicas that "
        "differ only in METRICS_ENABLED. /metrics scraped every "
        f"{SCRAPE_GAP_S:g} s beside the load on the metrics-on one: {scrape['count']} scrapes, "
        f"median {scrape['median_ms']} ms, p99 {scrape['p99_ms']} ms, max {scrape['max_ms']} ms, "
        f"{scrape['bytes']:,} bytes.",
        "",
        "| replica | req/s | p50 ms | p99 ms |",
        "|---|---|---|---|",
        row("metrics on", on),
        row("metrics off", off),
        "",
        f"Ratio on/off: {figures['ratio']}.",
    ]


def main() -> None:
    """Run it alone against a fresh PostgreSQL and Redis, print the figures."""
    import argparse
    import json
    import tempfile

    from tests import servers

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    workdir = Path(tempfile.mkdtemp(prefix="flipkart-metrics-bench-"))
    pg, redis_server = servers.start_postgres(), servers.start_redis()
    try:
        url = pg.create_database("bench_metrics")
        env = stack.production_env(url, redis_server.url(0), workdir)
        stack.cli(env, "migrate")
        stack.cli(env, "seed", "--products", "100")
        with stack.processes() as procs:
            figures = run(procs, env, 2 if quick else 8, 1 if quick else 3, 64, workdir)
        print(json.dumps(figures, indent=2))
    finally:
        pg.stop()
        redis_server.stop()


if __name__ == "__main__":
    main()
