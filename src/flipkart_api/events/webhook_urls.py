"""Webhook URLs and addresses vetted against SSRF: what an endpoint may point at.

check_url when an endpoint is saved (no DNS); resolve_public before each request, whose
connection then goes to the vetted address (webhook_http.py), never to the name again.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
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


class Target(NamedTuple):
    """A vetted webhook URL, split for the request."""

    scheme: str
    host: str  # ASCII, lowercase, no brackets: what DNS, SNI and the certificate check get
    port: int
    path: str  # path and query: the request line (a fragment is never sent)


def check_url(url: str, *, allow_private: bool) -> None:
    """Raise UnsafeUrl unless `url` is a webhook URL we would send to; no DNS is done."""
    parse_target(url, allow_private=allow_private)


def parse_target(url: str, *, allow_private: bool) -> Target:
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
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


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
