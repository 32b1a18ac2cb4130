"""Start real, throwaway PostgreSQL and Redis servers for the test session.

The tests talk to the same kind of servers production uses instead of fakes, so
SQL dialect quirks, transactions and Redis commands behave exactly as deployed.
Each server is a direct child of this process (tests/lifeline.py: it dies with us,
even on SIGKILL) in its own temp directory under the session directory, on a free
port, and is stopped by the PID we started -- never by process name, which could hit
someone else's.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import lifeline

T = TypeVar("T")

START_TIMEOUT = 30.0  # generous: a busy 2-core machine; only a failing start waits it out


class ServerUnavailable(Exception):
    """A server binary is missing, so the real-server tests cannot run."""


class PortTaken(RuntimeError):
    """Someone bound the free port between our check and the server's bind: pick another."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _find_binary(name: str) -> str:
    """Locate ``name`` on PATH, else in the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    # Debian keeps the PostgreSQL tools off PATH, one directory per major version.
    bindirs = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")]
    bindirs = [p for p in bindirs if p.parent.name.isdigit()]
    for bindir in sorted(bindirs, key=lambda p: int(p.parent.name), reverse=True):
        if os.access(bindir / name, os.X_OK):
            return str(bindir / name)
    raise ServerUnavailable(
        f"{name!r} not found; install it with: apt-get install postgresql redis-server"
    )


def _tail(path: Path, lines: int = 20) -> str:
    """Return the last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _as_postgres() -> dict[str, Any]:
    """Popen arguments that run a command as the postgres user when we are root.

    initdb and postgres refuse to run as root, so under root (CI containers) the child
    drops privileges itself (no runuser in between: the server must be our direct child
    for the parent-death signal); as a normal user it runs as we are.
    """
    if os.geteuid() == 0:
        return {"user": "postgres", "group": "postgres", "extra_groups": []}
    return {}


