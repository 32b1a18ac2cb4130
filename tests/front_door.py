"""The whole front door on native engines, as the production stacks wire it.

nginx (deploy/nginx/default.conf with TLS) -> Varnish (deploy/varnish/default.vcl) -> nginx's
internal server -> replicas (`flipkart-api serve`) on PostgreSQL and a Redis of their own,
purging the Varnish after each catalog write. Only ports and file paths differ from the
stacks (tests/faults/stack.py's render_nginx_conf, tests/varnish.py). Stopped by PID.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import servers
from .faults.stack import CLI, Replica, production_env, render_nginx_conf, start_nginx
from .test_hostile_edge import nginx_binary
from .varnish import Varnish, start_varnish

HOST = "localhost"  # the throwaway certificate's name
ADMIN = {"email": "front-admin@example.in", "password": "front-admin-password"}


@dataclass
class FrontDoor:
    """Everything started; `https` is the only port clients use."""

    workdir: Path
    https: int
    cert: Path
    varnish: Varnish
    varnish_port: int
    backend_port: int  # nginx's internal server, Varnish's backend
    replicas: list[Replica]
    redis: servers.RedisServer
    env: dict[str, str]
    nginx: subprocess.Popen[bytes] | None = None
    tokens: dict[str, str] = field(default_factory=dict)

    def context(self) -> ssl.SSLContext:
        """A client context that trusts exactly the front's certificate."""
        return ssl.create_default_context(cafile=str(self.cert))

    def connect(self) -> http.client.HTTPSConnection:
        """A keep-alive HTTPS connection to the front door."""
        return http.client.HTTPSConnection(HOST, self.https, context=self.context(), timeout=15)

    def request(
        self, method: str, path: str, body: Any = None, token: str = "", **headers: str
    ) -> tuple[int, http.client.HTTPMessage, Any]:
        """One request on a fresh connection: (status, headers, parsed JSON or None)."""
        sent = dict(headers)
        if token:
            sent["Authorization"] = f"Bearer {token}"
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        conn = self.connect()
        try:
            conn.request(method, path, body=payload, headers=sent)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        parsed = (
            json.loads(data)
            if data and "json" in response.headers.get("Content-Type", "")
            else None
        )
        return response.status, response.headers, parsed

    def token(self, email: str, password: str) -> str:
        """A bearer token, through the front door."""
        status, _, body = self.request(
            "POST", "/api/v1/auth/token", {"email": email, "password": password}
        )
        assert status == 200, body
        token: str = body["access_token"]
        return token

    def restart_varnish(self) -> None:
        """Start the cache again on its port after a drill stopped it."""
        self.varnish = start_varnish(
            self.workdir / "varnish", [self.backend_port], port=self.varnish_port
        )


def start_front_door(workdir: Path, pg: servers.PostgresServer, replicas: int) -> FrontDoor:
    """Migrate and seed, start replicas, nginx with TLS and Varnish between them."""
    binary = nginx_binary()
    redis = servers.start_redis()
    url = pg.create_database(f"flipkart_front_{os.getpid()}_{workdir.name}")
    varnish_port, backend_port, https = (servers.free_port() for _ in range(3))
    env = production_env(workdir, url, redis.url(0), redis.url(1))
    env |= {"EDGE_PURGE_URLS": f"http://127.0.0.1:{varnish_port}", "WEB_CONCURRENCY": "1"}
    admin = env | {"ADMIN_PASSWORD": ADMIN["password"]}
    for args, extra in (
        (["migrate"], env),
        (["seed", "--products", "60", "-q"], env),
        (["create-admin", "--email", ADMIN["email"]], admin),
    ):
        done = subprocess.run([CLI, *args], env=extra, capture_output=True, timeout=180)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    started = [
        Replica(servers.free_port(), env, workdir / f"replica{i}.log") for i in range(replicas)
    ]
    for replica in started:
        replica.start()
    prefix = workdir / "nginx"
    prefix.mkdir()
    conf = render_nginx_conf(
        prefix,
        https,
        [r.port for r in started],
        tls=True,
        http_port=servers.free_port(),
        cache_port=varnish_port,
        cache_backend_port=backend_port,
    )
    nginx = start_nginx(conf, binary)
    varnish = start_varnish(workdir / "varnish", [backend_port], port=varnish_port)
    door = FrontDoor(
        workdir,
        https,
        prefix / "tls.crt",
        varnish,
        varnish_port,
        backend_port,
        started,
        redis,
        env,
        nginx,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if door.request("GET", "/readyz")[0] == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, (prefix / "stderr.log").read_text()[-2000:]
        time.sleep(0.2)
    return door


def stop_front_door(door: FrontDoor) -> None:
    """Stop everything by PID."""
    door.varnish.stop()
    if door.nginx is not None and door.nginx.poll() is None:
        door.nginx.terminate()
        door.nginx.wait(timeout=10)
    for replica in door.replicas:
        replica.stop()
    door.redis.stop()
