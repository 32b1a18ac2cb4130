"""Fixtures for tests that need a real Docker engine (run by `make test-docker`).

Images come from the environment: CI sources the offline kit's env file so PYTHON_IMAGE,
POSTGRES_IMAGE, ... name local stand-ins; without it the official images are used.
Every stack is torn down (`down -v`) even when a test fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .. import servers

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "flipkart-api:test"


def docker(
    *args: str, check: bool = True, timeout: float = 600, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; failures show their output."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, **kw
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def http(
    url: str, timeout: float = 5, context: ssl.SSLContext | None = None
) -> tuple[int, dict[str, Any] | None]:
    """(status, JSON body or None) of a GET; connection errors are status 0."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:  # noqa: S310
            body = response.read()
            return response.status, json.loads(body) if body.startswith(b"{") else None
    except urllib.error.HTTPError as error:
        return error.code, None
    except (urllib.error.URLError, OSError):
        return 0, None


def wait_for(url: str, seconds: float = 90, context: ssl.SSLContext | None = None) -> float:
    """Seconds until url answers 200; fails after `seconds`."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if http(url, timeout=2, context=context)[0] == 200:
            return time.monotonic() - started
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer 200 within {seconds}s")


def run_dev_container(image: str, label: str) -> tuple[str, int]:
    """Start the image alone on the embedded default, on a free 127.0.0.1 port."""
    port = servers.free_port()
    name = f"fk-{label}-{port}"
    publish = f"127.0.0.1:{port}:5000"
    docker("run", "-d", "--name", name, "-p", publish, "-e", "APP_ENV=development", image)
    return name, port


def wait_healthy(name: str, seconds: float = 90) -> None:
    """Until Docker reports the container's HEALTHCHECK as healthy (fails if it stops)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = json.loads(docker("inspect", name).stdout)[0]["State"]
        if state["Health"]["Status"] == "healthy":
            return
        assert state["Running"], docker("logs", name, check=False).stdout[-2000:]
        time.sleep(0.5)
    raise AssertionError(f"{name} never became healthy")


@pytest.fixture(scope="session", autouse=True)
def engine() -> None:
    """A running engine, or a loud skip (a failure under CI=true)."""
    if shutil.which("docker") is None or docker("info", check=False).returncode != 0:
        message = "no Docker engine (run ../shared/docker/ensure-engine.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def image() -> str:
    """The product image, built once on PYTHON_IMAGE (the official slim image by default)."""
    args = ["build", "-t", IMAGE, "--build-arg", f"REVISION={_git_sha()}"]
    if os.environ.get("PYTHON_IMAGE"):
        args += ["--build-arg", f"PYTHON_IMAGE={os.environ['PYTHON_IMAGE']}"]
    docker(*args, str(ROOT), env=os.environ | {"DOCKER_BUILDKIT": "1"})
    return IMAGE


def node_exporter_image() -> str:
    """NODE_EXPORTER_IMAGE, or (offline CI: DEBIAN_IMAGE set) one built from Debian's package.

    Empty: the compose and stack files' own default (`${NODE_EXPORTER_IMAGE:-...}`).
    """
    if os.environ.get("NODE_EXPORTER_IMAGE") or not os.environ.get("DEBIAN_IMAGE"):
        return os.environ.get("NODE_EXPORTER_IMAGE", "")
    tag = "flipkart-test/node-exporter:debian"
    dockerfile = ROOT / "tests/container/monitoring/node-exporter.Dockerfile"
    docker("build", "-q", "-t", tag, "--build-arg", f"DEBIAN_IMAGE={os.environ['DEBIAN_IMAGE']}",
           "-f", str(dockerfile), str(dockerfile.parent), timeout=600)  # fmt: skip
    return tag


def _git_sha() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return result.stdout.strip() or "unknown"


