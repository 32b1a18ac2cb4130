"""Password hashing is bounded: a login burst keeps a replica in its memory; old hashes upgrade."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import secrets
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from flipkart_api.auth.models import User
from flipkart_api.db import session
from flipkart_api.migrate import upgrade
from flipkart_api.uow import UnitOfWork

from . import servers
from .test_cli import CLI

# Starts server processes of its own: the slow tier (README, Development).
pytestmark = pytest.mark.slow

REPLICA_LIMIT_BYTES = 512 * 1000 * 1000  # the 512 MB limit of a production replica
BURST = 32  # concurrent logins: half known users, half unknown emails
ROUNDS = 3
Result = tuple[int, dict[str, str], bytes]  # status, headers, body
PASSWORD = "burst-pass-1"


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def tree_rss(root: int) -> int:
    """Summed resident memory of `root` and all its descendants, in bytes."""
    tree, pending, total = _children(), [root], 0
    while pending:
        pid = pending.pop()
        pending.extend(tree.get(pid, []))
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def _lower(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header names lower-cased: HTTP names are case-insensitive (granian sends lower case)."""
    return {name.lower(): value for name, value in headers}


def _post(port: int, path: str, body: dict[str, str]) -> Result:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, _lower(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers.items()), error.read()


def _burst(port: int, logins: list[tuple[str, bool]]) -> list[tuple[bool, Result]]:
    """Every login at once (a barrier releases them together): (email exists, response)."""
    start = threading.Barrier(len(logins))

    def login(item: tuple[str, bool]) -> tuple[bool, Result]:
        email, exists = item
        start.wait()
        return exists, _post(port, "/api/v1/auth/token", {"email": email, "password": PASSWORD})

    with ThreadPoolExecutor(len(logins)) as pool:
        return list(pool.map(login, logins))


@pytest.fixture
def replica(
    pg_server: servers.PostgresServer, redis_server: servers.RedisServer, tmp_path: Path
) -> Iterator[tuple[int, int]]:
    """`flipkart-api serve` as production runs it (granian, 2 workers x 4 threads): (port, pid)."""
    url = pg_server.create_database(f"auth_memory_{secrets.token_hex(4)}")
    upgrade(url)
    port = servers.free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "APP_ENV": "production",
        "DATABASE_URL": url,
        "REDIS_URL": redis_server.url(db=4),  # not the db other tests flush
        "SECRET_KEY": secrets.token_urlsafe(48),
        "RATELIMIT_ENABLED": "false",  # one client address sends the whole burst
        "LOG_LEVEL": "WARNING",
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen([CLI, "serve"], env=env, cwd=tmp_path, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=2)
                break
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_login_burst_keeps_a_replica_under_its_memory_limit(
    replica: tuple[int, int], record_property: pytest.RecordProperty
) -> None:
    port, pid = replica
    known = [f"user{i}@example.in" for i in range(BURST // 2)]
    for email in known:
        body = {"email": email, "password": PASSWORD, "name": "U"}
        assert _post(port, "/api/v1/auth/register", body)[0] == 201
    logins = [(email, True) for email in known]
    logins += [(f"nobody{i}@example.in", False) for i in range(BURST // 2)]

    idle, peak, done = tree_rss(pid), 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(pid))
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    results: list[tuple[bool, Result]] = []
    try:
        for _ in range(ROUNDS):
            results += _burst(port, logins)
    finally:
        done.set()
        sampler.join()
    statuses = [(exists, status) for exists, (status, _, _) in results]
    counts = collections.Counter(status for _, status in statuses)
    print(
        f"\nlogin burst: idle {idle / 1e6:.0f} MB, peak {peak / 1e6:.0f} MB (summed RSS), {counts}"
    )
    record_property("peak_rss_mb", round(peak / 1e6))
    assert peak < REPLICA_LIMIT_BYTES, f"peak {peak / 1e6:.0f} MB, {statuses}"
    for exists, (status, headers, body) in results:
        assert status in ((200, 503) if exists else (401, 503)), (exists, status, body)
        if status == 503:
            assert headers["content-type"] == "application/problem+json", body
            assert headers["retry-after"] == "1"
    assert (True, 200) in statuses, statuses  # not a wall of 503s
    assert (False, 401) in statuses, statuses


def test_a_busy_hasher_answers_503_at_once(app: Flask, client: FlaskClient) -> None:
    user = {"email": "busy@example.in", "password": "busy-pass-1", "name": "B"}
    assert client.post("/api/v1/auth/register", json=user).status_code == 201
    login = {"email": user["email"], "password": user["password"]}
    unknown = dict(login, email="nobody@example.in")
    hashing = app.extensions["password_hashing"]
    with contextlib.ExitStack() as slots:
        for _ in range(app.config["SETTINGS"].password_hash_concurrency):
            slots.enter_context(hashing.slot())  # every slot held, as by running hashes
        for path, body in [
            ("/api/v1/auth/token", login),
            ("/api/v1/auth/token", unknown),
            ("/api/v1/auth/register", dict(user, email="second@example.in")),
        ]:
            started = time.monotonic()
            response = client.post(path, json=body)
            assert time.monotonic() - started < 0.5  # refused, not queued
            assert response.status_code == 503, (path, response.get_json())
            assert response.mimetype == "application/problem+json"
            assert response.headers["Retry-After"] == "1"
    assert client.post("/api/v1/auth/token", json=login).status_code == 200


def test_old_argon2_hashes_are_upgraded_at_login(app: Flask, client: FlaskClient) -> None:
    user = {"email": "old@example.in", "password": "old-pass-12", "name": "O"}
    assert client.post("/api/v1/auth/register", json=user).status_code == 201
    old_hash = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(user["password"])
    with app.app_context(), UnitOfWork(session()):
        session().execute(
            update(User).where(User.email == user["email"]).values(password_hash=old_hash)
        )
    login = {"email": user["email"], "password": user["password"]}
    assert client.post("/api/v1/auth/token", json=login).status_code == 200
    with app.app_context():
        stored = session().scalar(select(User.password_hash).where(User.email == user["email"]))
    assert stored is not None
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert client.post("/api/v1/auth/token", json=login).status_code == 200  # still valid
