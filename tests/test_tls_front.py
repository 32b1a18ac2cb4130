"""HTTPS at the edge: the production nginx config, with TLS, in front of a real replica.

nginx runs deploy/nginx/default.conf as shipped but for the ports and file paths
(`render_nginx_conf(tls=True)`), with a throwaway certificate made by the openssl CLI. The
checks are made from outside, as a client sees them: Python's ssl module for protocols,
certificate and ALPN; raw HTTP/1.1 over TLS for headers and nginx's own errors; Debian's
testssl.sh for a grade of the protocols and ciphers offered and the known vulnerabilities.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import servers
from .conftest import _unavailable
from .faults.stack import CLI, Replica, production_env, render_nginx_conf, start_nginx
from .test_hostile_edge import nginx_binary

pytestmark = pytest.mark.slow  # nginx and a replica of its own
HOST = "localhost"  # the certificate's name (and 127.0.0.1)
HSTS = "max-age=63072000"
LOCAL_OPENSSL_WARNINGS = frozenset({"engine_problem", "RC4"})
SECURITY = {
    "strict-transport-security": HSTS,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


@dataclass
class Front:
    """nginx with TLS: the API on `https`, the redirect on `http`; the certificate it serves."""

    https: int
    http: int
    cert: Path
    prefix: Path
    acme: Path  # the webroot of /.well-known/acme-challenge/

    def context(self, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
        """A client context trusting exactly the front's certificate, pinned to `version`."""
        ctx = ssl.create_default_context(cafile=str(self.cert))
        if version is not None:
            ctx.minimum_version = ctx.maximum_version = version
        return ctx


