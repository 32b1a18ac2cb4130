"""Production hardening: no secret in the image, every container unprivileged.

The compose checks read both the rendered configuration (`docker compose config`) and the
running stack (`docker inspect`, and each process's /proc status on this host), so a
service that silently regained root or a capability fails here.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tarfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, Stack, docker, prod_stack_named

pytestmark = pytest.mark.timeout(900)
# Capabilities a service may add back after cap_drop: [ALL]. Empty: all run unprivileged.
CAPS_ALLOWED: dict[str, set[str]] = {}
ROOT_USERS = {"", "root", "0"}
# uid 0 with no capability at all, no network, one-shot: `certs` writes the TLS files into a
# fresh (root-owned) volume, group nginx (compose.prod.yaml says why).
ROOT_ALLOWED = {"certs": "0:101"}
EXAMPLE_PASSWORD = "change-me-to-a-long-random-password"  # .env.example's placeholder


def _is_root(user: str) -> bool:
    return user.split(":")[0] in ROOT_USERS


def _rendered() -> dict[str, Any]:
    """compose.prod.yaml with every profile, rendered as JSON (no engine needed)."""
    env = {"POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p", "POSTGRES_DB": "d", "SECRET_KEY": "k",
           "REDIS_PASSWORD": "r", "GRAFANA_ADMIN_PASSWORD": "g"}  # fmt: skip
    out = docker("compose", "-f", str(ROOT / "compose.prod.yaml"), "--profile", "tools",
                 "--profile", "backup", "--profile", "monitoring", "config", "--format", "json",
                 env=os.environ | env, cwd=ROOT).stdout  # fmt: skip
    config: dict[str, Any] = json.loads(out)
    return config


def test_rendered_config_hardens_every_service() -> None:
    services = _rendered()["services"]
    assert {"web", "worker", "migrate", "certs", "nginx", "db", "redis", "redis-limits", "adminer",
            "backup", "restore", "prometheus", "alertmanager", "grafana", "postgres-exporter",
            "redis-exporter", "nginx-exporter", "varnish-exporter",
            "node-exporter"} <= set(services)  # fmt: skip
    for name, svc in services.items():
        if name in ROOT_ALLOWED:
            assert svc["user"] == ROOT_ALLOWED[name], name
            assert svc["network_mode"] == "none", name
            assert svc.get("restart") == "no", name
        else:
            assert not _is_root(str(svc.get("user", ""))), f"{name} runs as root"
        assert "no-new-privileges:true" in svc.get("security_opt", []), name
        assert svc.get("cap_drop") == ["ALL"], name
        assert set(svc.get("cap_add", [])) <= CAPS_ALLOWED.get(name, set()), name
        assert svc.get("read_only") is True, f"{name} has a writable root filesystem"
        assert not svc.get("privileged"), name
        assert svc.get("network_mode") != "host", name
        assert svc.get("pid") != "host", name
        for volume in svc.get("volumes", []):
            assert "docker.sock" not in str(volume.get("source")), name


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, image: str) -> Iterator[Stack]:
    """The production stack, Adminer included, under a project of its own."""
    yield from prod_stack_named(request, image, "fk-harden-test")


def _proc_status(pid: str) -> dict[str, str]:
    """Fields of /proc/<pid>/status on this host ({} when the engine runs elsewhere)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_running_containers_are_unprivileged(stack: Stack) -> None:
    stack.compose("--profile", "tools", "up", "-d", "--wait", timeout=900)
    ids = stack.compose("--profile", "tools", "ps", "-q").stdout.split()
    # 3 web, worker, nginx, varnish, varnish-log, db, redis, redis-limits, adminer
    assert len(ids) == 11, ids
    for info in json.loads(docker("inspect", *ids).stdout):
        name, host = info["Name"], info["HostConfig"]
        assert not _is_root(info["Config"]["User"]), name
        assert "no-new-privileges:true" in (host["SecurityOpt"] or []), name
        assert host["CapDrop"] == ["ALL"], name
        assert not host["CapAdd"], name
        assert host["ReadonlyRootfs"] is True, name
        assert not host["Privileged"], name
        rows = docker("top", info["Id"], "-o", "pid,uid").stdout.splitlines()[1:]
        assert rows, name
        for pid, uid in (row.split() for row in rows):
            assert uid != "0", f"{name}: process {pid} runs as root"
            status = _proc_status(pid)
            if status:  # the engine is on this host: check what the kernel enforces
                assert int(status["CapEff"], 16) == 0, f"{name}: {pid} has capabilities"
                assert status["NoNewPrivs"].strip() == "1", name


def test_the_hardened_stack_still_works(stack: Stack) -> None:
    stack.wait_for("/livez")
    status, body = stack.get("/health")
    assert status == 200
    assert body is not None
    assert body["checks"] == {"database": "ok", "cache": "ok"}
    # Neither Redis can persist anything, even when asked: /data is not writable to them.
    for redis in ("redis", "redis-limits"):
        saved = stack.compose("exec", "-T", redis, "redis-cli", "SAVE").stdout.strip()
        assert saved.startswith("ERR"), f"{redis} wrote a snapshot: {saved}"
    # Adminer logs in (its PHP session is written to a tmpfs) and lists the tables.
    jar = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    form = {"auth[driver]": "pgsql", "auth[server]": "db", "auth[username]": "flipkart",
            "auth[password]": stack.env["POSTGRES_PASSWORD"], "auth[db]": "flipkart"}  # fmt: skip
    adminer = f"http://127.0.0.1:{stack.ports['adminer']}/"
    with jar.open(adminer, data=urllib.parse.urlencode(form).encode(), timeout=30) as page:
        assert "Logout" in page.read().decode(), "Adminer login did not stick"
    # The one-shot backup container: postgres, no capabilities, nothing writable.
    probe = stack.compose("--profile", "backup", "run", "--rm", "-T", "backup", "sh", "-c",
                          "id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status;"
                          " touch /probe 2>/dev/null && echo writable || echo read-only",
                          ).stdout.split()  # fmt: skip
    assert probe[0] != "0"
    assert probe[1:] == ["CapEff:", "0000000000000000", "NoNewPrivs:", "1", "read-only"]


