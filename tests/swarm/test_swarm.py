"""`make test-swarm`: the stack on a single-node swarm: hardened, and a rolling update under load.

Creates the swarm (`docker swarm init --advertise-addr 127.0.0.1`) and leaves it afterwards
unless this machine was already in one. Traffic goes only to 127.0.0.1; loops are bounded.
"""

from __future__ import annotations

import http.client as httpclient
import json
import os
import secrets
import ssl
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .. import servers
from ..container.conftest import ROOT, docker, http, node_exporter_image, wait_for
from ..faults.stack import self_signed

ROOT_USERS = {"", "root", "0"}

pytestmark = pytest.mark.timeout(900)
STACK = "fkswarm"
MAX_REQUESTS = 20_000  # the load stops at the end of the update, or at these bounds
MAX_SECONDS = 300


def _remove_stack() -> None:
    """Remove the stack and, once its containers are gone, its volumes (bounded waits)."""
    docker("stack", "rm", STACK, check=False)
    label = f"label=com.docker.stack.namespace={STACK}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        left = docker("ps", "-aq", "--filter", label).stdout.strip()
        left += docker("network", "ls", "-q", "--filter", label).stdout.strip()
        if not left:
            break
        time.sleep(1)
    volumes = docker("volume", "ls", "-q", "--filter", label).stdout.split()
    if volumes:
        docker("volume", "rm", "-f", *volumes, check=False)


@pytest.fixture(scope="module")
def swarm() -> Iterator[None]:
    """A single-node swarm for this module, without leftovers of an earlier run."""
    if docker("info", check=False).returncode != 0:
        pytest.fail("no Docker engine") if os.environ.get("CI") == "true" else pytest.skip(
            "no Docker engine"
        )
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
    created = state != "active"
    if created:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    _remove_stack()  # a volume kept from an earlier run would hold another password
    try:
        yield
    finally:
        _remove_stack()
        if created:
            docker("swarm", "leave", "--force", check=False)


@pytest.fixture(scope="module")
def images() -> tuple[str, str]:
    """Two tags of the image that differ (revision label), for the rolling update."""
    tags = ("flipkart-api:swarm-1", "flipkart-api:swarm-2")
    base = (
        ["--build-arg", f"PYTHON_IMAGE={os.environ['PYTHON_IMAGE']}"]
        if os.environ.get("PYTHON_IMAGE")
        else []
    )
    for tag in tags:
        docker("build", *base, "--build-arg", f"REVISION={tag}", "-t", tag, str(ROOT))
    return tags


def _secrets(directory: Path) -> dict[str, str]:
    password = secrets.token_urlsafe(24)
    values = {
        "postgres_password": password,
        "database_url": f"postgresql://flipkart:{password}@db:5432/flipkart",
        "secret_key": secrets.token_urlsafe(48),
        "redis_password": secrets.token_urlsafe(24),
    }
    for name, value in values.items():
        (directory / name).write_text(value)
    servers_ = ("redis://redis:6379", "redis://redis-limits:6379")  # deploy/swarm/monitoring.yaml
    passwords = dict.fromkeys(servers_, values["redis_password"])
    (directory / "redis_exporter_passwords.json").write_text(json.dumps(passwords))
    self_signed(directory)  # tls.crt, tls.key: for localhost and 127.0.0.1
    return values


def _tls(deployed: dict[str, str]) -> ssl.SSLContext:
    """A client context trusting exactly the certificate given to the stack as a secret."""
    return ssl.create_default_context(cafile=deployed["cert"])


def _replicas() -> str:
    out = docker(
        "service", "ls", "--filter", f"name={STACK}_web", "--format", "{{.Replicas}}"
    ).stdout
    return out.strip()


