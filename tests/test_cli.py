"""The `flipkart-api` command as a user runs it: real processes, the real app server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import Message
from importlib.metadata import version
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text

from flipkart_api.migrate import head_revision

from . import servers

pytestmark = pytest.mark.slow  # every test runs the CLI (and the server) as processes
CLI = str(Path(sys.executable).parent / "flipkart-api")
STRONG_SECRET = "x" * 48


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a clean, explicit environment."""
    base = {"PATH": os.environ["PATH"], "HOME": str(cwd)}
    return subprocess.run(
        [CLI, *args],
        env=base | env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,  # never a terminal: nothing may prompt
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"APP_ENV": "production", "SECRET_KEY": STRONG_SECRET}, "DATABASE_URL"),
        ({"APP_ENV": "production", "DATABASE_URL": "postgresql://x@h/d"}, "SECRET_KEY"),
        (
            {"APP_ENV": "production", "DATABASE_URL": "postgresql://x@h/d", "SECRET_KEY": "short"},
            "SECRET_KEY",
        ),
        (
            {
                "APP_ENV": "production",
                "DATABASE_URL": "postgresql://x@h/d",
                "SECRET_KEY": "changeme",
            },
            "SECRET_KEY",
        ),
    ],
)
def test_production_refuses_insecure_config(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = run(["serve"], env, tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_seed_admin_are_idempotent(tmp_path: Path) -> None:
    for _ in range(2):
        assert run(["migrate"], {}, tmp_path).returncode == 0
    first = run(["seed", "--products", "25"], {}, tmp_path)
    second = run(["seed", "--products", "25"], {}, tmp_path)
    assert "seeded: 25 new products" in first.stdout
    assert "seeded: 0 new products" in second.stdout
    if_empty = run(["seed", "--if-empty", "--products", "50"], {}, tmp_path)
    assert "not seeding" in if_empty.stdout
    created = run(
        ["create-admin", "--email", "Boss@Example.in", "--password", "boss-pass-1"], {}, tmp_path
    )
    again = run(
        ["create-admin", "--email", "boss@example.in", "--password", "boss-pass-1"], {}, tmp_path
    )
    assert "created admin boss@example.in" in created.stdout
    assert "promoted admin boss@example.in" in again.stdout
    assert (
        run(["create-admin", "--email", "a@b.in", "--password", "short"], {}, tmp_path).returncode
        != 0
    )


def test_create_admin_keeps_passwords_checks_emails_and_finds_the_password(
    tmp_path: Path,
) -> None:
    assert run(["migrate"], {}, tmp_path).returncode == 0

    def stored_hash() -> str:
        with sqlite3.connect(tmp_path / "instance" / "flipkart.sqlite3") as conn:
            row = conn.execute("SELECT password_hash FROM users WHERE email = 'ops@example.in'")
            return str(row.fetchone()[0])

    admin = ["create-admin", "--email", "Ops@Example.in"]
    created = run(admin, {"ADMIN_PASSWORD": "from-the-env-1"}, tmp_path)  # no flag: the env
    assert "created admin ops@example.in" in created.stdout, created.stderr
    first = stored_hash()
    PasswordHasher().verify(first, "from-the-env-1")
    kept = run([*admin, "--password", "another-pass-1"], {}, tmp_path)
    assert (kept.returncode, stored_hash()) == (0, first)
    assert "password unchanged" in kept.stdout
    reset = run(
        [*admin, "--reset-password", "--password", "flag-wins-12"],
        {"ADMIN_PASSWORD": "x" * 9},
        tmp_path,
    )
    assert reset.returncode == 0, reset.stderr
    PasswordHasher().verify(stored_hash(), "flag-wins-12")
    for args, env, says in [
        (["--email", "not-an-email", "--password", "long-enough-1"], {}, "not a valid email"),
        (["--email", "ops@example", "--password", "long-enough-1"], {}, "not a valid email"),
        (["--email", "new@example.in"], {}, "a password is needed"),
        ([*admin[1:], "--reset-password"], {}, "a password is needed"),
        (["--email", "new@example.in"], {"ADMIN_PASSWORD": "short"}, "8 to 128 characters"),
    ]:
        result = run(["create-admin", *args], env, tmp_path)
        assert result.returncode == 2, (args, result.stdout)
        assert result.stderr.startswith("create-admin: ")
        assert says in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
    assert stored_hash().startswith("$argon2id$")


def test_quiet_steps_print_nothing(tmp_path: Path) -> None:
    """`make run` prints its own line per step; the commands add nothing when all is well."""
    for args in (["migrate", "--quiet"], ["seed", "--quiet", "--if-empty", "--products", "5"]):
        result = run(args, {}, tmp_path)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), args


def test_concurrent_migrations_on_postgres(
    pg_server: servers.PostgresServer, tmp_path: Path
) -> None:
    url = pg_server.create_database("migrate_race")
    env = {"DATABASE_URL": url, "SECRET_KEY": STRONG_SECRET}
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: run(["migrate"], env, tmp_path), range(4)))
    assert [r.returncode for r in results] == [0, 0, 0, 0], [r.stderr[-500:] for r in results]
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == head_revision()
        assert conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    engine.dispose()


