"""Signed webhook POSTs against real HTTP(S) receivers on 127.0.0.1 and ::1.

Receivers are http.server threads on port 0; allow_private=True lets post() reach them. The
SSRF tests run with allow_private=False and check that a receiver on the refused address
got nothing. A few tests replace socket.getaddrinfo to give a name the answers they need.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks

from flipkart_api.events.signing import USER_AGENT, new_secret, signed_headers
from flipkart_api.events.webhook_http import post
from flipkart_api.events.webhook_urls import UnsafeUrl, check_url, resolve_public

from .conftest import system_binary

pytestmark = pytest.mark.timeout(10)

TIMEOUT = 0.5  # post()'s timeout_seconds; the whole exchange is cut at twice that
SLACK = 1.0  # what a loaded CI machine may add to a bound on elapsed time
Handler = http.server.BaseHTTPRequestHandler
Respond = Callable[[Handler, "Receiver"], None]


@dataclass
class Seen:
    """One POST as the receiver read it."""

    path: str
    headers: dict[str, str]  # names lowercased
    body: bytes


class _V6Server(http.server.ThreadingHTTPServer):
    """The same on an IPv6 address."""

    address_family = socket.AF_INET6


class Receiver:
    """A threaded HTTP(S) server on a loopback port: records each POST, then `respond`s."""

    def __init__(
        self,
        respond: Respond,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.seen: list[Seen] = []
        self.released = threading.Event()  # set at teardown: slow answers stop at once
        self.hung_up = threading.Event()  # the client closed while we were still answering
        owner = self

        class _Handler(Handler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                owner.seen.append(Seen(self.path, headers, body))
                try:
                    respond(self, owner)
                except (BrokenPipeError, ConnectionResetError):
                    owner.hung_up.set()

            def log_message(self, *args: object) -> None:
                """Quiet."""

        server_class = _V6Server if ":" in host else http.server.ThreadingHTTPServer
        self.server = server_class((host, 0), _Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.host, self.port = host, self.server.server_address[1]
        serve = functools.partial(self.server.serve_forever, poll_interval=0.05)  # fast stop
        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", host: str | None = None, scheme: str = "http") -> str:
        """This receiver's URL (`host` replaces the address it listens on)."""
        name = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"{scheme}://{name}:{self.port}{path}"

    def close(self) -> None:
        """Release slow answers, stop serving and close the listening socket."""
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Respond:
    """A `respond` that sends one complete answer."""

    def respond(handler: Handler, receiver: Receiver) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    """Start receivers (`respond` defaults to 200 "thanks"); all are stopped afterwards."""
    started: list[Receiver] = []

    def start(respond: Respond | None = None, **kwargs: Any) -> Receiver:
        receiver = Receiver(respond or answer(200, b"thanks"), **kwargs)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()


class FakeDns:
    """socket.getaddrinfo with some names answered from `names`: a list, or a callable
    returning one (None: resolve as usual); every name looked up is in `calls`."""

    def __init__(self) -> None:
        self.names: dict[str, list[str] | Callable[[], list[str] | None]] = {}
        self.calls: list[str] = []
        self.real = socket.getaddrinfo

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        """The real lookup of each address a faked name has, or of the name itself."""
        self.calls.append(host)
        answer = self.names.get(host)
        addresses = answer() if callable(answer) else answer
        if addresses is None:
            return self.real(host, port, *args, **kwargs)
        return [info for address in addresses for info in self.real(address, port, *args)]


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    """Names the test makes up, resolved to the addresses it needs."""
    fake = FakeDns()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


def ipv6_receiver(receivers: Callable[..., Receiver]) -> Receiver:
    """A receiver on ::1, or a skip where IPv6 is off (as in many containers)."""
    try:
        return receivers(host="::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback: {exc}")


def deliver(url: str, body: bytes = b"{}", **kwargs: Any) -> Any:
    """post() a signed body with the test defaults (private addresses allowed)."""
    kwargs.setdefault("timeout_seconds", TIMEOUT)
    kwargs.setdefault("allow_private", True)
    headers = signed_headers(new_secret(), "msg_test", datetime.now(UTC), body)
    return post(url, body, headers, **kwargs)


