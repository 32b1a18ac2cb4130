"""Load benchmarks: this project against the tutorial's design, side by side in one run.

Starts everything natively on 127.0.0.1: PostgreSQL and Redis (tests/servers.py), 3 replicas
of our app (`flipkart-api serve`, production settings) and 3 of the tutorial baseline
(gunicorn, 4 sync workers), each set behind its own nginx. Each scenario runs wrk for a fixed
duration after a warm-up, `repeats` times; figures are medians with min-max, and ratios
compare runs made in this same process. Writes bench/results/<date>[-quick].json and .md.

    .venv/bin/python -m bench.harness            # full run
    .venv/bin/python -m bench.harness --quick    # < 3 minutes, keeps the harness from rotting

Every process started here is stopped by PID at the end, also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from tests import servers

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
REPLICAS = 3


@dataclass(frozen=True)
class Scenario:
    """One load: a name, which stack, a path (or a Lua script choosing paths)."""

    name: str
    stack: str  # "ours" or "baseline"
    path: str
    lua: str | None = None


@dataclass(frozen=True)
class Profile:
    """How long and how often."""

    duration: int
    warmup: int
    repeats: int
    connections: int
    products: int


PROFILES = {
    "quick": Profile(duration=3, warmup=1, repeats=1, connections=32, products=2_000),
    "full": Profile(duration=10, warmup=3, repeats=3, connections=64, products=10_000),
}

HOT_SET_LUA = """
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/v1/products/" .. ((n % 1000) + 1))
end
"""


def scenarios() -> list[Scenario]:
    """What is measured; every comparison pairs two of these."""
    return [
        Scenario("tutorial GET / (baseline)", "baseline", "/"),
        Scenario("tutorial GET / (ours)", "ours", "/"),
        Scenario("cached product detail, hot set of 1,000 (ours)", "ours", "/", HOT_SET_LUA),
        Scenario(
            "cached list, category filter (ours)",
            "ours",
            "/api/v1/products?category=mobiles&sort=price",
        ),
        Scenario("search q=phone (ours, cached)", "ours", "/api/v1/products?q=phone"),
        Scenario("GET /health (baseline)", "baseline", "/health"),
        Scenario("GET /health (ours)", "ours", "/health"),
    ]


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Collect started processes; terminate them by PID (then kill) on the way out."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(started):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def wait_ok(url: str, seconds: float = 60) -> None:
    """Until url answers 200."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url, timeout=2) as response,  # noqa: S310 - 127.0.0.1
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def start_nginx(
    workdir: Path, name: str, ports: list[int], keepalive: bool
) -> tuple[int, list[str]]:
    """An nginx in front of `ports`; with or without upstream keep-alive."""
    prefix = workdir / f"nginx-{name}"
    for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    # nginx workers run as `nobody` when started by root: let them write their temp files.
    for sub in (prefix / "tmp").iterdir():
        sub.chmod(0o777)
    port = servers.free_port()
    conf = Template((ROOT / "bench" / "nginx.conf.tmpl").read_text()).substitute(
        prefix=prefix,
        port=port,
        servers="\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in ports),
        keepalive="        keepalive 64;" if keepalive else "",
        connection_header='""' if keepalive else "close",
    )
    (prefix / "nginx.conf").write_text(conf)
    return port, ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]


def run_wrk(
    url: str, profile: Profile, lua: str | None, workdir: Path, seconds: int
) -> dict[str, float]:
    """One wrk run: requests/s and latency percentiles in ms."""
    cmd = [
        "wrk",
        "-t2",
        f"-c{profile.connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    if lua:
        script = workdir / "hot.lua"
        script.write_text(lua)
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 30).stdout
    return parse_wrk(out)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(out: str) -> dict[str, float]:
    """Requests/sec, p50/p90/p99 latency (ms) and error counts from wrk's --latency output."""
    figures: dict[str, float] = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "90", "99"):
        match = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\b", out)
        figures[f"p{pct}_ms"] = _ms(*match.groups()) if match else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    figures["non_2xx"] = float(non2xx.group(1)) if non2xx else 0.0
    figures["socket_errors"] = float(sum(map(int, errors.groups()))) if errors else 0.0
    return figures