def _get(url: str) -> tuple[int, Message, bytes]:
    """Status, headers (names case-insensitive, as in HTTP) and body."""
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own server
        return response.status, response.headers, response.read()


@contextlib.contextmanager
def serving(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[int, list[str]]]:
    """What `make run` does: migrate, seed if empty, serve. Yields (port, output lines).

    `args` go to `serve`; with a --port among them that port is used. The output (a file,
    so that the announcer may hold it open) is read when the server has stopped; the live
    text is in tmp_path/serve.log.
    """
    port = int(args[args.index("--port") + 1]) if "--port" in args else servers.free_port()
    env = {"HOST": "127.0.0.1", "PORT": str(port)} | (env or {})
    assert run(["migrate"], env, tmp_path).returncode == 0
    assert run(["seed", "--if-empty", "--products", "30"], env, tmp_path).returncode == 0
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [CLI, "serve", *args], env=base | env, cwd=tmp_path, stdout=out, stderr=out
        )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 30
        probe = {"PORT": str(port)}
        while run(["healthcheck"], probe, tmp_path).returncode != 0:
            assert proc.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the server did not become healthy"
            time.sleep(0.2)
        yield port, output
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        output.extend(log.read_text().splitlines())
        assert proc.returncode == 0, output[-50:]


@pytest.mark.slow  # starts its own app server
def test_serve_runs_the_server_and_stops_on_sigterm(tmp_path: Path) -> None:
    """Served like `make run`; a clean SIGTERM stop; access log on stdout."""
    with serving(tmp_path) as (port, output):
        root = f"http://127.0.0.1:{port}"
        assert json.loads(_get(root + "/")[2])["message"] == "From Database!"
        assert json.loads(_get(root + "/health")[2])["status"] == "healthy"
        assert _get(root + "/docs")[0] == 200
        status, headers, body = _get(root + "/api/v1/products?limit=5")
        assert status == 200
        assert headers["X-Cache"] == "MISS"
        assert len(json.loads(body)["items"]) == 5
        assert headers["X-Request-ID"]
    text = "\n".join(output)
    assert "development mode: SQLite" in text
    assert '"GET /api/v1/products HTTP/1.1" 200' in text  # access log on stdout
    # Without --announce and with stdout not a terminal (a container's log): no announcer.
    assert "serving http" not in text


