"""Real receivers for the event tests, and running the worker until nothing is due.

`WebhookReceiver` is a threaded HTTP server on 127.0.0.1 that records every request and
answers with the statuses it is told to (then 200). `Inbox` keeps what a real SMTP server
(aiosmtpd, `start_smtp`) is sent. `drain` runs the worker's real code until nothing is due:
the embedded loop on SQLite, a procrastinate worker on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from flask import Flask

from flipkart_api.db import session

from .servers import free_port


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed."""
        return json.loads(self.body)


class WebhookReceiver:
    """Records requests; answers `statuses` in turn (then 200), after `delay` seconds each.

    `port`: listen there (a receiver coming back where webhooks were being refused); 0: any.
    """

    def __init__(
        self, statuses: list[int] | None = None, delay: float = 0.0, port: int = 0
    ) -> None:
        self.received: list[Received] = []
        self.statuses = list(statuses or [])
        self.delay = delay
        self.in_flight = 0  # requests being handled right now (read, not yet answered)
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Where to send webhooks."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def bodies(self) -> list[Any]:
        """The parsed bodies, in arrival order."""
        with self.lock:
            return [r.json() for r in self.received]

    def close(self) -> None:
        """Stop and free the port."""
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.in_flight += 1
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.in_flight -= 1
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                answer = b'{"ok": true}' if status < 400 else b"receiver says no"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        return Handler


DUE = (
    "SELECT count(*) AS due FROM procrastinate_jobs WHERE status = 'todo'"
    " AND (scheduled_at IS NULL OR scheduled_at <= now())"
)


@dataclass
class Mail:
    """One message as the server took it: the envelope, the parsed message, TLS or not."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool


@dataclass
class Inbox:
    """An aiosmtpd handler: keeps what arrives, or answers RCPT or DATA with a set reply."""

    rcpt_reply: str | None = None
    data_reply: str | None = None
    received: list[Mail] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        """Refuse with rcpt_reply if set, else accept the recipient."""
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        """Keep the message (unless data_reply refuses it)."""
        if self.data_reply:
            return self.data_reply
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        # session.ssl is set by STARTTLS only; the transport knows implicit TLS too.
        tls = server.transport.get_extra_info("ssl_object") is not None
        self.received.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message, tls))
        return "250 Message accepted"


def start_smtp(inbox: Inbox) -> tuple[Controller, int]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 delivering into `inbox`; stop() it after."""
    port = free_port()
    # server_hostname: without it aiosmtpd asks DNS for this host's FQDN.
    controller = Controller(inbox, hostname="127.0.0.1", port=port, server_hostname="mx.test")
    controller.start()
    return controller, port


def drain(app: Flask) -> None:
    """Run the worker's code until nothing is due now (retries later are left waiting)."""
    settings = app.config["SETTINGS"]
    if settings.uses_sqlite:
        from flipkart_api.events.embedded import EmbeddedWorker

        worker = EmbeddedWorker(app)
        with app.app_context():
            while worker.step(session()):
                pass
        return
    from flipkart_api.events.relay import relay_once
    from flipkart_api.events.worker import procrastinate_app, worker_options

    while relay_once(app):  # every committed event fanned out, its jobs deferred
        pass

    async def run() -> None:
        queue = procrastinate_app(settings)
        async with queue.open_async():
            options = worker_options(settings, app) | {
                "wait": False,
                "install_signal_handlers": False,
                "listen_notify": False,
            }
            # A round ends when one of its fetchers finds nothing, which can be before a job
            # another one finished: go again while any job is due.
            for _ in range(50):
                await queue.run_worker_async(**options)
                if not (await queue.connector.execute_query_one_async(DUE))["due"]:
                    return

    asyncio.run(run())


def drain_until(app: Flask, done: Callable[[], bool], timeout: float = 10.0) -> None:
    """Drain again and again (retries come due) until `done()` or the timeout fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        drain(app)
        if done():
            return
        if time.monotonic() > deadline:
            raise AssertionError("the worker did not get there in time")
        time.sleep(0.05)
