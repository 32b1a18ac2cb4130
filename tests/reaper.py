"""Run by tests/lifeline.py: clean up after a test process once it has ended, however.

Usage: python -I reaper.py SESSION_DIR, with "PID START_TIME SIGNAL" lines on stdin.
stdin reaches EOF when the test process ends (or closes it on a clean exit). Then each
listed process still running *as the same process* (same start time: PIDs are reused)
gets its signal, and SIGKILL if it is still there after GRACE seconds; then SESSION_DIR
is deleted. Standard library only, no imports from the project: it must run even when
the test process died half-way through importing things.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

GRACE = 5.0


def _start_time(pid: int) -> str | None:
    """The process's start time, or None when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if stat[0] == "Z" else stat[19]


def _signal(pid: int, started: str, sig: int) -> bool:
    """Send ``sig`` if ``pid`` is still the process we were told about; True if it was."""
    if _start_time(pid) != started:
        return False
    try:
        os.kill(pid, sig)
    except OSError:
        return False
    return True


def main(session_dir: str) -> None:
    """Wait for EOF, stop the listed processes that remain, delete the directory."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    tracked: list[tuple[int, str, int]] = []
    for line in sys.stdin:
        pid, started, signum = line.split()
        tracked.append((int(pid), started, int(signum)))
    alive = [(pid, started) for pid, started, signum in tracked if _signal(pid, started, signum)]
    deadline = time.monotonic() + GRACE
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [(pid, started) for pid, started in alive if _start_time(pid) == started]
    for pid, started in alive:
        _signal(pid, started, signal.SIGKILL)  # a stopped (SIGSTOP) server cannot do better
    time.sleep(0.2 if alive else 0)  # let the kernel release what they held
    shutil.rmtree(session_dir, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1])
