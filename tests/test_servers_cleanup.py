"""An interrupted run leaves no PostgreSQL, Redis or temp directory behind.

Each case runs a one-test pytest session in a subprocess, with this suite's own session
fixtures (tests/conftest.py as a plugin), that starts the servers, records their PIDs and
directories, and waits. Once the servers are up the case ends the session the way people
and CI do -- SIGTERM, Ctrl-C (SIGINT to the process group), SIGKILL, the same under
pytest-xdist for a worker and for the controller -- and then the recorded servers must be
gone and their directories deleted within a few seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .lifeline import start_time

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(240)]
ROOT = Path(__file__).resolve().parents[1]
GONE_WITHIN = 10.0  # seconds after the session process ended
HOLD = """
import json, os, time
from pathlib import Path


def test_hold(pg_server, redis_server):
    report = {
        "pytest": os.getpid(),
        "servers": [pg_server.pid, redis_server.pid],
        "dirs": [str(pg_server.datadir.parent), str(redis_server.workdir)],
    }
    path = Path(os.environ["CLEANUP_REPORT"])
    path.with_suffix(".tmp").write_text(json.dumps(report))
    path.with_suffix(".tmp").rename(path)  # whole or absent, never half-written
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has released everything but its PID: gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(path: Path, session: subprocess.Popen[bytes], seconds: float) -> dict[str, Any]:
    """The report of the held session, once its servers are up."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert session.poll() is None, session.communicate()[0].decode(errors="replace")
        assert time.monotonic() < deadline, "the servers did not come up"
        time.sleep(0.1)
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def _interrupt(case: str, session: subprocess.Popen[bytes], report: dict[str, Any]) -> None:
    """End the held session as ``case`` says."""
    if case == "ctrl-c":  # the terminal signals the whole foreground process group
        os.killpg(session.pid, signal.SIGINT)
    elif case == "sigkill":
        session.kill()
    elif case == "xdist-worker-sigterm":
        os.kill(report["pytest"], signal.SIGTERM)
    else:  # sigterm, xdist-sigterm: the session's (controller's) process only
        session.terminate()


@pytest.mark.parametrize(
    "case", ["sigterm", "ctrl-c", "sigkill", "xdist-worker-sigterm", "xdist-sigterm"]
)
def test_interrupted_session_leaves_nothing_behind(case: str, tmp_path: Path) -> None:
    (tmp_path / "test_hold.py").write_text(HOLD)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    report_path = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider"]
    cmd += ["-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), "-q", "-s"]
    cmd += ["-n", "1"] if case.startswith("xdist") else ["-p", "no:xdist"]
    env = os.environ | {"PYTHONPATH": str(ROOT), "CLEANUP_REPORT": str(report_path)}
    session = subprocess.Popen(
        [*cmd, str(tmp_path / "test_hold.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal's job would be
    )
    report: dict[str, Any] = {"servers": [], "dirs": []}
    started: dict[int, str | None] = {}
    try:
        report = _wait_for(report_path, session, seconds=120)
        started = {pid: start_time(pid) for pid in report["servers"]}
        assert all(_alive(pid) for pid in report["servers"])
        _interrupt(case, session, report)
        output = session.communicate(timeout=90)[0].decode(errors="replace")
        deadline = time.monotonic() + GONE_WITHIN
        while time.monotonic() < deadline:
            left = [p for p in report["servers"] if _alive(p)] + [
                d for d in report["dirs"] if Path(d).exists()
            ]
            if not left:
                break
            time.sleep(0.1)
        assert not left, f"left behind after {case}: {left}\n{output[-3000:]}"
    finally:
        # Whatever the outcome, take down what the held session started (by PID, and only
        # while it is still the process it reported), so a failure here leaks nothing.
        if session.poll() is None:
            session.kill()
            session.wait()
        for pid, when in started.items():
            if when is not None and start_time(pid) == when and _alive(pid):
                os.kill(pid, signal.SIGKILL)
        for directory in report["dirs"]:
            shutil.rmtree(directory, ignore_errors=True)
