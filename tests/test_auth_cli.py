"""The account commands on a terminal: create-admin's password prompt, and set-role."""

from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text

from .test_cli import CLI, run

# Starts server processes of its own: the slow tier (README, Development).
pytestmark = pytest.mark.slow


def _read_until(fd: int, marker: bytes, seen: bytearray, timeout: float = 60) -> None:
    """Read the terminal's output until `marker` appears (or fail after `timeout`)."""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {marker!r} in {bytes(seen)!r}"
        if select.select([fd], [], [], remaining)[0]:
            try:
                seen += os.read(fd, 1024)
            except OSError:  # the process closed the terminal
                break


def _on_a_terminal(args: list[str], cwd: Path, answers: list[tuple[bytes, str]]) -> tuple[int, str]:
    """Run the CLI on a new pseudo-terminal, typing each answer once its prompt shows."""
    primary, secondary = os.openpty()
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd)}
    proc = subprocess.Popen(
        [CLI, *args],
        env=env,
        cwd=cwd,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,  # no controlling terminal but this one: never the runner's
    )
    os.close(secondary)
    seen = bytearray()
    try:
        for prompt, answer in answers:
            _read_until(primary, prompt, seen)
            os.write(primary, answer.encode() + b"\n")
        code = proc.wait(timeout=120)
        _read_until(primary, b"(id " if code == 0 else b"differ", seen, timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    return code, seen.decode(errors="replace")


def _stored_hash(cwd: Path, email: str) -> str:
    engine = create_engine(f"sqlite:///{cwd / 'instance' / 'flipkart.sqlite3'}")
    with engine.connect() as conn:
        found = conn.scalar(text("SELECT password_hash FROM users WHERE email = :e"), {"e": email})
    engine.dispose()
    return str(found)


def test_create_admin_asks_for_the_password_twice_on_a_terminal(tmp_path: Path) -> None:
    assert run(["migrate"], {}, tmp_path).returncode == 0
    admin = ["create-admin", "--email", "root@example.in"]
    first, again = b"Password: ", b"Password (again): "
    code, output = _on_a_terminal(admin, tmp_path, [(first, "typed-pass-1"), (again, "typed-2")])
    assert code == 2
    assert "the two passwords differ" in output
    answers = [(first, "typed-pass-1"), (again, "typed-pass-1")]
    code, output = _on_a_terminal(admin, tmp_path, answers)
    assert code == 0, output
    assert "created admin root@example.in" in output
    assert "typed-pass-1" not in output  # not echoed
    PasswordHasher().verify(_stored_hash(tmp_path, "root@example.in"), "typed-pass-1")


def test_set_role_changes_the_role_and_says_so(tmp_path: Path) -> None:
    assert run(["migrate"], {}, tmp_path).returncode == 0
    env = {"ADMIN_PASSWORD": "boss-pass-12"}
    assert run(["create-admin", "--email", "boss@example.in"], env, tmp_path).returncode == 0
    demoted = run(["set-role", "--email", "Boss@Example.in", "--role", "customer"], {}, tmp_path)
    assert demoted.returncode == 0, demoted.stderr
    assert "boss@example.in is now customer; their tokens are revoked" in demoted.stdout
    again = run(["set-role", "--email", "boss@example.in", "--role", "customer"], {}, tmp_path)
    assert "already customer" in again.stdout
    unknown = run(["set-role", "--email", "nobody@example.in", "--role", "admin"], {}, tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr == "set-role: No user with email nobody@example.in.\n"
