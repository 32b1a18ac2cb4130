"""The `flipkart-api` command as a user runs it: real processes, the real app server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import Message
from pathlib import Path

import pytest
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
        [CLI, *args], env=base | env, cwd=cwd, capture_output=True, text=True, timeout=120
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


def test_concurrent_migrations_on_postgres(
    pg_server: servers.PostgresServer, tmp_path: Path
) -> None:
    url = pg_server.create_database("migrate_race")
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda _: run(["migrate"], {"DATABASE_URL": url}, tmp_path), range(4))
        )
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
def serving(tmp_path: Path) -> Iterator[tuple[int, list[str]]]:
    """What `make run` does: migrate, seed if empty, serve. Yields (port, output lines)."""
    port = servers.free_port()
    env = {"HOST": "127.0.0.1", "PORT": str(port)}
    assert run(["migrate"], env, tmp_path).returncode == 0
    assert run(["seed", "--if-empty", "--products", "30"], env, tmp_path).returncode == 0
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [CLI, "serve"],
        env=base | env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while run(["healthcheck"], env, tmp_path).returncode != 0:
            assert time.monotonic() < deadline, "the server did not become healthy"
            time.sleep(0.2)
        yield port, output
    finally:
        proc.send_signal(signal.SIGTERM)
        output.extend(proc.communicate(timeout=30)[0].decode().splitlines())
        assert proc.returncode == 0, output[-50:]


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
