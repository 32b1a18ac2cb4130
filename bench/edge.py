"""The front door for the benchmarks: nginx (HTTP and HTTPS) -> Varnish -> replicas.

Varnish is Debian's varnishd with the production VCL (tests/varnish.py: deploy/varnish/
default.vcl as it is, a round-robin director over the replicas); nginx is
bench/nginx-edge.conf.tmpl with a throwaway self-signed certificate (the openssl CLI).
Also here: Varnish's own counters (varnishstat), the TLS handshake on its own
(`openssl s_time`), the CPU each process spent, and a client that checks reads made after a
write returned for stale prices. Every process is stopped by PID.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from tests import servers
from tests.varnish import Varnish, start_varnish

from bench import stack

# The stale checker's products: the wrk write mix leaves them to it, so every price they
# show was written by the checker, in order.
CHECKED = 20
# Above any seeded price and below MAX_PAISE: the product the checker wrote last is the
# most expensive one, first on `?sort=-price`.
CHECK_PRICE = 10**11


def need(binary: str, package: str) -> str:
    """The path of `binary`, or a clear error saying which Debian package provides it."""
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin")
    if found is None:
        raise RuntimeError(f"{binary} not found: apt-get install {package}")
    return found


def preflight() -> None:
    """Fail in seconds, not minutes into a run, when a tool of the front door is missing."""
    for binary, package in (
        ("varnishd", "varnish varnish-modules"),
        ("varnishstat", "varnish"),
        ("openssl", "openssl"),
        ("nginx", "nginx-light"),
    ):
        need(binary, package)


def make_cert(workdir: Path) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate for 127.0.0.1, valid two days."""
    cert, key = workdir / "edge-cert.pem", workdir / "edge-key.pem"
    subprocess.run(
        [
            need("openssl", "openssl"),
            *("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass(frozen=True)
class FrontDoor:
    """One nginx -> Varnish -> replicas chain."""

    name: str
    http_port: int
    https_port: int
    varnish: Varnish
    nginx_pid: int
    cert: Path

    def url(self, https: bool = True) -> str:
        """The base URL wrk is pointed at."""
        if https:
            return f"https://127.0.0.1:{self.https_port}"
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pids(self) -> dict[str, list[int]]:
        """nginx's and varnishd's processes (with their workers and children)."""
        return {
            "nginx": stack.tree_pids(self.nginx_pid),
            "varnish": stack.tree_pids(self.varnish.process.pid),
        }


def start_front_door(
    procs: stack.Procs,
    stops: contextlib.ExitStack,
    workdir: Path,
    name: str,
    replica_ports: list[int],
    cert: tuple[Path, Path],
    varnish_port: int = 0,
) -> FrontDoor:
    """Varnish over `replica_ports` (on `varnish_port` if given), nginx in front of it."""
    varnish = start_varnish(workdir / f"varnish-{name}", replica_ports, port=varnish_port)
    stops.callback(varnish.stop)  # by PID (SIGTERM, then SIGKILL)
    prefix = workdir / f"nginx-{name}"
    for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    for tmp in (prefix / "tmp").iterdir():
        tmp.chmod(0o777)  # nginx workers run as `nobody` when started by root
    http_port, https_port = servers.free_port(), servers.free_port()
    conf = Template((stack.ROOT / "bench" / "nginx-edge.conf.tmpl").read_text()).substitute(
        prefix=prefix,
        http_port=http_port,
        https_port=https_port,
        varnish_port=varnish.port,
        cert=cert[0],
        key=cert[1],
    )
    (prefix / "nginx.conf").write_text(conf)
    cmd = ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
    nginx = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(nginx)  # not procs[-1] later: two doors start at once (harness.front_door)
    stack.wait_ok(f"http://127.0.0.1:{http_port}/livez")
    return FrontDoor(name, http_port, https_port, varnish, nginx.pid, cert[0])


def prime(door: FrontDoor, paths: list[str], clients: int = 8) -> dict[str, int]:
    """GET each path once through the front door (plain HTTP), so the cache holds it."""
    chunks = [paths[i::clients] for i in range(clients)]

    def get_all(chunk: list[str]) -> dict[str, int]:
        seen: dict[str, int] = {}
        conn = http.client.HTTPConnection("127.0.0.1", door.http_port, timeout=10)
        for path in chunk:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            key = f"{response.status} {response.getheader('X-Edge', '')}"
            seen[key] = seen.get(key, 0) + 1
        conn.close()
        return seen

    total: dict[str, int] = {}
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for seen in pool.map(get_all, chunks):
            for key, count in seen.items():
                total[key] = total.get(key, 0) + count
    return total


def tls_context(cert: Path) -> ssl.SSLContext:
    """A client context that trusts only the bench's own certificate."""
    return ssl.create_default_context(cafile=str(cert))


def negotiated(door: FrontDoor) -> dict[str, str | None]:
    """What a client offering h2 and HTTP/1.1 gets: TLS version, cipher, ALPN protocol."""
    context = tls_context(door.cert)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", door.https_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        cipher = tls.cipher()
        return {
            "tls_version": tls.version(),
            "cipher": cipher[0] if cipher else None,
            "alpn": tls.selected_alpn_protocol(),
        }


def varnishstat(varnish: Varnish, settle: float = 1.0) -> dict[str, int]:
    """Varnish's counters (`varnishstat -1 -j` on this instance's -n directory).

    Worker threads add their counts to the shared ones in batches (thread_stats_rate), so
    a snapshot right after a load misses its last requests: `settle` seconds first.
    """
    time.sleep(settle)
    out = subprocess.run(
        [need("varnishstat", "varnish"), "-n", str(varnish.workdir / "varnish-n"), "-1", "-j"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    doc = json.loads(out)
    counters = doc.get("counters", doc)  # 7.x nests them; 6.x has them at the top level
    return {
        name: int(c["value"])
        for name, c in counters.items()
        if isinstance(c, dict) and "value" in c
    }


def hit_ratio(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    """Lookups between two snapshots: hits, misses, hit ratio, and the other counters."""
    delta = {
        key: after.get(f"MAIN.{key}", 0) - before.get(f"MAIN.{key}", 0)
        for key in (
            "cache_hit",
            "cache_miss",
            "cache_hitpass",
            "cache_hitmiss",
            "s_pass",
            "beresp_uncacheable",
            "n_expired",
        )
    }
    lookups = delta["cache_hit"] + delta["cache_miss"]
    out: dict[str, float] = {k: float(v) for k, v in delta.items()}
    out["hit_ratio"] = round(delta["cache_hit"] / lookups, 4) if lookups else float("nan")
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds spent so far by these processes (from /proc)."""
    tick = 100.0  # USER_HZ on Linux
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def host_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (not idle, not waiting on I/O)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / 100.0  # USER_HZ; guest time is already in user


def purge_cost(door: FrontDoor, count: int = 500) -> dict[str, float]:
    """One purge as the app sends it (flipkart_api.edge.Edge: resolve, a kept http.client
    PURGE, wait for the 200), timed in this otherwise idle process: wall and CPU ms each."""
    from flipkart_api.edge import Edge  # the app's own code path

    purger = Edge([f"http://127.0.0.1:{door.varnish.port}"], timeout=0.5, ttl_seconds=60)
    for n in range(20):  # connect, warm up
        purger.purge([f"p{n + 1}", "products"])
    wall, cpu = time.perf_counter(), time.process_time()
    for n in range(count):
        purger.purge([f"p{n % 1000 + 1}", "products"])
    return {
        "purges": count,
        "wall_ms": round(1000 * (time.perf_counter() - wall) / count, 3),
        "cpu_ms": round(1000 * (time.process_time() - cpu) / count, 3),
        "undelivered": float(len(purger.pending())),
    }


def handshakes(door: FrontDoor, seconds: int) -> dict[str, float]:
    """`openssl s_time -new`: full TLS handshakes, one after another, from one client."""
    out = subprocess.run(
        [
            need("openssl", "openssl"),
            *("s_time", "-connect", f"127.0.0.1:{door.https_port}", "-new"),
            *("-time", str(seconds)),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    match = re.search(r"(\d+) connections in (\d+) real seconds", out)
    user = re.search(r"([\d.]+) connections/user sec", out)
    if match is None:
        raise RuntimeError(f"unexpected openssl s_time output:\n{out}")
    count, real = int(match.group(1)), max(int(match.group(2)), 1)
    return {
        "handshakes_per_s": round(count / real, 1),
        "ms_per_handshake": round(1000 * real / max(count, 1), 3),
        "client_handshakes_per_user_s": float(user.group(1)) if user else float("nan"),
    }


class StaleChecker(threading.Thread):
    """Writes a price, waits for the 200, then reads it back through the front door.

    Products 1..CHECKED get price CHECK_PRICE + n on write n, so the one written last is
    the most expensive product: its detail must show that price and `?sort=-price&limit=1`
    must list it first. Anything else is a stale read (a read made after the write
    returned, showing an older state).
    """

    def __init__(self, door: FrontDoor, token: str, pause: float = 0.02) -> None:
        super().__init__(name="stale-checker", daemon=True)
        self.door, self.token, self.pause = door, token, pause
        self.checks = self.stale = self.failed_writes = self.misses_after_write = 0
        self.examples: list[str] = []
        self._halt = threading.Event()

    def stop(self) -> dict[str, Any]:
        """Stop, wait, and return the counts."""
        self._halt.set()
        self.join(30)
        return {
            "reads_checked": self.checks,
            "stale_reads": self.stale,
            "failed_writes": self.failed_writes,
            "first_read_after_write_was_miss": self.misses_after_write,
            "examples": self.examples[:5],
        }

    def _request(
        self, conn: http.client.HTTPSConnection, method: str, path: str, body: Any = None
    ) -> tuple[int, str, Any]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if method != "GET":
            headers["Authorization"] = f"Bearer {self.token}"
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, response.getheader("X-Edge", ""), json.loads(data or b"null")

    def run(self) -> None:
        """Write, read back, until stopped."""
        context = tls_context(self.door.cert)
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.door.https_port, context=context, timeout=10
        )
        n = 0
        while not self._halt.is_set():
            n += 1
            pid, price = 1 + n % CHECKED, CHECK_PRICE + n
            try:
                status, _, _ = self._request(
                    conn, "PATCH", f"/api/v1/products/{pid}", {"price": price, "mrp": price}
                )
                if status != 200:
                    self.failed_writes += 1
                    continue
                _, edge, detail = self._request(conn, "GET", f"/api/v1/products/{pid}")
                _, _, page = self._request(conn, "GET", "/api/v1/products?sort=-price&limit=1")
            except (OSError, http.client.HTTPException, ValueError):
                conn.close()  # reconnects on the next request
                self.failed_writes += 1
                continue
            self.misses_after_write += edge == "MISS"
            first = (page or {}).get("items", [{}])[0]
            for seen in (detail, first):
                self.checks += 1
                if (seen.get("id"), seen.get("price")) != (pid, price):
                    self.stale += 1
                    self.examples.append(
                        f"wrote {pid}={price}, read {seen.get('id')}={seen.get('price')}"
                    )
            time.sleep(self.pause)
        conn.close()