# --- signing ---------------------------------------------------------------------------


def test_new_secrets_are_distinct_prefixed_and_decodable() -> None:
    made = {new_secret() for _ in range(50)}
    assert len(made) == 50
    for secret in made:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
        standardwebhooks.Webhook(secret)


def test_a_non_utc_timestamp_is_signed_as_the_same_instant() -> None:
    # Webhook.sign() replaces the zone with UTC instead of converting: signing an IST time
    # as is would put a signature 5.5 hours off the header's timestamp.
    secret, ist = new_secret(), datetime.now(timezone(timedelta(hours=5, minutes=30)))
    headers = signed_headers(secret, "msg_ist", ist, b'{"a": 1}')
    assert headers["webhook-timestamp"] == str(int(ist.timestamp()))
    assert standardwebhooks.Webhook(secret).verify(b'{"a": 1}', headers) == {"a": 1}
    with pytest.raises(ValueError, match="timezone-aware"):
        signed_headers(secret, "msg_naive", datetime.now(), b"{}")


# --- deliveries ------------------------------------------------------------------------


def test_a_delivery_arrives_signed(receivers: Callable[..., Receiver]) -> None:
    receiver = receivers()
    secret = new_secret()
    body = json.dumps({"type": "order.placed", "name": "café"}, ensure_ascii=False).encode()
    headers = signed_headers(secret, "msg_1", datetime.now(UTC), body)
    result = post(
        receiver.url("/hook?v=1"), body, headers, timeout_seconds=TIMEOUT, allow_private=True
    )
    assert (result.status, result.ok, result.error, result.snippet) == (200, True, None, "thanks")
    assert 0 < result.latency_ms < 1000
    [seen] = receiver.seen
    assert (seen.path, seen.body) == ("/hook?v=1", body)
    assert seen.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["user-agent"] == USER_AGENT
    assert seen.headers["webhook-id"] == "msg_1"
    webhook = standardwebhooks.Webhook(secret)
    assert webhook.verify(seen.body, seen.headers) == json.loads(body)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        webhook.verify(seen.body.replace(b"placed", b"paid"), seen.headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(new_secret()).verify(seen.body, seen.headers)


def test_an_error_status_is_not_ok_and_keeps_the_body(receivers: Callable[..., Receiver]) -> None:
    result = deliver(receivers(answer(500, b"database down")).url())
    assert (result.status, result.ok, result.snippet, result.error) == (
        500,
        False,
        "database down",
        None,
    )


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed(receivers: Callable[..., Receiver], status: int) -> None:
    target = receivers()
    source = receivers(answer(status, headers={"Location": target.url()}))
    result = deliver(source.url())
    assert (result.status, result.ok) == (status, False)
    assert result.error == f"redirect not followed ({status})"
    assert len(source.seen) == 1
    assert target.seen == []


def test_a_receiver_slower_than_the_timeout(receivers: Callable[..., Receiver]) -> None:
    def sleep(handler: Handler, receiver: Receiver) -> None:
        receiver.released.wait(5)
        answer(200)(handler, receiver)

    started = time.monotonic()
    result = deliver(receivers(sleep).url())
    elapsed = time.monotonic() - started
    assert (result.status, result.error, result.ok) == (None, "timeout", False)
    assert TIMEOUT * 0.9 < elapsed < TIMEOUT + SLACK


def test_connection_refused() -> None:
    with socket.socket() as probe:  # a port nothing listens on once this closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = deliver(f"http://127.0.0.1:{port}/hook")
    assert (result.status, result.error) == (None, "connection refused")


def test_a_10_mb_answer_is_read_up_to_the_cap(receivers: Callable[..., Receiver]) -> None:
    receiver = receivers(answer(200, b"x" * 10_000_000))
    started = time.monotonic()
    result = deliver(receiver.url())
    assert (result.status, result.ok, result.snippet) == (200, True, "x" * 1024)
    assert time.monotonic() - started < SLACK
    assert deliver(receiver.url(), max_response_bytes=10).snippet == "x" * 10


def test_an_endless_answer_is_cut_at_the_cap(receivers: Callable[..., Receiver]) -> None:
    def endless(handler: Handler, receiver: Receiver) -> None:
        handler.send_response(200)
        handler.end_headers()  # no Content-Length: the body ends when the connection does
        while not receiver.released.is_set():
            handler.wfile.write(b"y" * 65536)

    receiver = receivers(endless)
    result = deliver(receiver.url())
    assert (result.status, result.ok, result.error) == (200, True, None)
    assert receiver.hung_up.wait(2), "post() kept reading past max_response_bytes"


def trickle(prefix: bytes) -> Respond:
    """A `respond` that writes `prefix`, then one byte every 0.1 s (well inside TIMEOUT)."""

    def respond(handler: Handler, receiver: Receiver) -> None:
        handler.wfile.write(prefix)
        while not receiver.released.wait(0.1):
            handler.wfile.write(b"z")

    return respond


@pytest.mark.parametrize(
    ("prefix", "status"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 200),  # the body
        (b"HTTP/1.1 200 OK\r\nX-Slow: ", 200),  # a header (the status line is in)
        (b"HTTP/1.1 ", None),  # the status line
    ],
    ids=["body", "header", "status-line"],
)
def test_a_trickling_receiver_is_cut_at_the_deadline(
    receivers: Callable[..., Receiver], prefix: bytes, status: int | None
) -> None:
    started = time.monotonic()
    result = deliver(receivers(trickle(prefix)).url())
    elapsed = time.monotonic() - started
    assert result.status == status
    assert result.error == f"deadline exceeded ({2 * TIMEOUT:.1f} s)"
    assert not result.ok
    assert 2 * TIMEOUT - 0.1 < elapsed < 2 * TIMEOUT + SLACK


