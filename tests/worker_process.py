"""`flipkart-api worker` as a real process, for the slow tests, the drills and the bench."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .faults.stack import CLI


@dataclass
class WorkerProcess:
    """One worker in its own process group, its log in a file, its probes on `port`."""

    port: int
    env: dict[str, str]
    logfile: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, ready_within: float = 30) -> None:
        """Start and wait until /readyz answers 200."""
        with self.logfile.open("ab") as log:
            self.process = subprocess.Popen(
                [CLI, "worker"],
                env=self.env | {"WORKER_HEALTH_PORT": str(self.port)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + ready_within
        while self.probe("/readyz") != 200:
            if self.process.poll() is not None:
                raise AssertionError(f"the worker exited: {self.log()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker was not ready: {self.log()[-2000:]}")
            time.sleep(0.1)

    def probe(self, path: str) -> int | None:
        """The status of GET path on the worker's health port (None: no answer)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return None

    def metrics(self) -> str:
        """The /metrics text."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def log(self) -> str:
        """What it wrote so far."""
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    @property
    def running(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crashed container or an OOM kill."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, seconds: float = 40) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds until it exited)."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=seconds)
        return code, time.monotonic() - started

    def stop(self) -> None:
        """Graceful stop, SIGKILL if it hangs; safe to call twice."""
        if not self.running:
            return
        try:
            self.terminate()
        except subprocess.TimeoutExpired:
            self.kill()
