"""compose.prod.yaml: nginx and the HTTP cache before 3 replicas, surviving kills and restarts.

The tests run in file order against one stack (module-scoped fixture).
"""

from __future__ import annotations

import http.client as httpclient
import json
import secrets
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import Stack, docker, wait_for

pytestmark = pytest.mark.timeout(900)
LOAD_REQUESTS = 3000  # bounded: 4 clients x 750 GETs
LOAD_SECONDS = 120  # and bounded in time


class Load:
    """A bounded GET loop through nginx on 127.0.0.1 (HTTPS), counting every outcome."""

    def __init__(self, stack: Stack, clients: int = 4) -> None:
        self.port = stack.ports["https"]
        self.context = stack.tls()
        self.codes: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(clients)]
        self._per_client = LOAD_REQUESTS // clients

    def _run(self, index: int) -> None:
        deadline = time.monotonic() + LOAD_SECONDS
        conn = self._connect()
        paths = ["/api/v1/products/1", "/health", "/api/v1/products?limit=5", "/"]
        for n in range(self._per_client):
            if time.monotonic() > deadline:
                break
            try:
                conn.request("GET", paths[(n + index) % len(paths)])
                response = conn.getresponse()
                response.read()
                code = response.status
            except (OSError, httpclient.HTTPException):
                conn.close()
                code, conn = 0, self._connect()
            with self._lock:
                self.codes[code] += 1
        conn.close()

    def _connect(self) -> httpclient.HTTPSConnection:
        return httpclient.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=self.context)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for t in self._threads:
            t.join()

    @property
    def failed(self) -> int:
        """Requests that were not answered 200."""
        return sum(n for code, n in self.codes.items() if code != 200)


def test_stack_comes_up_and_migrates_exactly_once(prod_stack: Stack) -> None:
    started = time.monotonic()
    prod_stack.compose("up", "-d", "--wait", timeout=900)
    print(f"\nprod stack up in {time.monotonic() - started:.1f}s")
    rows = [
        json.loads(line)
        for line in prod_stack.compose(
            "ps", "-a", "--format", "json", "migrate"
        ).stdout.splitlines()
    ]
    assert len(rows) == 1, rows
    assert rows[0]["ExitCode"] == 0
    count = prod_stack.compose(
        "exec",
        "-T",
        "db",
        "psql",
        "-U",
        "flipkart",
        "-d",
        "flipkart",
        "-tAc",
        "SELECT count(*) FROM alembic_version",
    ).stdout.strip()
    assert count == "1"
    # Production does not seed on its own; give the load something to read.
    prod_stack.compose("exec", "-T", "web", "flipkart-api", "seed", "--products", "50")
    running = [
        json.loads(line)
        for line in prod_stack.compose("ps", "--format", "json").stdout.splitlines()
    ]
    publishing = {
        c["Service"] for c in running for p in c.get("Publishers") or [] if p["PublishedPort"]
    }
    assert publishing == {"nginx"}


def test_https_with_the_generated_certificate_and_80_only_redirects(prod_stack: Stack) -> None:
    """`certs` made a self-signed pair once; nginx serves it over TLS 1.2+ with h2 and HSTS."""
    rows = [json.loads(line) for line in prod_stack.compose(
        "ps", "-a", "--format", "json", "certs").stdout.splitlines()]  # fmt: skip
    assert [row["ExitCode"] for row in rows] == [0], rows
    pem = prod_stack.certificate()
    show = ["openssl", "x509", "-noout", "-subject", "-ext", "subjectAltName"]
    subject = subprocess.run(show, input=pem, capture_output=True, text=True, check=True).stdout
    assert "CN = localhost" in subject
    assert "IP Address:127.0.0.1" in subject
    with socket.create_connection(("127.0.0.1", prod_stack.ports["https"]), timeout=10) as raw:
        ctx = ssl.create_default_context(cadata=pem)  # its own: ALPN is set on the context
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:  # verified: our cert
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            assert tls.selected_alpn_protocol() == "h2"
    request = urllib.request.Request(prod_stack.base + "/health")  # noqa: S310 - https
    with urllib.request.urlopen(request, timeout=10, context=prod_stack.tls()) as answer:  # noqa: S310
        assert answer.status == 200
        assert answer.headers.get_all("Strict-Transport-Security") == ["max-age=63072000"]
        assert answer.headers["X-Frame-Options"] == "DENY"
    conn = httpclient.HTTPConnection("127.0.0.1", prod_stack.ports["http"], timeout=10)
    conn.request("GET", "/api/v1/products?limit=1")
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 301
    assert response.headers["Location"] == "https://127.0.0.1/api/v1/products?limit=1"
    # `certs` again, on the same volume: it keeps the pair, it does not make another.
    assert "keeping" in prod_stack.compose("run", "--rm", "certs").stdout
    assert prod_stack.certificate() == pem