@pytest.mark.slow  # starts its own app server
def test_readme_walkthrough_works(tmp_path: Path) -> None:
    """The README's curl walk-through, pasted into bash against a served instance."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    script = readme.split("### Walk-through", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    with serving(tmp_path) as (port, _):
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            env={"PATH": os.environ["PATH"], "BASE": f"http://127.0.0.1:{port}/api/v1"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert json.loads(lines[0])["role"] == "customer"
    assert json.loads(lines[2])["items"][0]["quantity"] == 2
    assert json.loads(lines[3])["status"] == "placed"
    assert json.loads(lines[4])["status"] == "cancelled"
    assert "samsung" in json.loads(lines[5])["completions"]
    typo = json.loads(lines[6])  # a typo, with the counts beside the page
    assert typo["items"][0]["brand"] == "Samsung"
    assert typo["facets"]["brand"][0]["brand"] == "Samsung"


@pytest.mark.slow  # starts its own app server, whose embedded worker delivers
def test_readme_webhook_walkthrough_shows_the_delivery_in_the_log(tmp_path: Path) -> None:
    """The README's two walk-throughs in one shell: the webhook's attempt is in the log."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    first = readme.split("### Walk-through", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    hooks = readme.split("### Walk-through: a webhook delivery", 1)[1]
    second = hooks.split("```sh\n", 1)[1].split("```", 1)[0]
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])  # `.venv/bin/flipkart-api`
    with serving(tmp_path, env={"WEBHOOK_ALLOW_PRIVATE": "true"}) as (port, _):
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", first + second],
            env={
                "PATH": os.environ["PATH"],
                "HOME": str(tmp_path),
                "BASE": f"http://127.0.0.1:{port}/api/v1",
                "HOOK_PORT": str(servers.free_port()),
            },
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert result.returncode == 0, result.stderr
    log = json.loads([line for line in result.stdout.splitlines() if line.strip()][-1])
    (delivery,) = log["items"]
    assert delivery["event_type"] == "order.placed"
    assert delivery["status"] == "pending"
    assert delivery["attempts"] == 1
    assert delivery["last_status_code"] == 501


def test_version_is_the_package_version(tmp_path: Path) -> None:
    result = run(["--version"], {}, tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"flipkart-api {version('flipkart-api')}\n"


@pytest.mark.parametrize("how", ["environment", "options"])
def test_a_busy_port_is_one_line_and_exit_code_3(tmp_path: Path, how: str) -> None:
    """Another server on the port: one line saying what to do, not granian's traceback."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        if how == "environment":
            result = run(["serve"], {"HOST": "127.0.0.1", "PORT": str(port)}, tmp_path)
        else:
            result = run(["serve", "--host", "127.0.0.1", "--port", str(port)], {}, tmp_path)
    assert result.returncode == 3, result.stderr[-2000:]
    assert result.stderr == (
        f"port {port} on 127.0.0.1 is in use; set PORT=... or stop the other server\n"
    )
    assert result.stdout == ""


def _listening_sockets() -> set[str]:
    """host:port of every listening IPv4 TCP socket on this machine (/proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A":  # LISTEN
            address, port = local.split(":")
            host = ".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0))
            found.add(f"{host}:{int(port, 16)}")
    return found


@pytest.mark.slow  # starts its own app server
def test_serve_options_and_the_announce_line(tmp_path: Path) -> None:
    """`serve --host --port --announce`, as `make run` runs it.

    The options win over HOST/PORT; one line says where the docs are once the server
    answers; the announcer is gone by then and the process serving is granian itself.
    """
    port, unused = servers.free_port(), servers.free_port()
    env = {"HOST": "0.0.0.0", "PORT": str(unused)}  # noqa: S104 - what the options replace
    args = ["--host", "127.0.0.1", "--port", str(port), "--announce"]
    line = f"serving http://127.0.0.1:{port} — docs at http://127.0.0.1:{port}/docs"
    log = tmp_path / "serve.log"
    with serving(tmp_path, *args, env=env) as (served, output):
        assert served == port
        assert _get(f"http://127.0.0.1:{port}/livez")[0] == 200
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", unused), timeout=1).close()
        listening = _listening_sockets()
        assert f"127.0.0.1:{port}" in listening, listening  # not 0.0.0.0
        deadline = time.monotonic() + 10
        while line not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        time.sleep(0.3)  # the announcer exits right after printing
        processes = _processes()
        assert [p for p in processes if f"--port {port} --announce" in p] == []
        assert [p for p in processes if "-m granian" in p and f"--port {port} " in p]
    assert output.count(line) == 1


def _processes() -> list[str]:
    """Command lines of every process on the machine."""
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return lines
