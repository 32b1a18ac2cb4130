"""Outgoing webhook HTTP: one bounded POST to a vetted address (webhook_urls.py)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3 import exceptions as ux
from urllib3.connection import HTTPConnection, HTTPSConnection

from .webhook_urls import Target, UnsafeUrl, parse_target, resolve_public

SNIPPET_CHARS = 1024


@dataclass(frozen=True)
class Response:
    """One delivery attempt: status None when no HTTP answer came; latency_ms covers it all."""

    status: int | None
    latency_ms: float
    snippet: str  # the start of the response body, for the delivery log
    error: str | None

    @property
    def ok(self) -> bool:
        """A 2xx answer that arrived without error: the receiver has the event."""
        return self.error is None and self.status is not None and 200 <= self.status < 300


class _Cutoff:
    """Shuts a post's sockets at its deadline, whatever they are blocked in.

    Socket timeouts bound each recv, not the exchange: a receiver trickling a byte a second
    through the TLS handshake, the headers or the body never trips them.
    """

    def __init__(self, seconds: float, reason: str) -> None:
        self.reason = reason  # the Response's error when it fired
        self.fired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        """Cover a new connection; a dup, as TLS wrapping detaches the socket it wraps."""
        with self._lock:
            self._sockets.append(sock.dup())  # shutdown() on a dup ends the connection
            if self.fired:
                self._shut()

    def _fire(self) -> None:
        """The deadline passed."""
        with self._lock:
            self.fired = True
            self._shut()

    def _shut(self) -> None:
        """Shut every watched socket, which wakes whatever reads or writes it."""
        for sock in self._sockets:
            with contextlib.suppress(OSError):  # the peer may have closed it already
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop the timer and close the duplicates (the connections close themselves)."""
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()


class _WatchedHTTP(HTTPConnection):
    """An HTTPConnection whose socket its post's cutoff covers from the moment it exists."""

    def __init__(self, *args: Any, cutoff: _Cutoff, **kwargs: Any) -> None:
        """Keep the cutoff; the rest is HTTPConnection's."""
        super().__init__(*args, **kwargs)
        self.cutoff = cutoff

    def _new_conn(self) -> socket.socket:
        """Connect, and hand the socket to the cutoff before anything is read from it."""
        sock = super()._new_conn()
        self.cutoff.watch(sock)
        return sock


class _WatchedHTTPS(_WatchedHTTP, HTTPSConnection):
    """The same for HTTPS: the socket is covered before the TLS handshake starts."""


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout_seconds: float,
    allow_private: bool,
    max_response_bytes: int = 65536,
    tls_context: ssl.SSLContext | None = None,
) -> Response:
    """POST `body` to a webhook URL once; a network failure is a Response with `error`.

    Each connect and read waits at most timeout_seconds and the whole exchange, DNS
    included, is cut at twice that. No redirect is followed, nothing is retried, and at most
    max_response_bytes of the answer are read. tls_context (None: the system's trust store)
    is adjusted by urllib3, which checks the host name itself.
    """
    started = time.monotonic()
    try:
        target = parse_target(url, allow_private=allow_private)
        addresses = _resolve_within(target, allow_private, timeout_seconds)
    except UnsafeUrl as exc:
        return _answer(started, None, b"", f"refused: {exc}")
    except TimeoutError:
        return _answer(started, None, b"", "DNS lookup timed out")
    except OSError as exc:
        return _answer(started, None, b"", f"DNS lookup failed: {exc.strerror or exc}")
    budget = 2 * timeout_seconds
    cutoff = _Cutoff(budget - (time.monotonic() - started), f"deadline exceeded ({budget:.1f} s)")
    status, raw, error = None, b"", None
    try:
        response = _send(target, addresses, body, headers, cutoff, timeout_seconds, tls_context)
        status = response.status
        if 300 <= status < 400:
            error = f"redirect not followed ({status})"
        try:  # what is past the cap stays unread: closing the connection discards it
            raw = response.read(max_response_bytes, decode_content=False)
        finally:
            response.close()
        if cutoff.fired:  # a cut can look like the end of the body rather than an error
            error = cutoff.reason
    except (ux.HTTPError, OSError) as exc:  # http.client's errors arrive as ProtocolError
        error = cutoff.reason if cutoff.fired else _reason(exc)
    finally:
        cutoff.close()
    return _answer(started, status, raw, error)