@dataclass
class Stack:
    """A compose project on 127.0.0.1 ports, torn down by the fixture."""

    project: str
    files: list[str]
    env: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    _tls: ssl.SSLContext | None = None

    def compose(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """docker compose -p <project> -f <files> <args>."""
        files = [a for f in self.files for a in ("-f", str(ROOT / f))]
        if "down" in args and "-v" in args:
            self._tls = None  # the tls volume goes: the next `up` makes another certificate
        return docker("compose", "-p", self.project, *files, *args, check=check, timeout=timeout,
                      env=os.environ | self.env, cwd=ROOT)  # fmt: skip

    def certificate(self) -> str:
        """The PEM certificate nginx serves, read back from its container."""
        return self.compose("exec", "-T", "nginx", "cat", "/etc/nginx/tls/tls.crt").stdout

    def tls(self) -> ssl.SSLContext:
        """A client context that trusts exactly the stack's certificate (self-signed here)."""
        if self._tls is None:
            self._tls = ssl.create_default_context(cadata=self.certificate())
        return self._tls

    @property
    def base(self) -> str:
        """https://127.0.0.1:<nginx's TLS port> (the certificate names 127.0.0.1)."""
        return f"https://127.0.0.1:{self.ports['https']}"

    def get(self, path: str, timeout: float = 5) -> tuple[int, dict[str, Any] | None]:
        """`http()` of a path through nginx, over HTTPS, the certificate verified."""
        return http(self.base + path, timeout=timeout, context=self.tls())

    def wait_for(self, path: str, seconds: float = 90) -> float:
        """`wait_for()` of a path through nginx, over HTTPS."""
        return wait_for(self.base + path, seconds, context=self.tls())

    def containers(self, service: str) -> list[str]:
        """Names of the service's running containers."""
        out = self.compose("ps", "--format", "{{.Name}}", service).stdout
        return sorted(line for line in out.splitlines() if line.strip())


def _stack(
    request: pytest.FixtureRequest, project: str, files: list[str], env: dict[str, str]
) -> Iterator[Stack]:
    stack = Stack(project, files, env)
    failed_before = request.session.testsfailed
    try:
        yield stack
    finally:
        if request.session.testsfailed > failed_before:
            logs = stack.compose("logs", "--no-color", "--tail", "60", check=False).stdout
            print(logs[-8000:])
        stack.compose(
            "--profile", "tools", "--profile", "backup", "--profile", "monitoring", "down", "-v",
            "--remove-orphans",
            "--timeout", "5", check=False,
        )  # fmt: skip


@pytest.fixture
def dev_stack(request: pytest.FixtureRequest, image: str) -> Iterator[Stack]:
    """compose.yaml on a free 127.0.0.1 port."""
    env = {"WEB_PORT": str(servers.free_port()), "ADMINER_PORT": str(servers.free_port())}
    yield from _stack(request, "fk-dev-test", ["compose.yaml"], env)


def prod_stack_named(request: pytest.FixtureRequest, image: str, project: str) -> Iterator[Stack]:
    """compose.prod.yaml as `project`, with generated secrets, nginx on a free 127.0.0.1 port."""
    env = {
        "POSTGRES_USER": "flipkart",
        "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
        "POSTGRES_DB": "flipkart",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "REDIS_PASSWORD": secrets.token_urlsafe(24),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(24),
        "APP_IMAGE": image,
    }
    port, https, adminer = servers.free_port(), servers.free_port(), servers.free_port()
    env |= {"HTTP_PORT": f"127.0.0.1:{port}", "HTTPS_PORT": f"127.0.0.1:{https}"}
    env |= {"ADMINER_PORT": str(adminer)}
    for stack in _stack(request, project, ["compose.prod.yaml"], env):
        stack.ports = {"http": port, "https": https, "adminer": adminer}
        yield stack


@pytest.fixture(scope="module")
def prod_stack(request: pytest.FixtureRequest, image: str) -> Iterator[Stack]:
    """compose.prod.yaml with generated secrets, nginx on a free 127.0.0.1 port."""
    yield from prod_stack_named(request, image, "fk-prod-test")
