"""edge.py's purge client against real HTTP receivers on 127.0.0.1 (a stand-in for Varnish).

What Varnish does with a purge is tested on Varnish itself (tests/test_http_cache.py); here:
every instance gets every key, a lost purge is kept and redelivered, and given up once what
it targeted has expired.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from flipkart_api import edge as edge_module
from flipkart_api.edge import Edge

from . import servers

pytestmark = pytest.mark.timeout(60)


class Receiver:
    """An HTTP server that records each PURGE's xkey-purge header and answers `status`."""

    def __init__(self, port: int = 0, status: int = 200) -> None:
        received: list[str] = []
        self.received = received
        self.status = status
        self.connections = 0
        self.drop_after_answer = False  # close the connection unannounced, like an idle timeout
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Varnish

            def setup(self) -> None:
                owner.connections += 1
                super().setup()

            def do_PURGE(self) -> None:
                received.append(self.headers.get("xkey-purge", ""))
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if owner.drop_after_answer:
                    self.wfile.flush()
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                """Quiet."""

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started = [Receiver(), Receiver()]
    yield started
    for receiver in started:
        receiver.close()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edge_module, "RETRY_SECONDS", 0.05)


def _wait(condition: object, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_every_instance_gets_every_key_once_per_purge(receivers: list[Receiver]) -> None:
    edge = Edge([r.url for r in receivers], timeout=1, ttl_seconds=60)
    edge.purge(["p2", "products", "p2"])
    edge.purge([])
    assert [r.received for r in receivers] == [["p2 products"], ["p2 products"]]
    assert edge.pending() == {}


def test_purges_reuse_one_kept_alive_connection(receivers: list[Receiver]) -> None:
    edge = Edge([receivers[0].url], timeout=1, ttl_seconds=60)
    for n in range(5):
        edge.purge([f"p{n}"])
    assert receivers[0].received == ["p0", "p1", "p2", "p3", "p4"]
    assert receivers[0].connections == 1


def test_a_connection_the_instance_closed_while_idle_is_replaced_at_once(
    receivers: list[Receiver],
) -> None:
    """Varnish closes idle connections (timeout_idle): the next purge must not fail on it."""
    receivers[0].drop_after_answer = True
    edge = Edge([receivers[0].url], timeout=1, ttl_seconds=60)
    edge.purge(["p1"])
    time.sleep(0.2)  # the receiver has closed its end
    edge.purge(["p2"])
    assert receivers[0].received == ["p1", "p2"]  # delivered now, not by the retry thread
    assert edge.pending() == {}
    assert receivers[0].connections == 2


def test_a_name_is_resolved_and_its_addresses_purged(receivers: list[Receiver]) -> None:
    edge = Edge([f"http://localhost:{receivers[0].port}"], timeout=1, ttl_seconds=60)
    edge.purge(["categories"])
    assert receivers[0].received == ["categories"]


def test_without_urls_nothing_is_sent_and_nothing_kept() -> None:
    edge = Edge([], timeout=1, ttl_seconds=60)
    edge.purge(["p1"])
    assert edge.pending() == {}
    assert edge.shared_ttl is None


def test_a_lost_purge_is_kept_and_delivered_when_the_instance_answers(
    receivers: list[Receiver],
) -> None:
    port = servers.free_port()
    edge = Edge([receivers[0].url, f"http://127.0.0.1:{port}"], timeout=0.5, ttl_seconds=60)
    edge.purge(["p5", "products"])
    assert receivers[0].received == ["p5 products"]  # the reachable one is not held up
    assert edge.pending() == {f"http://127.0.0.1:{port}": {"p5", "products"}}
    edge.purge(["p6"])  # more keys for the same instance join the pending ones
    late = Receiver(port)
    try:
        assert _wait(lambda: not edge.pending())
        assert sorted(" ".join(late.received).split()) == ["p5", "p6", "products"]
    finally:
        late.close()


def test_a_refused_purge_is_kept_too(receivers: list[Receiver]) -> None:
    """A 403 (the ACL does not know this replica) is a failure, not a success."""
    receivers[0].status = 403
    edge = Edge([receivers[0].url], timeout=0.5, ttl_seconds=60)
    edge.purge(["p1"])
    assert edge.pending() == {receivers[0].url: {"p1"}}
    receivers[0].status = 200
    assert _wait(lambda: not edge.pending())


def test_a_purge_is_given_up_once_its_targets_have_expired() -> None:
    port = servers.free_port()
    edge = Edge([f"http://127.0.0.1:{port}"], timeout=0.2, ttl_seconds=1)
    edge.purge(["p9"])
    time.sleep(0.5)
    assert edge.pending() == {f"http://127.0.0.1:{port}": {"p9"}}  # still retried at 0.5 s
    assert _wait(lambda: not edge.pending(), seconds=5)  # dropped once the TTL has passed