def summarise(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Median with min and max for every figure."""
    return {
        key: {
            "median": round(statistics.median(r[key] for r in runs), 2),
            "min": round(min(r[key] for r in runs), 2),
            "max": round(max(r[key] for r in runs), 2),
        }
        for key in runs[0]
    }


def main() -> None:
    """Set up both stacks, run every scenario, write the results."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    mode = "quick" if parser.parse_args().quick else "full"
    profile = PROFILES[mode]
    workdir = Path(tempfile.mkdtemp(prefix="flipkart-bench-"))
    pg, redis_server = servers.start_postgres(), servers.start_redis()
    try:
        with processes() as procs:
            url = pg.create_database("bench")
            env = {
                "PATH": os.environ["PATH"],
                "HOME": str(workdir),
                "APP_ENV": "production",
                "DATABASE_URL": url,
                "REDIS_URL": redis_server.url(0),
                "SECRET_KEY": secrets.token_urlsafe(48),
                "RATELIMIT_ENABLED": "false",
                "LOG_LEVEL": "WARNING",
                "HOST": "127.0.0.1",
            }
            cli = str(BIN / "flipkart-api")
            subprocess.run([cli, "migrate"], env=env, check=True, capture_output=True)
            subprocess.run(
                [cli, "seed", "--products", str(profile.products)],
                env=env,
                check=True,
                capture_output=True,
            )
            ours, baseline = [], []
            for _ in range(REPLICAS):
                port = servers.free_port()
                procs.append(
                    subprocess.Popen(
                        [cli, "serve"],
                        env=env | {"PORT": str(port)},
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
                ours.append(port)
            base_env = env | {
                "REDIS_URL": redis_server.url(1),
                "BASELINE_DSN": url.replace("+psycopg", ""),
                "PYTHONPATH": str(ROOT),
            }
            for _ in range(REPLICAS):
                port = servers.free_port()
                cmd = [
                    str(BIN / "gunicorn"),
                    "-w",
                    "4",
                    "-k",
                    "sync",
                    "-b",
                    f"127.0.0.1:{port}",
                    "bench.baseline.app:app",
                ]
                procs.append(
                    subprocess.Popen(
                        cmd,
                        env=base_env,
                        cwd=ROOT,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
                baseline.append(port)
            for port in ours + baseline:
                wait_ok(f"http://127.0.0.1:{port}/health")
            fronts = {}
            for name, ports, keepalive in (("ours", ours, True), ("baseline", baseline, False)):
                front, cmd = start_nginx(workdir, name, ports, keepalive)
                procs.append(
                    subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                )
                wait_ok(f"http://127.0.0.1:{front}/health")
                fronts[name] = front
            results = []
            for scenario in scenarios():
                target = f"http://127.0.0.1:{fronts[scenario.stack]}{scenario.path}"
                run_wrk(
                    target, profile, scenario.lua, workdir, profile.warmup
                )  # warm caches and pools
                runs = [
                    run_wrk(target, profile, scenario.lua, workdir, profile.duration)
                    for _ in range(profile.repeats)
                ]
                results.append(
                    {"scenario": scenario.name, "stack": scenario.stack, **summarise(runs)}
                )
                rps, p99 = results[-1]["rps"]["median"], results[-1]["p99_ms"]["median"]
                print(f"{scenario.name:52} {rps:>9.0f} req/s  p99 {p99:.1f} ms", flush=True)
    finally:
        pg.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    write(results, mode, profile)


def write(results: list[dict[str, Any]], mode: str, profile: Profile) -> None:
    """bench/results/<date>[-quick].json and .md, with the side-by-side ratios."""
    by_name = {r["scenario"]: r for r in results}

    def ratio(a: str, b: str, key: str) -> float:
        return round(by_name[a][key]["median"] / by_name[b][key]["median"], 2)

    ratios = {
        "cached detail rps / baseline GET / rps": ratio(
            "cached product detail, hot set of 1,000 (ours)", "tutorial GET / (baseline)", "rps"
        ),
        "cached detail p99 / baseline GET / p99": ratio(
            "cached product detail, hot set of 1,000 (ours)", "tutorial GET / (baseline)", "p99_ms"
        ),
        "our GET / rps / baseline GET / rps": ratio(
            "tutorial GET / (ours)", "tutorial GET / (baseline)", "rps"
        ),
        "our /health rps / baseline /health rps": ratio(
            "GET /health (ours)", "GET /health (baseline)", "rps"
        ),
    }
    stamp = dt.date.today().isoformat() + ("-quick" if mode == "quick" else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {
        "mode": mode,
        "profile": profile.__dict__,
        "cpus": os.cpu_count(),
        "results": results,
        "ratios": ratios,
    }
    (RESULTS / f"{stamp}.json").write_text(json.dumps(document, indent=2) + "\n")
    lines = [
        "| scenario | req/s median (min-max) | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        errors = r["non_2xx"]["median"] + r["socket_errors"]["median"]
        rps = r["rps"]
        lines.append(
            f"| {r['scenario']} | {rps['median']:.0f} ({rps['min']:.0f}-{rps['max']:.0f}) "
            f"| {r['p50_ms']['median']} | {r['p99_ms']['median']} | {errors:.0f} |"
        )
    lines += ["", "| ratio (same run) | value |", "|---|---|"] + [
        f"| {k} | {v} |" for k, v in ratios.items()
    ]
    (RESULTS / f"{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