def _wait_tls(front: Front, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            status, _, _ = request(front, "GET", "/readyz")
            if status == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "nginx + replica did not become ready over TLS"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def front(
    tmp_path_factory: pytest.TempPathFactory,
    pg_server: servers.PostgresServer,
    redis_server: servers.RedisServer,
) -> Iterator[Front]:
    """nginx on the production config with TLS, one replica behind it."""
    binary = nginx_binary()
    if shutil.which("openssl") is None:
        _unavailable("the openssl CLI is not installed (apt-get install openssl)")
    workdir = tmp_path_factory.mktemp("tls")
    env = production_env(
        workdir, pg_server.create_database("flipkart_tls"), redis_server.url(3), redis_server.url(4)
    )
    migrated = subprocess.run([CLI, "migrate"], env=env, capture_output=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr.decode(errors="replace")[-2000:]
    replica = Replica(servers.free_port(), env, workdir / "replica.log")
    replica.start()
    prefix = workdir / "nginx"
    prefix.mkdir()
    https, http = servers.free_port(), servers.free_port()
    acme = Path(tempfile.mkdtemp(prefix="flipkart-acme-"))  # outside pytest's 0700 tree
    acme.chmod(0o755)
    conf = render_nginx_conf(prefix, https, [replica.port], tls=True, http_port=http, acme=acme)
    nginx = start_nginx(conf, binary)
    try:
        result = Front(https, http, prefix / "tls.crt", prefix, acme)
        _wait_tls(result)
        yield result
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        replica.stop()
        shutil.rmtree(acme)


def request(
    front: Front, method: str, path: str, body: bytes | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One HTTPS request, the certificate verified against the one nginx was given."""
    conn = http.client.HTTPSConnection(HOST, front.https, context=front.context(), timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def handshake(front: Front, ctx: ssl.SSLContext) -> ssl.SSLSocket:
    """A TLS connection to the API port (closed by the caller)."""
    sock = socket.create_connection(("127.0.0.1", front.https), timeout=10)
    return ctx.wrap_socket(sock, server_hostname=HOST)


def assert_security_headers(headers: http.client.HTTPMessage) -> None:
    """Each security header once, with the production value (twice would be two policies)."""
    for name, value in SECURITY.items():
        assert headers.get_all(name) == [value], (name, headers.items())


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["TLSv1.0", "TLSv1.1"]
)
def test_old_protocols_are_refused(front: Front, version: ssl.TLSVersion) -> None:
    """TLS 1.0/1.1: the server answers with a protocol_version alert (the client could)."""
    with pytest.warns(DeprecationWarning, match="is deprecated"):  # Python says so too
        ctx = front.context(version)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer them at all
    with pytest.raises(ssl.SSLError) as refused:
        handshake(front, ctx).close()
    # The server's alert, not the client declining to speak (NO_PROTOCOLS_AVAILABLE).
    assert "PROTOCOL_VERSION" in str(refused.value) or "UNSUPPORTED_PROTOCOL" in str(
        refused.value
    ), refused.value


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["TLSv1.2", "TLSv1.3"]
)
def test_tls12_and_13_are_accepted_with_h2_by_alpn(front: Front, version: ssl.TLSVersion) -> None:
    """Both versions, the certificate verified for its name, HTTP/2 chosen by ALPN."""
    ctx = front.context(version)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with handshake(front, ctx) as tls:
        assert tls.version() == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]
        assert tls.selected_alpn_protocol() == "h2"
        if version is ssl.TLSVersion.TLSv1_2:
            cipher = tls.cipher()
            assert cipher is not None
            assert cipher[0].startswith("ECDHE-"), cipher  # forward secrecy, AEAD only
    ctx = front.context()
    ctx.set_alpn_protocols(["http/1.1"])  # a client without h2 still gets HTTP/1.1
    with handshake(front, ctx) as tls:
        assert tls.selected_alpn_protocol() == "http/1.1"


def test_port_80_only_redirects_to_https(front: Front) -> None:
    """301 to https://$host$request_uri for every path and method; no app answer on 80."""
    for method, path in (("GET", "/api/v1/products?limit=1&q=x"), ("POST", "/api/v1/orders")):
        conn = http.client.HTTPConnection("127.0.0.1", front.http, timeout=10)
        conn.request(method, path, headers={"Host": "shop.example.in"})
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.status == 301, (method, path)
        assert response.headers["Location"] == f"https://shop.example.in{path}"


def test_acme_challenge_is_served_on_port_80(front: Front) -> None:
    """certbot's webroot files answer on 80 (not redirected); a missing one is a 404."""
    challenge = front.acme / ".well-known" / "acme-challenge"
    challenge.mkdir(mode=0o755, parents=True, exist_ok=True)
    (challenge / "tok3n").write_text("tok3n.key-authorization")
    (challenge / "tok3n").chmod(0o644)
    conn = http.client.HTTPConnection("127.0.0.1", front.http, timeout=10)
    try:
        conn.request("GET", "/.well-known/acme-challenge/tok3n")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"tok3n.key-authorization")
        conn.request("GET", "/.well-known/acme-challenge/none")
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.status == 404


def test_app_answers_carry_hsts_and_security_headers_once(front: Front) -> None:
    """HSTS from nginx, the rest from the app, each once; the app sees X-Forwarded-Proto."""
    status, headers, body = request(front, "GET", "/api/v1/products?limit=1")
    assert status == 200, body
    assert_security_headers(headers)
    status, headers, _ = request(front, "GET", "/docs")
    assert status == 200
    assert headers.get_all("strict-transport-security") == [HSTS]
    assert len(headers.get_all("content-security-policy") or []) == 1  # the page's own
    assert "script-src 'self' 'sha256-" in headers["content-security-policy"]


def _raw(front: Front, data: bytes) -> tuple[int, http.client.HTTPMessage, dict[str, object]]:
    """Send bytes over TLS as they are; parse the one response (status, headers, JSON)."""
    with handshake(front, front.context()) as tls:
        tls.sendall(data)
        response = http.client.HTTPResponse(tls)
        response.begin()
        body = response.read()
    return response.status, response.headers, json.loads(body)


def test_nginx_own_errors_carry_the_same_headers(front: Front) -> None:
    """413, 414 and 429 made by nginx: problem+json with HSTS and every security header."""
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    head = f"POST /api/v1/auth/register HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len(big)}"
    status, headers, problem = _raw(front, head.encode() + b"\r\nConnection: close\r\n\r\n" + big)
    assert (status, problem["status"]) == (413, 413)
    assert_security_headers(headers)
    line = f"GET /api/v1/products?q={'a' * 20_000} HTTP/1.1\r\nHost: {HOST}\r\n"
    status, headers, problem = _raw(front, line.encode() + b"Connection: close\r\n\r\n")
    assert (status, problem["status"]) == (414, 414)
    assert_security_headers(headers)
    # /api/v1/auth/ is limited by nginx to 5 r/s, burst 20: 40 at once overflow it.
    one = f"GET /api/v1/auth/nowhere HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    with handshake(front, front.context()) as tls:
        tls.sendall(one * 39 + one.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        replies = []
        for _ in range(40):
            response = http.client.HTTPResponse(tls)
            response.begin()
            replies.append((response.status, response.headers, response.read()))
    limited = [(h, b) for s, h, b in replies if s == 429 and b"Slow down." in b]
    assert limited, [s for s, _, _ in replies]
    headers, body = limited[0]
    assert json.loads(body)["status"] == 429
    assert headers["retry-after"] == "1"
    assert_security_headers(headers)


def test_testssl_grades_protocols_ciphers_and_vulnerabilities(front: Front) -> None:
    """testssl.sh: no SSLv2/3, TLS 1.0/1.1, weak cipher or known vulnerability offered."""
    binary = shutil.which("testssl") or shutil.which("testssl.sh")
    if binary is None:
        _unavailable("testssl.sh is not installed (apt-get install testssl.sh)")
    assert binary is not None
    report = front.prefix / "testssl.json"
    started = time.monotonic()
    done = subprocess.run(
        [
            binary,
            *("--protocols", "--std", "--vulnerable", "--fs"),  # -p -s -U -f
            *("--ip", "one", "--fast", "--warnings", "off", "--color", "0", "--quiet"),
            *("--connect-timeout", "5", "--openssl-timeout", "5"),
            *("--jsonfile", str(report)),
            f"127.0.0.1:{front.https}",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    findings = json.loads(report.read_text())
    assert findings, done.stdout[-3000:]
    by_id = {f["id"]: f for f in findings}
    # Offered protocols: exactly TLS 1.2 and 1.3.
    for old in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert by_id[old]["finding"].startswith("not offered"), by_id[old]
    for good in ("TLS1_2", "TLS1_3"):
        assert by_id[good]["finding"].startswith("offered"), by_id[good]
    # Cipher categories: only the strong one (AEAD with forward secrecy) is offered.
    for weak in ("NULL", "aNULL", "EXPORT", "LOW", "3DES_IDEA", "AVERAGE"):
        assert by_id[f"cipherlist_{weak}"]["finding"] == "not offered", by_id[f"cipherlist_{weak}"]
    assert by_id["cipherlist_STRONG"]["finding"].startswith("offered")
    # Any finding graded LOW or worse (a weak cipher, a vulnerability) fails; of the WARNs
    # only those about the local OpenSSL's abilities are allowed (Debian's has no RC4 at all,
    # nor has the server's: the same OpenSSL 3 family).
    bad = [
        f
        for f in findings
        if f["severity"] not in ("OK", "INFO") and f["id"] not in LOCAL_OPENSSL_WARNINGS
    ]
    assert not bad, bad
    assert time.monotonic() - started < 240