def _resolve_within(target: Target, allow_private: bool, seconds: float) -> list[str]:
    """resolve_public, given up after `seconds`: getaddrinfo has no timeout of its own."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-dns")
    try:
        lookup = executor.submit(
            resolve_public, target.host, target.port, allow_private=allow_private
        )
        return lookup.result(timeout=seconds)
    finally:
        executor.shutdown(wait=False)  # a hung lookup ends on the resolver's own timeout


def _send(
    target: Target,
    addresses: list[str],
    body: bytes,
    headers: dict[str, str],
    cutoff: _Cutoff,
    timeout: float,
    tls_context: ssl.SSLContext | None,
) -> urllib3.BaseHTTPResponse:
    """POST to the first vetted address that takes the connection; the response unread.

    The connection goes to the address itself, never the name again: a second lookup could
    answer differently (DNS rebinding). The name goes in Host, SNI and the certificate check.
    """
    name = f"[{target.host}]" if ":" in target.host else target.host
    default_port = 443 if target.scheme == "https" else 80
    host_header = name if target.port == default_port else f"{name}:{target.port}"
    sent = {k: v for k, v in headers.items() if k.lower() != "host"} | {"Host": host_header}
    tls: dict[str, Any] = {}
    if target.scheme == "https":
        tls = {"cert_reqs": "CERT_REQUIRED", "ssl_context": tls_context}
        tls |= {"server_hostname": target.host, "assert_hostname": target.host}

    def attempt(address: str) -> urllib3.BaseHTTPResponse:
        """One connection to one address: no retry, no redirect."""
        pool_class = urllib3.HTTPSConnectionPool if tls else urllib3.HTTPConnectionPool
        pool = pool_class(address, target.port, cutoff=cutoff, **tls)
        pool.ConnectionCls = _WatchedHTTPS if tls else _WatchedHTTP
        limits = urllib3.Timeout(connect=timeout, read=timeout)
        return pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers=sent,
            retries=False,
            redirect=False,
            timeout=limits,
            preload_content=False,
            decode_content=False,
        )

    for address in addresses[:-1]:
        # a refused or unanswered connection sent nothing: the next address may answer
        with contextlib.suppress(ux.NewConnectionError, ux.ConnectTimeoutError):
            return attempt(address)
    return attempt(addresses[-1])


def _reason(exc: BaseException) -> str:
    """A one-line cause of a failed exchange, for the delivery log."""
    cause = exc.__cause__
    if isinstance(exc, ux.NewConnectionError):  # first: it subclasses ConnectTimeoutError
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        return f"connection failed: {cause.strerror if isinstance(cause, OSError) else exc}"
    if isinstance(exc, ux.ConnectTimeoutError):
        return "connect timeout"
    if isinstance(exc, ux.ReadTimeoutError):
        return "timeout"
    if isinstance(exc, ux.SSLError):
        inner = exc.args[0] if exc.args else exc
        detail = getattr(inner, "verify_message", None) or getattr(inner, "reason", None)
        return _one_line(f"TLS error: {detail or inner}")
    if isinstance(exc, ux.ProtocolError) and len(exc.args) == 2:
        inner = exc.args[1]
        if isinstance(inner, TimeoutError):
            return "timeout"
        detail = inner.strerror if isinstance(inner, OSError) and inner.strerror else inner
        return _one_line(f"connection closed: {detail}")
    return _one_line(f"{type(exc).__name__}: {exc}")


def _one_line(text: str) -> str:
    """Whitespace collapsed and at most 200 characters: a log field, not a report."""
    return " ".join(text.split())[:200]


def _answer(started: float, status: int | None, raw: bytes, error: str | None) -> Response:
    """A Response timed from `started`, its snippet decoded leniently from `raw`."""
    snippet = raw[: 4 * SNIPPET_CHARS].decode("utf-8", errors="replace")[:SNIPPET_CHARS]
    return Response(status, (time.monotonic() - started) * 1000, snippet, error)