def test_the_operators_certificate_replaces_the_self_signed_one(
    prod_stack: Stack, tmp_path: Path
) -> None:
    """certbot's file names in TLS_DIR: copied by `certs`, served after a reload."""
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(tmp_path / "privkey.pem"), "-out", str(tmp_path / "fullchain.pem")],
        capture_output=True, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    given = (tmp_path / "fullchain.pem").read_text()
    env = prod_stack.env
    try:
        prod_stack.env = env | {"TLS_DIR": str(tmp_path)}
        prod_stack.compose("run", "--rm", "certs")
        prod_stack.compose("exec", "-T", "nginx", "nginx", "-s", "reload")
        # A key that is not the certificate's is refused, and the served pair stays.
        other = tmp_path / "other"
        other.mkdir()
        (other / "tls.crt").write_text(given)
        genpkey = ["openssl", "genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        subprocess.run([*genpkey, "-out", str(other / "tls.key")], check=True, capture_output=True)
        prod_stack.env = env | {"TLS_DIR": str(other)}
        refused = prod_stack.compose("run", "--rm", "certs", check=False)
        assert refused.returncode != 0
        assert "do not belong together" in refused.stderr
    finally:
        prod_stack.env = env
    assert prod_stack.certificate() == given
    prod_stack._tls = None  # trust the new certificate from here on
    deadline = time.monotonic() + 10
    while True:  # the reload's new workers take over within a moment
        served = _served_certificate(prod_stack.ports["https"])
        if served == ssl.PEM_cert_to_DER_cert(given) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert served == ssl.PEM_cert_to_DER_cert(given)
    assert prod_stack.get("/health")[0] == 200  # verified against the operator's certificate


def _served_certificate(port: int) -> bytes:
    """The DER certificate nginx presents (not verified: compared by the caller)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_requests_reach_all_three_replicas(prod_stack: Stack) -> None:
    prod_stack.wait_for("/livez")
    assert len(prod_stack.containers("web")) == 3
    instances = set()
    for _ in range(60):
        status, body = prod_stack.get("/health")
        assert status == 200
        assert body is not None
        instances.add(body["instance"])
    assert len(instances) == 3, instances


def test_sigkill_of_a_replica_under_load_fails_no_get(prod_stack: Stack) -> None:
    victim = prod_stack.containers("web")[0]
    with Load(prod_stack) as load:
        time.sleep(1)
        docker("kill", "--signal", "KILL", victim)
        time.sleep(2)
        prod_stack.compose("up", "-d", "--wait", timeout=300)
    print(f"\nSIGKILL under load: sent={sum(load.codes.values())} codes={dict(load.codes)}")
    assert load.failed == 0, load.codes
    assert len(prod_stack.containers("web")) == 3


def test_graceful_stop_under_load_drops_nothing(prod_stack: Stack) -> None:
    victim = prod_stack.containers("web")[1]
    with Load(prod_stack) as load:
        time.sleep(1)
        started = time.monotonic()
        docker("stop", "--time", "30", victim)
        stop_seconds = time.monotonic() - started
    sent = sum(load.codes.values())
    print(f"\ngraceful stop under load: {stop_seconds:.1f}s, sent={sent} codes={dict(load.codes)}")
    assert stop_seconds < 15, "stop took most of the grace period: SIGTERM did not reach gunicorn"
    assert load.failed == 0, load.codes
    prod_stack.compose("up", "-d", "--wait", timeout=300)


def test_data_survives_down_and_up(prod_stack: Stack) -> None:
    user = {"email": "keep@example.in", "password": "keep-me-please", "name": "Keep"}
    request = _post(prod_stack, "/api/v1/auth/register", user)
    assert request == 201
    prod_stack.compose("down", "--timeout", "10")
    prod_stack.compose("up", "-d", "--wait", timeout=600)
    prod_stack.wait_for("/livez")
    login = _post(
        prod_stack, "/api/v1/auth/token", {"email": user["email"], "password": user["password"]}
    )
    assert login == 200


def test_adminer_with_the_tools_profile(prod_stack: Stack) -> None:
    prod_stack.compose("--profile", "tools", "up", "-d", "adminer", timeout=300)
    wait_for(f"http://127.0.0.1:{prod_stack.ports['adminer']}/", seconds=60)


def test_a_crashed_cache_comes_back_with_nothing_invalidated_before(prod_stack: Stack) -> None:
    """Cache a product, snapshot, change its price, SIGKILL and restart Redis: never the old price.

    The BGSAVE stands for the snapshot that `--save 60 1000` (the old configuration) writes
    within a minute of a busy spell; a cache that persists reloads it after the crash and
    serves the price the PATCH invalidated. Without persistence the restarted cache is empty.
    """
    path = "/api/v1/products/7"
    before = _until_cached(prod_stack, path)
    assert before["price"] > 1, before
    snapshot = _redis_cli(prod_stack, "BGSAVE")  # fails where /data is not writable: fine
    _until(lambda: "rdb_bgsave_in_progress:0" in _redis_cli(prod_stack, "INFO", "persistence"))
    saved = _redis_cli(prod_stack, "INFO", "persistence")
    print(f"\nBGSAVE: {snapshot.strip()!r}, {_field(saved, 'rdb_last_bgsave_status')}")
    price = before["price"] - 1
    status, _, _ = _call(prod_stack, "PATCH", path, {"price": price}, _admin_token(prod_stack))
    assert status == 200
    assert _until_cached(prod_stack, path)["price"] == price  # invalidated live, and cached again

    redis = prod_stack.containers("redis")[0]
    docker("kill", "--signal", "KILL", redis)
    started = time.monotonic()
    _restart_and_wait_healthy(redis)
    back = time.monotonic() - started
    keys = _redis_cli(prod_stack, "DBSIZE").strip()
    seen: Counter[tuple[int, str]] = Counter()
    for _ in range(90):  # through nginx, so every replica answers some of them
        status, body, cache = _call(prod_stack, "GET", path)
        assert status == 200
        assert body is not None
        seen[body["price"], cache] += 1
        if cache != "BYPASS":
            time.sleep(0.02)
    print(f"cache back in {back:.1f}s holding {keys} keys; reads (price, X-Cache): {dict(seen)}")
    assert {p for p, _ in seen} == {price}, f"stale reads after the restart: {dict(seen)}"
    assert keys == "0", "the restarted cache reloaded keys from before the crash"
    assert any(cache == "HIT" for _, cache in seen), "the cache was never used again"


def test_the_http_cache_serves_is_purged_and_its_outage_fails_no_read(prod_stack: Stack) -> None:
    """Varnish behind nginx: hits, a write read back at once, and 0 failed GETs without it."""
    path = "/api/v1/products/9"
    first = _call(prod_stack, "GET", path, header="X-Edge", edge=True)
    second = _call(prod_stack, "GET", path, header="X-Edge", edge=True)
    assert (first[0], first[2], second[2]) == (200, "MISS", "HIT")
    assert first[1] is not None
    price = first[1]["price"] - 2
    token = _admin_token(prod_stack)
    assert _call(prod_stack, "PATCH", path, {"price": price}, token)[0] == 200
    status, body, edge = _call(prod_stack, "GET", path, header="X-Edge", edge=True)
    assert (status, edge) == (200, "MISS")
    assert body is not None
    assert body["price"] == price
    prod_stack.compose("stop", "varnish")
    try:
        with Load(prod_stack) as load:
            pass
        print(f"\nHTTP cache stopped: sent={sum(load.codes.values())} codes={dict(load.codes)}")
        assert load.failed == 0, load.codes
    finally:
        prod_stack.compose("up", "-d", "--wait", timeout=300)
    _call(prod_stack, "GET", path, header="X-Edge", edge=True)
    assert _call(prod_stack, "GET", path, header="X-Edge", edge=True)[2] == "HIT"


def _redis_cli(stack: Stack, *args: str) -> str:
    """redis-cli in the cache container (it authenticates from REDISCLI_AUTH)."""
    return stack.compose("exec", "-T", "redis", "redis-cli", *args).stdout


def _field(info: str, name: str) -> str:
    return next((line.strip() for line in info.splitlines() if line.startswith(name)), "")


def _until(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def _until_cached(stack: Stack, path: str) -> dict[str, Any]:
    """GET until the answer is a cache HIT; its body."""
    deadline = time.monotonic() + 30
    while True:
        status, body, cache = _call(stack, "GET", path)
        assert status == 200
        assert body is not None
        if cache == "HIT":
            return body
        assert time.monotonic() < deadline, f"never a HIT (last X-Cache {cache})"
        time.sleep(0.1)


def _restart_and_wait_healthy(name: str) -> None:
    """After a kill: start the container unless its restart policy already did; until healthy."""
    deadline = time.monotonic() + 60
    while True:
        state = json.loads(docker("inspect", name).stdout)[0]["State"]
        if state["Running"] and state["Health"]["Status"] == "healthy":
            return
        if not state["Running"] and not state["Restarting"]:
            docker("start", name)
        assert time.monotonic() < deadline, f"{name} not healthy again: {state}"
        time.sleep(0.2)


def _admin_token(stack: Stack) -> str:
    email, password = "cache-admin@example.in", secrets.token_urlsafe(16)
    stack.compose(
        "exec",
        "-T",
        "web",
        "flipkart-api",
        "create-admin",
        "--email",
        email,
        "--password",
        password,
        "--reset-password",  # the second test to ask gets a password that works too
    )
    status, body, _ = _call(
        stack, "POST", "/api/v1/auth/token", {"email": email, "password": password}
    )
    assert status == 200
    assert body is not None
    return str(body["access_token"])


def _call(
    stack: Stack,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    token: str | None = None,
    *,
    header: str = "X-Cache",
    edge: bool = False,
) -> tuple[int, dict[str, Any] | None, str]:
    """(status, JSON body, `header`) of one request through nginx, over HTTPS.

    Not through the HTTP cache unless `edge`: a cookie sends it straight to the replicas, so
    X-Cache says what Redis did for this very request.
    """
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(stack.base + path, data=data, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if not edge:
        request.add_header("Cookie", "edge=bypass")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=stack.tls()) as response:  # noqa: S310
            raw, status, value = response.read(), response.status, response.headers[header]
    except urllib.error.HTTPError as error:
        raw, status, value = error.read(), error.code, error.headers[header]
    return int(status), json.loads(raw) if raw.startswith(b"{") else None, str(value or "")


def _post(stack: Stack, path: str, body: dict[str, str]) -> int:
    data = json.dumps(body).encode()
    request = urllib.request.Request(stack.base + path, data=data, method="POST")  # noqa: S310
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10, context=stack.tls()) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
