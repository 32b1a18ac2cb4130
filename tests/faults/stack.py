"""A production-shaped stack on 127.0.0.1: PostgreSQL, two Redis, 3 replicas and nginx.

The replicas are `flipkart-api serve` with APP_ENV=production (as bench/harness.py starts
them); nginx runs the production config, deploy/nginx/default.conf, with only what ties it
to Docker swapped for local equivalents (see `render_nginx_conf`). As in production, the cache
Redis evicts (allkeys-lru under a maxmemory) and the rate-limit counters live in a Redis of
their own that never does. Every process is ours and is stopped by its PID (a replica's
process group is the one we created for it).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from .. import lifeline, servers

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "flipkart-api")
REPLICAS = 3
CACHE_MAXMEMORY = "4mb"  # production: 200mb; small here so a drill can fill it past that
# The drills' load places ~50 orders/s, all from 127.0.0.1 (one client to the limiter):
# generous for orders; sign-up and login keep limits a person would meet.
RATELIMIT_ORDERS = "100000/minute"
# 5 (not the default 10) so that a client exhausting it once per process (6 processes while
# Redis is out) fits in a 10 s outage under nginx's own 5 r/s on /api/v1/auth/.
RATELIMIT_REGISTER = "5/minute"


@dataclass
class Reply:
    """One HTTP exchange; status 0 means no response (refused, reset or timed out)."""

    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def is_problem(self) -> bool:
        """True for an application/problem+json body with the matching status."""
        if not self.headers.get("content-type", "").startswith("application/problem+json"):
            return False
        return bool(self.json().get("status") == self.status)


def call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    source: str | None = None,
) -> Reply:
    """One request on a fresh connection (no keep-alive, so each may land anywhere).

    `source`: another loopback address to connect from (127.0.0.2 ...), so nginx, and the
    app behind it, see a client other than the load's 127.0.0.1.
    """
    sent = {"Connection": "close", **(headers or {})}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    started = time.monotonic()
    bound = (source, 0) if source else None
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=bound)
    try:
        conn.request(method, path, body=payload, headers=sent)
        response = conn.getresponse()
        data = response.read()
        got = {k.lower(): v for k, v in response.getheaders()}
        return Reply(response.status, got, data, time.monotonic() - started)
    except (OSError, http.client.HTTPException):
        return Reply(0, {}, b"", time.monotonic() - started)
    finally:
        conn.close()


def wait_status(port: int, path: str, status: int = 200, seconds: float = 30) -> float:
    """Seconds until `path` answers `status`; fails after `seconds`."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if call(port, "GET", path, timeout=2).status == status:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"127.0.0.1:{port}{path} did not answer {status} within {seconds}s")


