"""Whatever a test session starts dies with it, however the session ends.

A run can end cleanly, by Ctrl-C, by SIGTERM (CI's timeout, a closed terminal) or by
SIGKILL. Fixtures' teardown covers only the first two, so two mechanisms back them up:

- every server is a direct child started in its own session (a terminal's Ctrl-C does
  not race our orderly stop) with PR_SET_PDEATHSIG, so the kernel signals it when the
  thread that started it ends, whatever killed that thread;
- one reaper process per session (tests/reaper.py) holds the read end of a pipe. When
  this process ends, the pipe closes: the reaper signals any server still running (by
  the PID we told it, checked against its start time so a reused PID is never hit) and
  deletes the session directory, under which every server's temp directory lives.

Stop what you started by PID, never by name: nothing here looks a process up by name.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
REAPER = Path(__file__).with_name("reaper.py")


def start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (ticks since boot), None if gone; a PID's identity."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A preexec_fn making the kernel send ``sig`` to the child when this thread ends.

    Linux ties the signal to the thread that forked, so it is set only from the main
    thread (a worker thread ending would kill a server still in use); other threads'
    children still have the reaper.
    """
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork, not in the child
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec


class Session:
    """This process's session directory and its reaper."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.dir = Path(tempfile.mkdtemp(prefix="flipkart-test-"))
        self.dir.chmod(0o755)  # the postgres user (we may be root) must enter it
        # Its own session: Ctrl-C and a timeout's group signal do not reach it, and it
        # ignores SIGINT/SIGTERM too, because its job starts when ours ends.
        self.reaper = subprocess.Popen(
            [sys.executable, "-I", str(REAPER), str(self.dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.lock = threading.Lock()

    def track(self, pid: int, sig: signal.Signals) -> None:
        """Have the reaper send ``sig`` (then SIGKILL) to ``pid`` if it outlives us."""
        started = start_time(pid)
        stdin = self.reaper.stdin
        if started is None or stdin is None:
            return
        with self.lock:
            stdin.write(f"{pid} {started} {int(sig)}\n".encode())
            stdin.flush()

    def close(self) -> None:
        """Let the reaper finish now (our servers are stopped) and wait for it."""
        if os.getpid() != self.owner or self.reaper.stdin is None:
            return  # a forked child must not close its parent's session
        self.reaper.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):  # then it goes on alone
            self.reaper.wait(timeout=30)


_session: Session | None = None
_session_lock = threading.Lock()


def session() -> Session:
    """This process's session, created on first use (per xdist worker, per bench run)."""
    global _session
    with _session_lock:
        if _session is None or _session.owner != os.getpid():
            _session = Session()
            atexit.register(_session.close)
        return _session


def mkdtemp(prefix: str) -> Path:
    """A fresh directory under the session directory (removed with it)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=session().dir))


def spawn(
    cmd: list[str], *, sig: signal.Signals, stdout: IO[bytes] | int | None = None, **kwargs: Any
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` as a direct child that gets ``sig`` when we end, tracked by the reaper."""
    reaper_session = session()
    process = subprocess.Popen(
        cmd,
        stdout=stdout,
        start_new_session=True,
        preexec_fn=die_with_parent(sig),  # kept trivial (threads): prctl, getppid
        **kwargs,
    )
    reaper_session.track(process.pid, sig)
    return process