def test_redis_wants_its_password_which_is_on_no_command_line(stack: Stack) -> None:
    stack.compose("--profile", "tools", "up", "-d", "--wait", timeout=900)
    for redis in ("redis", "redis-limits"):
        anonymous = stack.compose("exec", "-T", redis, "sh", "-c",
                                  "unset REDISCLI_AUTH; redis-cli ping").stdout  # fmt: skip
        assert "NOAUTH" in anonymous, f"{redis} answers without its password: {anonymous}"
        assert stack.compose("exec", "-T", redis, "redis-cli", "ping").stdout.strip() == "PONG"
    # What `ps` on the host shows: every process of every container, full command lines.
    secret_values = [v for k, v in stack.env.items() if "PASSWORD" in k or "SECRET" in k]
    ids = stack.compose("--profile", "tools", "ps", "-q").stdout.split()
    for container in ids:
        lines = docker("top", container, "-o", "pid,args").stdout
        for value in secret_values:
            assert value not in lines, f"a secret is on a command line in {container}:\n{lines}"


# -- the image --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def canaries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    """The image built from a checkout cluttered with secrets: (tag, secret values).

    A developer's tree holds .env, Swarm secret files, keys, backups and the SQLite file;
    none may reach the image, whatever the Dockerfile or .dockerignore become.
    """
    token = secrets.token_hex(12)
    context = tmp_path_factory.mktemp("context")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, context / name)
    values = [f"canary-{what}-{token}" for what in ("env", "pg", "swarm", "key", "dump", "db")]
    files = {
        ".env": f"SECRET_KEY={values[0]}\nPOSTGRES_PASSWORD={values[1]}\n",
        "src/flipkart_api/.env": f"SECRET_KEY={values[0]}\n",
        "secrets/secret_key": values[2],
        "id_ed25519": f"-----BEGIN OPENSSH PRIVATE KEY-----\n{values[3]}\n"
        "-----END OPENSSH PRIVATE KEY-----\n",
        "backups/20260101T000000Z.dump": values[4],
        "instance/flipkart.sqlite3": values[5],
    }
    for name, text in files.items():
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        (context / name).write_text(text)
    tag = f"flipkart-api:canary-{token[:8]}"
    args = ["build", "-t", tag]
    if os.environ.get("PYTHON_IMAGE"):
        args += ["--build-arg", f"PYTHON_IMAGE={os.environ['PYTHON_IMAGE']}"]
    docker(*args, str(context), env=os.environ | {"DOCKER_BUILDKIT": "1"})
    try:
        yield tag, values
    finally:
        docker("rmi", tag, check=False)


def test_image_metadata_holds_no_secret(image: str, canaries: tuple[str, list[str]]) -> None:
    tag, values = canaries
    for name in (image, tag):
        history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", name).stdout
        config = json.loads(docker("image", "inspect", name).stdout)[0]["Config"]
        text = history + json.dumps(config)
        for secret in [*values, EXAMPLE_PASSWORD]:
            assert secret not in text, f"{name}: {secret} in history or config"
        for entry in config["Env"] or []:
            key = entry.split("=", 1)[0]
            assert not re.search(r"SECRET|PASSW|TOKEN|PRIVATE|API_KEY", key), entry


def test_image_layers_hold_no_secret(canaries: tuple[str, list[str]], tmp_path: Path) -> None:
    tag, values = canaries
    base = os.environ.get("PYTHON_IMAGE", "python:3.13-slim")
    base_layers = json.loads(docker("image", "inspect", base).stdout)[0]["RootFS"]["Layers"]
    archive = tmp_path / "image.tar"
    docker("save", "-o", str(archive), tag, timeout=300)
    needles = re.compile(b"|".join(re.escape(v.encode()) for v in [*values, EXAMPLE_PASSWORD]))
    forbidden_names = {".env", "id_ed25519", "id_rsa", "secret_key", "flipkart.sqlite3"}
    found: list[str] = []
    scanned = 0
    with tarfile.open(archive) as image_tar:
        manifest = json.load(image_tar.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        ours = manifest["Layers"][len(base_layers) :]  # layers this Dockerfile added
        assert ours, "no layers above the base image?"
        for layer_name in manifest["Layers"]:
            layer_file = image_tar.extractfile(layer_name)
            assert layer_file is not None
            with tarfile.open(fileobj=layer_file) as layer:
                for member in layer:
                    path = member.name
                    if Path(path).name in forbidden_names or path.endswith(".dump"):
                        found.append(f"{layer_name}: file {path}")
                    if not member.isfile():
                        continue
                    data = layer.extractfile(member).read()  # type: ignore[union-attr]
                    scanned += len(data)
                    if needles.search(data):
                        found.append(f"{layer_name}: {path} holds a secret")
                    if layer_name in ours and b"PRIVATE KEY-----" in data:
                        found.append(f"{layer_name}: {path} holds a private key")
    print(f"\nscanned {scanned / 1e6:.0f} MB in {len(manifest['Layers'])} layers")
    assert not found, found