def test_ipv6_receiver(receivers: Callable[..., Receiver]) -> None:
    receiver = ipv6_receiver(receivers)
    assert deliver(receiver.url()).ok
    assert receiver.seen[0].headers["host"] == f"[::1]:{receiver.port}"


def test_the_vetted_address_is_connected_to_and_the_name_sent_as_host(
    receivers: Callable[..., Receiver], fake_dns: FakeDns
) -> None:
    # A second lookup at connect time could answer differently (DNS rebinding): the name
    # is resolved once, and the address that was checked is the one connected to.
    receiver = receivers()
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])
    fake_dns.names["hooks.example"] = lambda: next(answers)
    assert deliver(receiver.url(host="hooks.example")).ok
    assert receiver.seen[0].headers["host"] == f"hooks.example:{receiver.port}"
    assert fake_dns.calls.count("hooks.example") == 1


def test_the_next_address_is_tried_when_one_refuses(
    receivers: Callable[..., Receiver], fake_dns: FakeDns
) -> None:
    receiver = receivers()  # on 127.0.0.1 only: ::1 refuses the connection
    fake_dns.names["dual.example"] = ["::1", "127.0.0.1"]
    assert deliver(receiver.url(host="dual.example")).ok
    assert len(receiver.seen) == 1


def test_a_lookup_that_hangs_is_given_up(fake_dns: FakeDns) -> None:
    hung = threading.Event()

    def hang() -> list[str]:
        hung.wait(3)
        return ["127.0.0.1"]  # by then post() has given up

    fake_dns.names["slow.example"] = hang
    started = time.monotonic()
    try:
        result = deliver("http://slow.example/hook")
    finally:
        hung.set()
    assert (result.status, result.error) == (None, "DNS lookup timed out")
    assert time.monotonic() - started < TIMEOUT + SLACK


def test_a_name_that_does_not_resolve() -> None:
    result = deliver("http://no-such-host.invalid/hook")
    assert result.status is None
    assert result.error is not None
    assert result.error.startswith("DNS lookup failed: ")


