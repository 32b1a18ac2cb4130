"""Hostile input at the edge: the production nginx config in front of a real replica.

nginx runs deploy/nginx/default.conf, rendered as `make test-faults` renders it, in front of
one `flipkart-api serve` (granian) on PostgreSQL + Redis. What nginx refuses on its own (a
10 MB body, an over-long request line or header, a malformed request) must still be
application/problem+json with the right status, not nginx's HTML page; what it passes on
still works.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator

import pytest

from . import servers
from .conftest import system_binary
from .faults.stack import (
    CLI,
    Replica,
    Reply,
    call,
    production_env,
    render_nginx_conf,
    start_nginx,
    wait_status,
)

pytestmark = pytest.mark.slow  # nginx and a replica of its own
TEN_MB = 10 * 1024 * 1024


def nginx_binary() -> str:
    """nginx on PATH or Debian's /usr/sbin/nginx; skip loudly (fail under CI) without it."""
    return system_binary("nginx", "nginx-light")


@pytest.fixture(scope="module")
def edge(
    tmp_path_factory: pytest.TempPathFactory,
    pg_server: servers.PostgresServer,
    redis_server: servers.RedisServer,
) -> Iterator[tuple[int, int]]:
    """(nginx port, replica port): nginx on the production config, one replica behind it."""
    binary = nginx_binary()
    workdir = tmp_path_factory.mktemp("edge")
    url = pg_server.create_database("flipkart_edge")
    env = production_env(workdir, url, redis_server.url(1), redis_server.url(2))
    migrated = subprocess.run([CLI, "migrate"], env=env, capture_output=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr.decode(errors="replace")[-2000:]
    replica = Replica(servers.free_port(), env, workdir / "replica.log")
    replica.start()
    prefix = workdir / "nginx"
    prefix.mkdir()
    port = servers.free_port()
    conf = render_nginx_conf(prefix, port, [replica.port])
    nginx = start_nginx(conf, binary)
    try:
        wait_status(port, "/readyz")
        yield port, replica.port
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        replica.stop()


def raw(port: int, request: bytes, timeout: float = 10.0) -> Reply:
    """Send bytes as they are (http.client would refuse to) and parse the one response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # it answered and closed before reading it all
            sock.sendall(request)
        data = b""
        while chunk := _recv(sock):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines[0].startswith("HTTP/") else 0
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return Reply(status, headers, body, 0.0)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except (ConnectionResetError, TimeoutError):
        return b""


def post_big_body(port: int, size: int) -> Reply:
    """POST a JSON body of `size` bytes with an honest Content-Length."""
    body = b'{"name": "' + b"x" * (size - 12) + b'"}'
    head = (
        f"POST /api/v1/auth/register HTTP/1.1\r\nHost: shop.example.in\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n\r\n"
    ).encode()
    return raw(port, head + body)


def assert_problem(reply: Reply, status: int) -> None:
    """The status, as application/problem+json, with nothing of nginx's HTML or a trace."""
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.headers.get("content-type", "").startswith("application/problem+json"), reply
    assert reply.json()["status"] == status
    assert reply.headers.get("x-content-type-options") == "nosniff", reply  # nginx's own too
    text = reply.body.decode(errors="replace")
    assert "<html" not in text.lower()
    assert "Traceback" not in text


def test_ten_megabytes_is_413_problem_from_nginx(edge: tuple[int, int]) -> None:
    port, _ = edge
    reply = post_big_body(port, TEN_MB)
    assert_problem(reply, 413)
    assert "1 MB" in reply.json()["detail"]


def test_ten_megabytes_is_413_problem_from_the_replica_itself(edge: tuple[int, int]) -> None:
    """Without nginx (a misrouted or internal caller) the app's own limit answers."""
    _, replica = edge
    assert_problem(post_big_body(replica, TEN_MB), 413)


def test_over_long_request_line_is_414_problem(edge: tuple[int, int]) -> None:
    port, _ = edge
    path = "/api/v1/products?q=" + "a" * 20_000
    request = f"GET {path} HTTP/1.1\r\nHost: shop.example.in\r\nConnection: close\r\n\r\n"
    assert_problem(raw(port, request.encode()), 414)


def test_over_long_header_is_400_problem(edge: tuple[int, int]) -> None:
    port, _ = edge
    request = (
        "GET /api/v1/products HTTP/1.1\r\nHost: shop.example.in\r\n"
        f"X-Junk: {'b' * 20_000}\r\nConnection: close\r\n\r\n"
    )
    assert_problem(raw(port, request.encode()), 400)


def test_malformed_request_is_400_problem(edge: tuple[int, int]) -> None:
    port, _ = edge
    for request in (
        b"GET /api/v1/products HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n",
        b"GET /api/v1/products HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /api/v1/products HTTP/1.1\r\nX: y\r\n\r\n",  # HTTP/1.1 without Host
    ):
        assert_problem(raw(port, request), 400)


def test_json_body_errors_pass_through_nginx(edge: tuple[int, int]) -> None:
    """Below the edge's limits, the app's own answers reach the client unchanged."""
    port, _ = edge
    sent = b'{"email": "x@example.in",'
    request = (
        f"POST /api/v1/auth/register HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(sent)}\r\nConnection: close\r\n\r\n"
    ).encode() + sent
    assert_problem(raw(port, request), 400)
    request = request.replace(b"application/json", b"text/plain")
    assert_problem(raw(port, request), 415)


def test_normal_requests_still_pass(edge: tuple[int, int]) -> None:
    port, _ = edge
    assert call(port, "GET", "/api/v1/products?limit=1").status == 200
    body = {"email": "edge@example.in", "password": "long-enough-1", "name": "Edge ✓"}
    reply = call(port, "POST", "/api/v1/auth/register", body=body)
    assert reply.status == 201, reply.body
    assert reply.json()["name"] == "Edge ✓"
    # The 414 page's location is internal: not a way to make nginx say 414 on request.
    assert call(port, "GET", "/_problem/414").status == 404