@dataclass
class Replica:
    """One `flipkart-api serve` (granian main process + workers) in its own process group."""

    port: int
    env: dict[str, str]
    logfile: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start on our port and wait until /readyz answers 200."""
        with self.logfile.open("ab") as log:
            self.process = subprocess.Popen(
                [CLI, "serve"],
                env=self.env | {"PORT": str(self.port)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: SIGKILL can take the workers too
            )
        wait_status(self.port, "/readyz", seconds=60)

    @property
    def running(self) -> bool:
        """True while the server's main process runs."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL master and workers at once, like a crashed container."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, seconds: float = 30) -> float:
        """SIGTERM to the app server (graceful stop); seconds until it exited."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=seconds)
        return time.monotonic() - started

    def stop(self) -> None:
        """Graceful stop, then SIGKILL of the group if it hangs."""
        if not self.running:
            return
        try:
            self.terminate(seconds=25)
        except subprocess.TimeoutExpired:
            self.kill()


# What ties deploy/nginx/default.conf to Docker, and its local stand-in. Each must match
# exactly as often as given, so a reshaped production config fails here instead of being
# half-tested. The TLS server (443) is the API; port 80 only redirects.
NGINX_SWAPS = (
    ("access_log /dev/stdout edge;", "access_log {prefix}/access.log edge;", 2),
    # A named upstream group instead of Docker DNS; `proxy_pass $app` then picks the group.
    ("set $app http://web:5000;", "set $app http://replicas;", 2),
    ("ssl_certificate /etc/nginx/tls/tls.crt;", "ssl_certificate {prefix}/tls.crt;", 1),
    ("ssl_certificate_key /etc/nginx/tls/tls.key;", "ssl_certificate_key {prefix}/tls.key;", 1),
    ("root /var/www/acme;", "root {acme};", 1),
)
TLS_LISTEN = "listen 443 ssl http2;"
HTTP_LISTEN = "listen 80;"
CACHE_TARGET = "set $cache http://varnish:80;"
CACHE_BACKEND_LISTEN = "listen 8081;"
STATUS_LISTEN = "listen 8080;"  # stub_status, for the nginx exporter

NGINX_MAIN = """worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    upstream replicas {{
{servers}
    }}
    include {prefix}/default.conf;
}}
"""


def self_signed(directory: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A throwaway certificate and key for `name` (and 127.0.0.1), by the openssl CLI."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    if not cert.exists():
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", f"/CN={name}"),
                *("-newkey", "rsa:2048"),  # RSA: the suites most clients still get
                *("-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1"),
                *("-keyout", str(key), "-out", str(cert)),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
    return cert, key


def render_nginx_conf(
    prefix: Path,
    port: int,
    replica_ports: list[int],
    *,
    tls: bool = False,
    http_port: int = 0,
    acme: Path | None = None,
    cache_port: int = 0,
    cache_backend_port: int = 0,
    status_port: int = 0,
) -> Path:
    """Write nginx.conf (main context) including the adapted production server block.

    With `tls` the API listens with TLS on `port` and the redirect server on `http_port`,
    as in production. Without it (the drills, the hostile-edge tests: what they test is
    not TLS) the same server block listens plainly on `port`, and the redirect server on
    a Unix socket in the prefix. `acme` is the webroot for certbot's challenge files (a
    directory nginx's workers can read: as root they run as nobody).

    `cache_port`: a Varnish on 127.0.0.1 that anonymous reads go to (none: they go to the
    replicas, as when the cache is down); `cache_backend_port`: where the internal server
    Varnish asks listens (none: a Unix socket nobody uses); `status_port`: where the
    stub_status server listens (none: a Unix socket).
    """
    acme = acme or prefix / "acme"
    conf = (ROOT / "deploy" / "nginx" / "default.conf").read_text()
    tls_listen = f"listen 127.0.0.1:{port} ssl http2;" if tls else f"listen 127.0.0.1:{port};"
    redirect = f"listen 127.0.0.1:{http_port};" if tls else f"listen unix:{prefix}/http.sock;"
    cache = f"http://127.0.0.1:{cache_port}" if cache_port else "http://replicas"
    backend = (
        f"listen 127.0.0.1:{cache_backend_port};"
        if cache_backend_port
        else f"listen unix:{prefix}/cache-backend.sock;"
    )
    status = (
        f"listen 127.0.0.1:{status_port};" if status_port else f"listen unix:{prefix}/status.sock;"
    )
    swaps = (
        *NGINX_SWAPS,
        (STATUS_LISTEN, status, 1),
        (TLS_LISTEN, tls_listen, 1),
        (HTTP_LISTEN, redirect, 1),
        (CACHE_TARGET, f"set $cache {cache};", 1),
        (CACHE_BACKEND_LISTEN, backend, 1),
    )
    for old, new, count in swaps:
        assert conf.count(old) == count, f"deploy/nginx/default.conf changed shape: {old!r}"
        conf = conf.replace(old, new.format(prefix=prefix, acme=acme))
    (prefix / "default.conf").write_text(conf)
    acme.mkdir(exist_ok=True)
    self_signed(prefix)
    # max_fails=0: production resolves `web` per request into a fresh peer list, so no
    # failure state outlives a request there; a static group must not keep any either.
    upstreams = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in replica_ports)
    main = NGINX_MAIN.format(prefix=prefix, servers=upstreams)
    (prefix / "nginx.conf").write_text(main)
    return prefix / "nginx.conf"


def start_nginx(conf: Path, binary: str = "nginx") -> subprocess.Popen[bytes]:
    """nginx in the foreground on a conf from render_nginx_conf (its directory the prefix).

    Its stderr goes to stderr.log there; it dies with the test run (lifeline), and callers
    stop it by PID.
    """
    with (conf.parent / "stderr.log").open("ab") as log:
        return lifeline.spawn(
            [binary, "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"],
            sig=signal.SIGTERM,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


@dataclass
class Stack:
    """Everything the drills run against."""

    workdir: Path
    pg: servers.PostgresServer
    redis: servers.RedisServer  # the cache
    limits_redis: servers.RedisServer  # rate-limit counters
    database_url: str
    env: dict[str, str]
    replicas: list[Replica] = field(default_factory=list)
    nginx: subprocess.Popen[bytes] | None = None
    port: int = 0  # nginx, the only entry point of the load

    def cli(self, *args: str) -> str:
        """Run a `flipkart-api` command against this stack's database."""
        done = subprocess.run([CLI, *args], env=self.env, capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
        return done.stdout.decode()

    def configure_redis(self) -> None:
        """The production flags (servers.py starts a plain Redis; again after a restart)."""
        with redis.Redis.from_url(self.redis.url()) as cache:
            cache.config_set("maxmemory", CACHE_MAXMEMORY)
            cache.config_set("maxmemory-policy", "allkeys-lru")
        with redis.Redis.from_url(self.limits_redis.url()) as counters:
            counters.config_set("maxmemory-policy", "noeviction")

    def restart_redis(self, servers_: Sequence[servers.RedisServer]) -> None:
        """Start these Redis again (empty, as the test servers keep nothing) with their flags."""
        for server in servers_:
            server.restart()
        self.configure_redis()

    def start(self, products: int) -> None:
        """Migrate, seed, start the replicas and nginx."""
        self.configure_redis()
        self.cli("migrate")
        self.cli("seed", "--products", str(products))
        for n in range(REPLICAS):
            replica = Replica(servers.free_port(), self.env, self.workdir / f"replica-{n}.log")
            self.replicas.append(replica)
            replica.start()
        prefix = self.workdir / "nginx"  # temp files: /tmp/nginx-*, as default.conf says
        prefix.mkdir(parents=True, exist_ok=True)
        self.port = servers.free_port()
        conf = render_nginx_conf(prefix, self.port, [r.port for r in self.replicas])
        self.nginx = start_nginx(conf)
        wait_status(self.port, "/readyz")

    def route_to(self, ports: list[int]) -> None:
        """Point nginx at these replicas (graceful reload: running requests finish)."""
        assert self.nginx is not None
        render_nginx_conf(self.workdir / "nginx", self.port, ports)
        self.nginx.send_signal(signal.SIGHUP)
        time.sleep(0.5)  # the new workers take over; the old ones finish what they have
        assert self.nginx.poll() is None, "nginx died on reload"

    def stop(self) -> None:
        """Stop nginx and the replicas by PID; the servers are stopped by their owner."""
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.terminate()
            try:
                self.nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait(timeout=5)
        for replica in self.replicas:
            replica.stop()


def can_partition() -> str | None:
    """None when `partitioned()` can work here, else why not (it needs root and iptables)."""
    if shutil.which("iptables") is None:
        return "iptables is not installed"
    if os.geteuid() != 0:
        return "dropping packets needs root"
    return None


@contextlib.contextmanager
def partitioned(port: int) -> Iterator[None]:
    """Drop every packet to and from 127.0.0.1:`port` while inside, then let them through.

    A partition, not a refusal: nothing answers and nothing resets, as when a network
    splits or a primary fails over. Only rules naming this port are inserted, and exactly
    those are deleted.
    """
    rules = [
        ["INPUT", "-i", "lo", "-p", "tcp", "--dport", str(port), "-j", "DROP"],
        ["INPUT", "-i", "lo", "-p", "tcp", "--sport", str(port), "-j", "DROP"],
    ]
    inserted = []
    try:
        for rule in rules:
            subprocess.run(["iptables", "-w", "5", "-I", *rule], check=True, timeout=30)
            inserted.append(rule)
        yield
    finally:
        for rule in inserted:
            subprocess.run(["iptables", "-w", "5", "-D", *rule], check=True, timeout=30)


def production_env(
    workdir: Path, database_url: str, redis_url: str, limits_redis_url: str
) -> dict[str, str]:
    """What a replica sees in production; the order limit raised for the load's one client."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(workdir),
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "RATELIMIT_REDIS_URL": limits_redis_url,
        "RATELIMIT_ORDERS": RATELIMIT_ORDERS,
        "RATELIMIT_REGISTER": RATELIMIT_REGISTER,
        # Each writer of the load is one customer placing dozens of orders: no open-order caps.
        "ORDERS_MAX_OPEN": "0",
        "ORDERS_MAX_OPEN_UNITS": "0",
        "LOG_LEVEL": "WARNING",
        "HOST": "127.0.0.1",
        "PROXY_HOPS": "1",
    }