# --- TLS -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for "localhost" and its key, made by the openssl CLI."""
    openssl = system_binary("openssl", "openssl")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@pytest.fixture
def tls_receiver(
    receivers: Callable[..., Receiver], certificate: tuple[Path, Path]
) -> tuple[Receiver, list[str | None]]:
    """An HTTPS receiver on 127.0.0.1 with the "localhost" certificate; the SNI names seen."""
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    return receivers(tls=context), names


def test_https_with_a_trusted_certificate(
    tls_receiver: tuple[Receiver, list[str | None]], certificate: tuple[Path, Path]
) -> None:
    receiver, names = tls_receiver
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    result = deliver(receiver.url(host="localhost", scheme="https"), tls_context=trusting)
    assert (result.status, result.ok) == (200, True)
    assert names == ["localhost"]
    assert receiver.seen[0].headers["host"] == f"localhost:{receiver.port}"


def test_https_refuses_an_untrusted_certificate(
    tls_receiver: tuple[Receiver, list[str | None]],
) -> None:
    receiver, _ = tls_receiver
    result = deliver(receiver.url(host="localhost", scheme="https"))
    assert result.status is None
    assert result.error == "TLS error: self-signed certificate"
    assert receiver.seen == []


def test_https_refuses_a_certificate_for_another_name(
    tls_receiver: tuple[Receiver, list[str | None]], certificate: tuple[Path, Path]
) -> None:
    receiver, _ = tls_receiver
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    result = deliver(receiver.url(scheme="https"), tls_context=trusting)  # https://127.0.0.1
    assert result.error is not None
    assert result.error.startswith("TLS error: ")
    assert "127.0.0.1" in result.error
    assert receiver.seen == []


def test_a_tls_handshake_that_trickles_is_cut() -> None:
    stop = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(3)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)  # the ClientHello
                conn.sendall(b"\x16\x03\x03\x40\x00")  # a 16 KiB handshake record follows...
                while not stop.wait(0.1):
                    try:
                        conn.sendall(b"\x00")  # ...a byte at a time
                    except OSError:
                        return

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        started = time.monotonic()
        try:
            result = deliver(f"https://127.0.0.1:{listener.getsockname()[1]}/hook")
        finally:
            stop.set()
            thread.join(timeout=3)
    # CPython bounds a whole handshake by the socket timeout already; the cutoff backs it up
    assert result.status is None
    assert result.error in ("timeout", f"deadline exceeded ({2 * TIMEOUT:.1f} s)")
    assert time.monotonic() - started < 2 * TIMEOUT + SLACK


# --- SSRF ------------------------------------------------------------------------------