def _wait(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str, log: Path
) -> None:
    """Poll ``ready()`` until true; if the process dies or time runs out, kill and raise."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        if ready():
            return
        time.sleep(0.05)
    if process.poll() is None:
        process.kill()
    process.wait()
    tail = _tail(log)
    # free_port() only says the port was free: another xdist worker or another program
    # on the machine may take it before the server binds it.
    error = PortTaken if "Address already in use" in tail else RuntimeError
    raise error(f"{what} failed to start:\n{tail}")


def on_a_free_port(start: Callable[[int], T], attempts: int = 3) -> T:
    """Call ``start(port)`` with a fresh free port, again if the port was taken meanwhile."""
    for attempt in range(attempts):
        try:
            return start(free_port())
        except PortTaken:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@dataclass
class PostgresServer:
    """A running throwaway PostgreSQL cluster; its temp dir is ``datadir.parent``."""

    port: int
    datadir: Path
    socket_dir: Path
    pid: int
    durable: bool = False  # fsync and synchronous commit on, as in production
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def logfile(self) -> Path:
        """Server log (the postmaster's stdout and stderr)."""
        return self.datadir.parent / "postgres.log"

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL for ``dbname``; trust auth means no password."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its URL."""
        import psycopg  # imported lazily so this module loads without it
        from psycopg import sql

        # CREATE DATABASE cannot run inside a transaction, hence autocommit.
        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def _ready(self) -> bool:
        """True once postmaster.pid says "ready" (what pg_ctl -w waits for)."""
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def _start(self) -> None:
        """Run the postmaster itself as our child (pg_ctl would daemonise it)."""
        cmd = [_find_binary("postgres"), "-D", str(self.datadir), "-p", str(self.port)]
        cmd += ["-k", str(self.socket_dir), "-c", "listen_addresses=127.0.0.1"]
        cmd += ["-c", "max_connections=200"]
        if not self.durable:  # pointless for throwaway test data, and slow
            cmd += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
            cmd += ["-c", "full_page_writes=off"]
        with self.logfile.open("ab") as log:
            # SIGQUIT when we die: immediate shutdown, the postmaster takes its backends along.
            self.process = lifeline.spawn(
                cmd,
                sig=signal.SIGQUIT,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.datadir.parent,
                **_as_postgres(),
            )
        self.pid = self.process.pid
        _wait(self._ready, self.process, f"PostgreSQL on port {self.port}", self.logfile)

    def _shutdown(self) -> None:
        """Stop the server (fast shutdown) but keep its data directory."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # "fast": roll back sessions, checkpoint
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # A hung (or SIGSTOPped) server must not block the session; our own PID only.
            self.process.kill()
            self.process.wait(timeout=10)

    def halt(self) -> None:
        """Stop the server but keep its data, so restart() can bring it back."""
        self._shutdown()

    def stop(self) -> None:
        """Stop the server and delete its temp directory."""
        self._shutdown()
        shutil.rmtree(self.datadir.parent, ignore_errors=True)

    def restart(self) -> None:
        """Stop (if running) and start again on the same port with the same data."""
        self._shutdown()
        self._start()


def start_postgres(durable: bool = False) -> PostgresServer:
    """Create a fresh cluster in a temp dir and start it on a free port."""
    initdb = _find_binary("initdb")
    base = lifeline.mkdtemp("pg-")
    base.chmod(0o755)  # the postgres user must be able to enter the dir we created
    server = PostgresServer(0, base / "data", base / "sock", pid=0, durable=durable)
    server.datadir.mkdir()
    server.socket_dir.mkdir()
    server.logfile.touch()
    if os.geteuid() == 0:
        for path in (server.datadir, server.socket_dir, server.logfile):
            shutil.chown(path, "postgres", "postgres")
    try:
        errors = ""
        # C.UTF-8 keeps upper()/lower() Unicode-aware; plain C exists everywhere.
        for locale in ("C.UTF-8", "C"):
            cmd = [initdb, "-D", str(server.datadir), "-A", "trust", "-U", "postgres"]
            cmd += ["--encoding=UTF8", f"--locale={locale}", "--no-sync"]
            done = subprocess.run(cmd, cwd=base, capture_output=True, text=True, **_as_postgres())
            if done.returncode == 0:
                break
            errors += done.stdout + done.stderr  # initdb cleans up after itself
        else:
            raise RuntimeError(f"initdb failed:\n{errors}")

        def start(port: int) -> None:
            server.port = port
            server._start()

        on_a_free_port(start)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    return server


def _redis_answers(port: int, pid: int) -> bool:
    """True once the Redis on ``port`` answers and is ours (INFO's process_id is ``pid``).

    Checking the PID means a Redis someone else runs on a port we thought free is not
    taken for ours while ours is still failing to bind it.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
            reply = b""
            while b"process_id:" not in reply or not reply.endswith(b"\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return False
    return f"process_id:{pid}\r\n".encode() in reply


@dataclass
class RedisServer:
    """A running throwaway Redis server."""

    port: int
    pid: int
    process: subprocess.Popen[bytes]
    workdir: Path  # holds the log; deleted by stop()

    def url(self, db: int = 0) -> str:
        """Redis URL for logical database ``db``."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def _shutdown(self) -> None:
        """Terminate our process: SIGTERM, then SIGKILL after 5 seconds."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def halt(self) -> None:
        """Stop the process but keep its directory, so restart() can bring it back."""
        self._shutdown()

    def stop(self) -> None:
        """Stop the server and delete its temp directory."""
        self._shutdown()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def restart(self) -> None:
        """Start a new process on the same port and wait until it answers."""
        self._shutdown()
        self.process = _spawn_redis(self.port, self.workdir)
        self.pid = self.process.pid


def _spawn_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """Run redis-server in the foreground and wait until it answers PING."""
    logfile = workdir / "redis.log"
    # No persistence: the data is throwaway and dump files would only slow us down.
    cmd = [_find_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1"]
    cmd += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(workdir)]
    with logfile.open("ab") as log:
        # SIGKILL when we die: the data is throwaway, and a SIGSTOPped Redis obeys only that.
        process = lifeline.spawn(
            cmd, sig=signal.SIGKILL, stdout=log, stderr=subprocess.STDOUT, cwd=workdir
        )
    _wait(lambda: _redis_answers(port, process.pid), process, f"Redis on port {port}", logfile)
    return process


def start_redis() -> RedisServer:
    """Start redis-server on a free port in a fresh temp directory."""
    workdir = lifeline.mkdtemp("redis-")

    def start(port: int) -> RedisServer:
        process = _spawn_redis(port, workdir)
        return RedisServer(port=port, pid=process.pid, process=process, workdir=workdir)

    try:
        return on_a_free_port(start)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
