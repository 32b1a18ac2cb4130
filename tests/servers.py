"""Start real, throwaway PostgreSQL and Redis servers for the test session.

The tests talk to the same kind of servers production uses instead of fakes, so
SQL dialect quirks, transactions and Redis commands behave exactly as deployed.
Each server lives in its own temp directory on a free port and is stopped by
the PID we started -- never by process name, which could hit someone else's.
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT = 10.0


class ServerUnavailable(Exception):
    """A server binary is missing, so the real-server tests cannot run."""


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


def _pid_alive(pid: int) -> bool:
    """Tell whether ``pid`` runs; an unreaped zombie counts as gone."""
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _as_postgres(cmd: list[str]) -> list[str]:
    """Wrap ``cmd`` so it runs as the postgres user when we are root.

    initdb and postgres refuse to run as root, so under root (CI containers)
    we drop privileges with runuser; as a normal user we run them directly.
    """
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@dataclass
class PostgresServer:
    """A running throwaway PostgreSQL cluster; its temp dir is ``datadir.parent``."""

    port: int
    datadir: Path
    socket_dir: Path
    pid: int
    durable: bool = False  # fsync and synchronous commit on, as in production

    @property
    def logfile(self) -> Path:
        """Server log written by pg_ctl."""
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

    def _start(self) -> None:
        """Start the cluster with pg_ctl and record the postmaster PID."""
        options = (
            f"-p {self.port} -k {shlex.quote(str(self.socket_dir))}"
            " -c listen_addresses=127.0.0.1 -c max_connections=200"
        )
        if not self.durable:  # pointless for throwaway test data, and slow
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        cmd = [_find_binary("pg_ctl"), "start", "-w", "-t", str(int(START_TIMEOUT))]
        cmd += ["-D", str(self.datadir), "-l", str(self.logfile), "-o", options]
        done = subprocess.run(_as_postgres(cmd), cwd=self.datadir.parent, capture_output=True)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            log = _tail(self.logfile)
            raise RuntimeError(f"PostgreSQL failed on port {self.port}:\n{output}\n{log}")
        # The first line of postmaster.pid is the PID of the postmaster itself.
        self.pid = int((self.datadir / "postmaster.pid").read_text().splitlines()[0])

    def _shutdown(self) -> None:
        """Stop the server but keep its data directory."""
        if not _pid_alive(self.pid):
            return
        # -W: pg_ctl only signals; we do the (bounded) waiting on the PID ourselves.
        cmd = [_find_binary("pg_ctl"), "stop", "-m", "fast", "-W", "-D", str(self.datadir)]
        subprocess.run(_as_postgres(cmd), cwd=self.datadir.parent, capture_output=True)
        deadline = time.monotonic() + 10
        while _pid_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _pid_alive(self.pid):
            # A hung server must not block the session; kill only our own PID.
            os.kill(self.pid, signal.SIGKILL)

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
    base = Path(tempfile.mkdtemp(prefix="flipkart-pg-"))
    base.chmod(0o755)  # the postgres user must be able to enter the dir we created
    server = PostgresServer(free_port(), base / "data", base / "sock", pid=0, durable=durable)
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
            done = subprocess.run(_as_postgres(cmd), cwd=base, capture_output=True, text=True)
            if done.returncode == 0:
                break
            errors += done.stdout + done.stderr  # initdb cleans up after itself
        else:
            raise RuntimeError(f"initdb failed:\n{errors}")
        server._start()
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    return server


def _redis_ping(port: int) -> bool:
    """Send PING over a raw socket; True once Redis answers +PONG."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


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
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        if _redis_ping(port):
            return process
        time.sleep(0.05)
    if process.poll() is None:
        process.kill()
    process.wait()
    raise RuntimeError(f"Redis failed to start on port {port}:\n{_tail(logfile)}")


def start_redis() -> RedisServer:
    """Start redis-server on a free port in a fresh temp directory."""
    workdir = Path(tempfile.mkdtemp(prefix="flipkart-redis-"))
    port = free_port()
    try:
        process = _spawn_redis(port, workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return RedisServer(port=port, pid=process.pid, process=process, workdir=workdir)