REFUSED = [
    ("http://127.0.0.1:{v4}/", "127.0.0.1 is a loopback address"),
    ("http://localhost:{v4}/", "localhost is a loopback name"),
    ("http://[::1]:{v6}/", "::1 is a loopback address"),
    ("http://10.0.0.1/", "10.0.0.1 is a private address"),
    ("http://192.168.1.1/", "192.168.1.1 is a private address"),
    ("http://172.16.0.1/", "172.16.0.1 is a private address"),
    (
        "http://169.254.169.254/latest/meta-data/",
        "169.254.169.254 is a link-local address (the cloud metadata service)",
    ),
    ("http://100.64.0.1/", "100.64.0.1 is in the shared address space 100.64.0.0/10"),
    ("http://0.0.0.0:{v4}/", "0.0.0.0 is an unspecified address (this host)"),
    ("http://[::ffff:127.0.0.1]:{v4}/", "an IPv6 form of 127.0.0.1, a loopback address"),
    ("http://[fe80::1]/", "fe80::1 is a link-local address"),
    ("http://[fc00::1]/", "fc00::1 is a private address"),
    ("http://2130706433:{v4}/", "127.0.0.1 is a loopback address"),
    ("http://0x7f.1:{v4}/", "127.0.0.1 is a loopback address"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_private_destinations_are_refused(
    receivers: Callable[..., Receiver], url: str, reason: str
) -> None:
    v4 = receivers()
    v6 = ipv6_receiver(receivers) if "{v6}" in url else v4
    result = deliver(url.format(v4=v4.port, v6=v6.port), allow_private=False)
    assert result.status is None
    assert result.error is not None
    assert result.error.startswith("refused: ")
    assert result.error.endswith(reason)
    assert v4.seen == v6.seen == []
    with pytest.raises(UnsafeUrl, match=re.escape(reason) + "$"):
        check_url(url.format(v4=v4.port, v6=v6.port), allow_private=False)


def test_a_name_resolving_to_a_private_address_is_refused(
    receivers: Callable[..., Receiver], fake_dns: FakeDns
) -> None:
    receiver = receivers()
    fake_dns.names["mixed.example"] = ["93.184.216.34", "127.0.0.1"]  # one bad address is enough
    result = deliver(receiver.url(host="mixed.example"), allow_private=False)
    assert result.error == "refused: 127.0.0.1 is a loopback address"
    assert receiver.seen == []
    with pytest.raises(UnsafeUrl, match="loopback address"):
        resolve_public("localhost", 80, allow_private=False)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        # the cases where ipaddress's is_global alone says "public"
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("2002:7f00:1::", "an IPv6 form of 127.0.0.1, a loopback address"),  # 6to4
        ("64:ff9b::a00:1", "an IPv6 form of 10.0.0.1, a private address"),  # NAT64
        ("fec0::1", "a site-local address"),
        # and some it gets right, with the reason we give
        ("192.0.2.1", "not a globally routable address"),
        ("198.18.0.1", "not a globally routable address"),
        ("255.255.255.255", "a reserved address"),
        ("240.0.0.1", "a reserved address"),
        ("0.1.2.3", "an unspecified address (this host)"),
        ("::", "an unspecified address (this host)"),
        ("fd00:ec2::254", "a link-local address (the cloud metadata service)"),
    ],
)
def test_address_edge_cases_are_refused(address: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl) as refused:
        resolve_public(address, 443, allow_private=False)
    assert str(refused.value).endswith(f" is {reason}")
    assert resolve_public(address, 443, allow_private=True) == [address]


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:4700::1111", "64:ff9b::5db8:d822", "::ffff:93.184.216.34"]
)
def test_public_addresses_pass(address: str) -> None:
    assert len(resolve_public(address, 443, allow_private=False)) == 1


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "scheme must be http or https, not 'ftp'"),
        ("example.com/hook", "scheme must be http or https, not ''"),
        ("http://user:pass@example.com/", "credentials in the URL (user:pass@) are not allowed"),
        ("http://user@example.com/", "credentials in the URL (user:pass@) are not allowed"),
        ("http:///hook", "URL has no host"),
        ("http://example.com:0/", "port must be a number from 1 to 65535"),
        ("http://example.com:70000/", "port must be a number from 1 to 65535"),
        ("http://example.com:http/", "port must be a number from 1 to 65535"),
        ("https://example.com/" + "a" * 2029, "URL is longer than 2048 characters"),
        ("http://exa mple.com/", "URL contains whitespace or control characters"),
        ("http://example.com/\r\nX-Injected: 1", "URL contains whitespace or control characters"),
        ("http://[::1/", "not a valid URL: Invalid IPv6 URL"),
        ("http://exa$mple.com/", "'exa$mple.com' is not a valid host name"),
    ],
)
def test_check_url_refuses(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl) as refused:
        check_url(url, allow_private=True)
    assert str(refused.value) == reason


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.216.34/hook",
        "https://hooks.example.com:8443/in?team=7",
        "http://[2606:4700::1111]/hook",
        "https://bücher.example/hook",
        "https://example.com/" + "a" * 2028,  # 2048 characters exactly
    ],
)
def test_check_url_accepts_public_urls_without_dns(url: str) -> None:
    check_url(url, allow_private=False)


def test_check_url_allows_private_hosts_when_told() -> None:
    for url in ("http://127.0.0.1:8080/", "http://localhost/", "http://[fc00::1]/", "http://10.1/"):
        check_url(url, allow_private=True)
