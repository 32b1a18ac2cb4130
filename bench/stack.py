"""Native processes for the benchmarks: our replicas, the tutorial baseline, nginx in front.

Everything listens on 127.0.0.1 and is stopped by PID when the `processes()` block ends.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from string import Template

from tests import servers

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLI = str(BIN / "flipkart-api")

Procs = list[subprocess.Popen[bytes]]


@contextlib.contextmanager
def processes() -> Iterator[Procs]:
    """Collect started processes; terminate them by PID (then kill) on the way out."""
    started: Procs = []
    try:
        yield started
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(started):
            try:
                proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def wait_ok(url: str, seconds: float = 60) -> float:
    """Until url answers 200; returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url, timeout=2) as response,  # noqa: S310 - 127.0.0.1
        ):
            if response.status == 200:
                return time.monotonic() - start
        time.sleep(0.02)
    raise RuntimeError(f"{url} did not come up")


def production_env(database_url: str, redis_url: str, workdir: Path) -> dict[str, str]:
    """The production settings, on 127.0.0.1; rate limits off so the load is not refused."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(workdir),
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "RATELIMIT_ENABLED": "false",
        # One customer places every order of the load: no open-order caps (ORDERS_MAX_OPEN).
        "ORDERS_MAX_OPEN": "0",
        "ORDERS_MAX_OPEN_UNITS": "0",
        "LOG_LEVEL": "WARNING",
        "HOST": "127.0.0.1",
        "PROXY_HOPS": "1",
    }


def cli(env: dict[str, str], *args: str) -> None:
    """Run a `flipkart-api` command to completion."""
    subprocess.run([CLI, *args], env=env, check=True, capture_output=True)


# Our app under each app server measured; `granian` is what `flipkart-api serve` runs.
SERVERS = {
    "granian": [CLI, "serve"],
    "gunicorn-gthread": [
        str(BIN / "gunicorn"),
        *("-k", "gthread", "-w", "2", "--threads", "4", "--access-logfile", "-"),
        "flipkart_api.wsgi:app",
    ],
    "gunicorn-sync": [
        str(BIN / "gunicorn"),
        *("-k", "sync", "-w", "4", "--access-logfile", "-"),
        "flipkart_api.wsgi:app",
    ],
}


def serve_ours(procs: Procs, env: dict[str, str], server: str = "granian") -> int:
    """One replica of our app; returns its port (not yet waited for)."""
    port = servers.free_port()
    cmd = list(SERVERS[server])
    if server != "granian":
        cmd[1:1] = ["-b", f"127.0.0.1:{port}"]
    procs.append(
        subprocess.Popen(
            cmd,
            env=env | {"PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    return port


def serve_baseline(procs: Procs, env: dict[str, str], database_url: str, redis_url: str) -> int:
    """One replica of the tutorial design: gunicorn, 4 sync workers."""
    port = servers.free_port()
    cmd = [str(BIN / "gunicorn"), "-w", "4", "-k", "sync", "-b", f"127.0.0.1:{port}"]
    procs.append(
        subprocess.Popen(
            [*cmd, "bench.baseline.app:app"],
            env=env
            | {
                "REDIS_URL": redis_url,
                "BASELINE_DSN": database_url.replace("+psycopg", ""),
                "PYTHONPATH": str(ROOT),
            },
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    return port


def start_nginx(procs: Procs, workdir: Path, name: str, ports: list[int], keepalive: bool) -> int:
    """An nginx in front of `ports`, with or without upstream keep-alive; returns its port."""
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
    cmd = ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
    procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_ok(f"http://127.0.0.1:{port}/livez" if name != "baseline" else f"http://127.0.0.1:{port}/")
    return port


def tree_pids(pid: int) -> list[int]:
    """pid and all its descendants."""
    found, frontier = [pid], [pid]
    while frontier:
        children: list[int] = []
        for p in frontier:
            with contextlib.suppress(OSError):
                children += map(int, Path(f"/proc/{p}/task/{p}/children").read_text().split())
        found += children
        frontier = children
    return found


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of one process in MB; PSS splits shared pages among their sharers."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        fields[name] = int(rest.split()[0]) / 1024
    return fields["Rss"], fields["Pss"]