@pytest.fixture(scope="module")
def deployed(
    swarm: None, images: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The stack on images[0], 3 web replicas answering: its base URL and secret values."""
    directory = tmp_path_factory.mktemp("secrets")
    values = _secrets(directory)
    port, https = servers.free_port(), servers.free_port()
    env = os.environ | {
        "APP_IMAGE": images[0],
        "HTTP_PORT": str(port),
        "HTTPS_PORT": str(https),
        "SECRETS_DIR": str(directory),
        "NODE_EXPORTER_IMAGE": node_exporter_image(),
    }
    result = docker(
        "stack",
        "deploy",
        "-c",
        str(ROOT / "deploy/swarm/stack.yaml"),
        "-c",
        str(ROOT / "deploy/swarm/monitoring.yaml"),
        "--resolve-image",
        "never",
        STACK,
        env=env,
    )
    # The CLI names the keys Swarm cannot apply (security_opt, ...): the file has none.
    assert "Ignoring" not in result.stdout + result.stderr, result.stderr
    base = f"https://127.0.0.1:{https}"
    cert = str(directory / "tls.crt")
    wait_for(base + "/readyz", seconds=240, context=ssl.create_default_context(cafile=cert))
    deadline = time.monotonic() + 120
    while _replicas() != "3/3":
        assert time.monotonic() < deadline, f"web replicas: {_replicas()}"
        time.sleep(1)
    return values | {"base": base, "cert": cert, "http_port": str(port)}


def _container(service: str) -> str:
    """One running container of the stack's service."""
    deadline = time.monotonic() + 60
    while True:
        label = f"label=com.docker.swarm.service.name={STACK}_{service}"
        ids = docker("ps", "-q", "--filter", label, "--filter", "status=running").stdout.split()
        if ids:
            return ids[0]
        assert time.monotonic() < deadline, f"no running {service} container"
        time.sleep(1)


def test_services_are_hardened_and_redis_wants_its_password(deployed: dict[str, str]) -> None:
    network = json.loads(docker("network", "inspect", f"{STACK}_backend").stdout)[0]
    assert network["Options"].get("encrypted") == "true", network["Options"]
    status, body = http(deployed["base"] + "/health", context=_tls(deployed))
    assert status == 200
    assert body is not None
    assert body["checks"] == {"database": "ok", "cache": "ok"}  # through the password
    secret_values = [v for k, v in deployed.items() if k not in ("base", "cert", "http_port")]
    for service in ("web", "worker", "nginx", "varnish", "db", "redis", "redis-limits"):
        spec = json.loads(docker("service", "inspect", f"{STACK}_{service}").stdout)[0]
        container_spec = spec["Spec"]["TaskTemplate"]["ContainerSpec"]
        assert container_spec.get("ReadOnly") is True, f"{service}: writable root filesystem"
        assert container_spec.get("CapabilityDrop") == ["ALL"], service
        assert not container_spec.get("CapabilityAdd"), service
        assert container_spec.get("User", "").split(":")[0] not in ROOT_USERS, service
        processes = docker("top", _container(service), "-o", "pid,uid,args").stdout
        rows = [line.split(None, 2) for line in processes.splitlines()[1:]]
        assert rows, service
        for pid, uid, args in rows:
            assert uid != "0", f"{service}: process {pid} runs as root: {args}"
            for value in secret_values:
                assert value not in args, f"{service}: a secret on a command line: {args}"
    policies = {"redis": "allkeys-lru", "redis-limits": "noeviction"}
    for service, policy in policies.items():
        container = _container(service)
        anonymous = docker("exec", container, "redis-cli", "ping").stdout
        assert "NOAUTH" in anonymous, f"{service} answers without its password: {anonymous}"
        auth = ["-e", f"REDISCLI_AUTH={deployed['redis_password']}"]
        config = docker("exec", *auth, container, "redis-cli", "CONFIG", "GET", "*").stdout
        pairs = config.splitlines()
        settings = dict(zip(pairs[::2], pairs[1::2], strict=False))
        assert settings["save"] == "", f"{service} snapshots: {settings['save']!r}"
        assert settings["appendonly"] == "no", service
        assert settings["maxmemory-policy"] == policy, service
        saved = docker("exec", *auth, container, "redis-cli", "SAVE").stdout
        assert saved.startswith("ERR"), f"{service} wrote a snapshot when asked: {saved}"


def test_tls_from_the_secrets_and_80_only_redirects(deployed: dict[str, str]) -> None:
    """nginx serves the certificate given as a secret (verified), with HSTS; 80 redirects."""
    request = urllib.request.Request(deployed["base"] + "/livez")  # noqa: S310 - https
    with urllib.request.urlopen(request, timeout=10, context=_tls(deployed)) as answer:  # noqa: S310
        assert answer.status == 200
        assert answer.headers.get_all("Strict-Transport-Security") == ["max-age=63072000"]
    key = docker("exec", _container("nginx"), "stat", "-c", "%u %a", "/etc/nginx/tls/tls.key")
    assert key.stdout.split() == ["101", "400"]
    conn = httpclient.HTTPConnection("127.0.0.1", int(deployed["http_port"]), timeout=10)
    try:
        conn.request("GET", "/api/v1/products?limit=1")
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.status == 301
    assert response.headers["Location"] == "https://127.0.0.1/api/v1/products?limit=1"


def _get(deployed: dict[str, str], path: str) -> tuple[int, str, Any]:
    """(status, X-Edge, JSON body) of an anonymous GET over HTTPS."""
    request = urllib.request.Request(deployed["base"] + path)  # noqa: S310 - https
    with urllib.request.urlopen(request, timeout=10, context=_tls(deployed)) as answer:  # noqa: S310
        return answer.status, answer.headers.get("X-Edge", ""), json.loads(answer.read())


def test_the_http_cache_serves_and_every_task_is_purged(deployed: dict[str, str]) -> None:
    """Through nginx to Varnish; a write purges it through tasks.varnish (Swarm's DNS)."""
    # Swarm puts a task in its service's DNS once its healthcheck passes, and Varnish's wants
    # its backend (nginx -> the replicas) healthy: until then nginx answers reads itself.
    deadline = time.monotonic() + 90
    while _get(deployed, "/api/v1/categories")[1] == "" and time.monotonic() < deadline:
        time.sleep(1)
    first, second = _get(deployed, "/api/v1/categories"), _get(deployed, "/api/v1/categories")
    if second[1] != "HIT":  # say why: the cache's own log and its tasks
        print(docker("service", "ps", "--no-trunc", f"{STACK}_varnish").stdout)
        print(docker("service", "logs", "--tail", "40", f"{STACK}_varnish", check=False).stdout)
        cache = _container("varnish")
        print(docker("exec", cache, "varnishadm", "backend.list", check=False).stdout)
        log = docker("exec", cache, "varnishlog", "-d", "-g", "request", check=False)
        print(log.stdout[-6000:])
        nginx = docker("service", "logs", "--tail", "60", f"{STACK}_nginx", check=False)
        print(nginx.stdout[-3000:], nginx.stderr[-3000:])
    assert (first[0], second[1]) == (200, "HIT"), (first[:2], second[:2])
    email, password = "swarm-admin@example.in", secrets.token_urlsafe(16)
    docker("exec", _container("web"), "flipkart-api", "create-admin", "--email", email,
           "--password", password)  # fmt: skip
    token = _post(deployed, "/api/v1/auth/token", {"email": email, "password": password})
    created = _post(deployed, "/api/v1/categories", {"name": "Swarm Gear"}, token["access_token"])
    assert created["slug"] == "swarm-gear", created
    status, source, tree = _get(deployed, "/api/v1/categories")
    assert (status, source) == (200, "MISS")
    assert "swarm-gear" in {c["slug"] for c in tree["items"]}


def _post(deployed: dict[str, str], path: str, body: dict[str, str], token: str = "") -> Any:
    """A JSON POST over HTTPS; its parsed answer."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode()
    request = urllib.request.Request(deployed["base"] + path, data, headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10, context=_tls(deployed)) as answer:  # noqa: S310
        return json.loads(answer.read())


# What Prometheus scrapes in the Swarm stack (deploy/monitoring/prometheus-swarm.yml).
SWARM_JOBS = {"flipkart-api": 3, "worker": 1, "postgres": 1, "redis": 2, "nginx": 1, "node": 1,
              "alertmanager": 1, "prometheus": 1}  # fmt: skip


def _up() -> dict[str, list[str]]:
    """`up` by job, as Prometheus answers it from inside its task (nothing is published)."""
    out = docker("exec", _container("prometheus"), "promtool", "query", "instant",
                 "http://127.0.0.1:9090", "up", check=False).stdout  # fmt: skip
    jobs: dict[str, list[str]] = {}
    for line in out.splitlines():  # up{instance="...", job="web"} => 1 @[...]
        job = line.split('job="', 1)[1].split('"', 1)[0] if 'job="' in line else ""
        if job and "=>" in line:
            jobs.setdefault(job, []).append(line.split("=>", 1)[1].split("@", 1)[0].strip())
    return jobs


def test_prometheus_scrapes_every_task_and_exporter(deployed: dict[str, str]) -> None:
    deadline = time.monotonic() + 180
    while True:
        jobs = _up()
        counts = {job: len(values) for job, values in jobs.items()}
        if counts == SWARM_JOBS and all(v == "1" for vs in jobs.values() for v in vs):
            break
        assert time.monotonic() < deadline, f"targets not all up: {jobs}"
        time.sleep(3)


def test_rolling_update_drops_no_request(deployed: dict[str, str], images: tuple[str, str]) -> None:
    base, tls = deployed["base"], _tls(deployed)
    instances = {(http(base + "/health", context=tls)[1] or {}).get("instance") for _ in range(60)}
    assert len(instances - {None}) == 3, instances

    codes: Counter[int] = Counter()
    done = threading.Event()

    def load() -> None:
        started = time.monotonic()
        while (
            not done.is_set()
            and sum(codes.values()) < MAX_REQUESTS
            and time.monotonic() - started < MAX_SECONDS
        ):
            for path in ("/health", "/", "/api/v1/categories"):
                codes[http(base + path, timeout=10, context=tls)[0]] += 1

    workers = [threading.Thread(target=load) for _ in range(3)]
    for w in workers:
        w.start()
    started = time.monotonic()
    try:
        time.sleep(2)
        docker(
            "service", "update", "--image", images[1], "--detach=false", f"{STACK}_web", timeout=600
        )
        update_seconds = time.monotonic() - started
        time.sleep(2)
    finally:
        done.set()
        for w in workers:
            w.join()
    sent, failed = sum(codes.values()), sum(n for c, n in codes.items() if c != 200)
    summary = f"{update_seconds:.1f}s, sent={sent} failed={failed} codes={dict(codes)}"
    print(f"\nswarm rolling update: {summary}")
    spec = docker(
        "service",
        "inspect",
        f"{STACK}_web",
        "--format",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}} {{.UpdateStatus.State}}",
    ).stdout.split()
    assert spec[0].startswith(images[1])
    assert spec[1] == "completed"
    assert _replicas() == "3/3"
    assert failed == 0, codes
