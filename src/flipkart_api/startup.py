"""What `flipkart-api serve` does before it becomes granian: check the port, arrange the announce.

Both happen in this process because after `exec` granian owns it: a port that is taken has to
be found before (granian would print a long traceback), and the "serving ... docs at ..." line
comes from a detached helper process that waits for the server to answer.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import time
import urllib.error
import urllib.request

# Exit code of `serve` when it cannot listen (port taken, address not on this host, port
# reserved): distinct from 1 (failure) and 2 (configuration error).
EXIT_CANNOT_LISTEN = 3
# How long the announcer waits for /livez before giving up silently.
ANNOUNCE_TIMEOUT_SECONDS = 60.0


class CannotListen(Exception):
    """The server could not bind its address; the message is one line for the user."""


def check_can_listen(host: str, port: int) -> None:
    """Bind (host, port) once and release it, or raise CannotListen saying why and what to do.

    SO_REUSEADDR as granian sets it: a socket in TIME_WAIT from a server stopped a moment ago
    is no conflict, a listening one is.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CannotListen(f"cannot listen on {host}: {exc.strerror}; set HOST=...") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CannotListen(
                    f"port {port} on {host} is in use; set PORT=... or stop the other server"
                ) from None
            raise CannotListen(
                f"cannot listen on {host} port {port}: {exc.strerror}; set HOST=... or PORT=..."
            ) from None


def local_url(host: str, port: int) -> str:
    """The URL a browser on this machine uses: all-interfaces addresses mean localhost."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a comparison, not a bind
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def announce_when_ready(url: str) -> None:
    """Fork a detached process that prints where to go once `url`/livez answers, then exits.

    Double fork: the announcer is not a child of the server (granian, after exec), which
    would never reap it; the intermediate child is reaped here before returning. The
    announcer gives up when the server process is gone or after ANNOUNCE_TIMEOUT_SECONDS.
    """
    server_pid = os.getpid()  # stays the server's PID across exec
    sys.stdout.flush()
    child = os.fork()
    if child:
        os.waitpid(child, 0)
        return
    try:
        if os.fork() == 0:
            _announce(url, server_pid)
    finally:
        os._exit(0)


def _announce(url: str, server_pid: int) -> None:
    """Poll /livez; print one line when it answers (in the announcer process)."""
    # No proxy: an http_proxy in the environment must not route a request to ourselves.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + ANNOUNCE_TIMEOUT_SECONDS
    while time.monotonic() < deadline and _alive(server_pid):
        try:
            with opener.open(f"{url}/livez", timeout=1) as response:
                if response.status == 200:
                    print(f"serving {url} — docs at {url}/docs", flush=True)
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    """True while process `pid` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (cannot happen for our own PID)
        return True
    return True
