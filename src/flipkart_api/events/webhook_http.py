"""Outgoing webhook HTTP: URLs and addresses vetted against SSRF, and one bounded POST."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import urllib3
from urllib3 import exceptions as ux
from urllib3.connection import HTTPConnection, HTTPSConnection

MAX_URL_LENGTH = 2048
SNIPPET_CHARS = 1024
_HOSTNAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_THIS_NETWORK, _SHARED = ipaddress.ip_network("0.0.0.0/8"), ipaddress.ip_network("100.64.0.0/10")
_PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
_PRIVATE.append(ipaddress.ip_network("fc00::/7"))  # IPv6 unique local addresses
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
# In order: the first that holds names the refusal. Explicit checks, not is_global alone:
# it passes most multicast (224.0.0.1, ff02::1), site-local fec0::/10 and 6to4 or NAT64
# forms of private IPv4 addresses (2002:7f00:1::, 64:ff9b::a00:1).
_UNFIT: list[tuple[Callable[[_Address], bool], str]] = [
    (lambda a: a.is_unspecified or a in _THIS_NETWORK, "an unspecified address (this host)"),
    (lambda a: a.is_loopback, "a loopback address"),
    (lambda a: a in _METADATA, "a link-local address (the cloud metadata service)"),
    (lambda a: a.is_link_local, "a link-local address"),
    (lambda a: a.is_multicast, "a multicast address"),
    (lambda a: a in _SHARED, "in the shared address space 100.64.0.0/10"),
    (lambda a: any(a in network for network in _PRIVATE), "a private address"),
    (lambda a: a.is_reserved, "a reserved address"),
    (lambda a: isinstance(a, ipaddress.IPv6Address) and a.is_site_local, "a site-local address"),
    (lambda a: not a.is_global, "not a globally routable address"),
]


class UnsafeUrl(ValueError):
    """A webhook URL or address we refuse to send to; the message says why, in one line."""


class _Target(NamedTuple):
    """A vetted webhook URL, split for the request."""

    scheme: str
    host: str  # ASCII, lowercase, no brackets: what DNS, SNI and the certificate check get
    port: int
    path: str  # path and query: the request line (a fragment is never sent)


def check_url(url: str, *, allow_private: bool) -> None:
    """Raise UnsafeUrl unless `url` is a webhook URL we would send to; no DNS is done."""
    _parse(url, allow_private=allow_private)


def _parse(url: str, *, allow_private: bool) -> _Target:
    """Split a webhook URL into what post() needs, refusing what check_url refuses."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise UnsafeUrl("URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unbalanced [IPv6 literal
        raise UnsafeUrl(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl(f"scheme must be http or https, not {parts.scheme!r}")
    if "@" in parts.netloc:
        raise UnsafeUrl("credentials in the URL (user:pass@) are not allowed")
    if not parts.hostname:
        raise UnsafeUrl("URL has no host")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise UnsafeUrl("port must be a number from 1 to 65535")
    host = _ascii_host(parts.hostname)
    literal = _ip_literal(host)
    if not allow_private and literal is not None and (kind := _unfit(literal)):
        raise UnsafeUrl(f"{literal} is {kind}")
    if not allow_private and (host == "localhost" or host.endswith(".localhost")):
        raise UnsafeUrl(f"{host} is a loopback name")  # RFC 6761: never resolved elsewhere
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def _ascii_host(hostname: str) -> str:
    """The host as DNS and TLS want it: IDNA A-labels, no trailing dot; else UnsafeUrl."""
    if ":" in hostname:  # an IPv6 literal, checked by _ip_literal
        return hostname
    try:
        host = hostname.removesuffix(".").encode("idna").decode("ascii")
    except UnicodeError:
        host = ""
    if not _HOSTNAME.fullmatch(host):
        raise UnsafeUrl(f"{hostname!r} is not a valid host name")
    return host


def _ip_literal(host: str) -> _Address | None:
    """The address a host spells, if it is one; legacy IPv4 forms (127.1) included."""
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host)
    try:  # getaddrinfo would accept 2130706433 or 0x7f.1 as 127.0.0.1, so they are IPs here
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _unfit(address: _Address) -> str | None:
    """What makes an address no place for a webhook (a noun phrase), or None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        # ::ffff:a.b.c.d, 6to4 and NAT64 reach the IPv4 address inside: judge that one
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            kind = _unfit(inner)
            return f"an IPv6 form of {inner}, {kind}" if kind else None
    return next((kind for unfit, kind in _UNFIT if unfit(address)), None)


def resolve_public(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses `host` resolves to; UnsafeUrl if any is not public, OSError if no lookup.

    One unfit address refuses them all: otherwise the name's owner picks which we reach.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for text in addresses:
        address = ipaddress.ip_address(text.partition("%")[0])  # without an IPv6 scope
        if not allow_private and (kind := _unfit(address)):
            raise UnsafeUrl(f"{address} is {kind}")
    return addresses


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
        target = _parse(url, allow_private=allow_private)
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


def _resolve_within(target: _Target, allow_private: bool, seconds: float) -> list[str]:
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
    target: _Target,
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
