"""Order emails against a real SMTP server: aiosmtpd on 127.0.0.1, in this process.

Each test starts its own server (a thread, not a process: no `slow` mark) on a free port,
with plain SMTP, STARTTLS, implicit TLS or AUTH, and a handler that keeps what arrives or
answers RCPT/DATA with the reply under test. TLS uses a self-signed certificate made by
the openssl command line once per session; the client trusts it through `tls_context`.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from flipkart_api.events.mail import MailFailed, SmtpConfig, render_order_email, send

from .receivers import Inbox
from .servers import free_port

SENDER = "orders@shop.example"
RECIPIENT = "asha@example.in"
HOSTILE = "<script>alert('x')</script> Phone & Case"
USER, PASSWORD = "shop", "p@ss:w/rd%"
PASSWORD_IN_URL = "p%40ss%3Aw%2Frd%25"
STATUSES = ("order.confirmed", "order.shipped", "order.delivered", "order.cancelled")


def _order(**changes: Any) -> dict[str, Any]:
    """An order as the API's JSON has it: one line of two, money in paise."""
    order: dict[str, Any] = {
        "id": 12,
        "status": "placed",
        "items": [
            {
                "product_id": 3,
                "sku": "SKU-1",
                "name": HOSTILE,
                "unit_price": 1299900,
                "quantity": 2,
                "line_total": 2599800,
            }
        ],
        "total": 2599800,
        "currency": "INR",
        "shipping_address": {
            "name": "Asha Rao",
            "line1": "12 MG Road",
            "line2": "Flat 4B",
            "city": "Bengaluru",
            "state": "Karnataka",
            "pincode": "560001",
            "phone": "9876543210",
        },
        "created_at": "2026-12-02T10:00:00Z",
        "updated_at": "2026-12-03T18:45:00Z",
    }
    return order | changes


def _render(event_type: str = "order.placed", **changes: Any) -> EmailMessage:
    """The email for evt_abc about _order(**changes)."""
    return render_order_email(
        event_id="evt_abc",
        event_type=event_type,
        order=_order(**changes),
        recipient=RECIPIENT,
        sender=SENDER,
    )


def _parts(message: EmailMessage) -> tuple[str, str]:
    """The text and the HTML alternative's decoded content."""
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    """Accept USER/PASSWORD only; handled=False lets aiosmtpd answer 535 otherwise."""
    ok = isinstance(auth_data, LoginPassword) and auth_data == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[Inbox, int]]]:
    """Start aiosmtpd servers for one test (Controller options as keywords); stop them after."""
    with contextlib.ExitStack() as stack:

        def start(inbox: Inbox | None = None, **options: Any) -> tuple[Inbox, int]:
            inbox = inbox or Inbox()
            port = free_port()
            # server_hostname: without it aiosmtpd asks DNS for this host's FQDN.
            controller = Controller(
                inbox, hostname="127.0.0.1", port=port, server_hostname="mx.test", **options
            )
            controller.start()
            stack.callback(controller.stop)
            return inbox, port

        yield start


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (EC: made in milliseconds)."""
    if shutil.which("openssl") is None:
        pytest.skip("the TLS tests need the openssl command line")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=10,
    )
    return cert, key


@pytest.fixture
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """The server's side of TLS: the certificate and its key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def client_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """A verifying client context that trusts only the test certificate."""
    return ssl.create_default_context(cafile=str(certificate[0]))


def _config(url: str, timeout: float = 3.0) -> SmtpConfig:
    """SmtpConfig for url, with SENDER."""
    return SmtpConfig.from_url(url, sender=SENDER, timeout_seconds=timeout)


def test_a_placed_order_email_arrives_with_both_parts(serve) -> None:
    """Envelope, headers, both alternatives, the total in rupees, the hostile name escaped."""
    inbox, port = serve()
    send(_render(), _config(f"smtp://127.0.0.1:{port}"))

    [got] = inbox.received
    assert (got.mail_from, got.rcpt_tos) == (SENDER, [RECIPIENT])
    message = got.message
    assert message["Subject"] == "Your order #12 is placed"
    assert message["To"] == RECIPIENT
    assert message["From"] == f"flipkart-api <{SENDER}>"
    assert message["Message-ID"] == "<evt_abc.order-email@flipkart-api.invalid>"
    assert message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    text, html = _parts(message)
    for part in (text, html):
        assert "₹25,998.00" in part
        assert "₹12,999.00" in part
        assert "Flat 4B" in part
        assert "560001" in part
        assert "2 Dec 2026, 15:30 IST" in part  # 10:00 UTC
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Phone &amp; Case" in html
    assert "<script>" not in html
    assert HOSTILE in text  # plain text is not HTML: the name as it is


@pytest.mark.parametrize("event_type", STATUSES)
def test_status_emails(serve, event_type: str) -> None:
    """Each status change: its subject and headline, the items and the total, no address."""
    inbox, port = serve()
    send(
        _render(event_type, status=event_type.removeprefix("order.")),
        _config(f"smtp://127.0.0.1:{port}"),
    )

    [got] = inbox.received
    word = {"order.shipped": "has shipped"}.get(event_type, "is " + event_type[6:])
    assert got.message["Subject"] == f"Your order #12 {word}"
    text, html = _parts(got.message)
    headline = {"order.shipped": "Your order is on its way"}.get(
        event_type, f"Your order is {event_type[6:]}"
    )
    for part in (text, html):
        assert headline in part
        assert "₹25,998.00" in part
        assert "4 Dec 2026, 00:15 IST" in part  # updated_at: 3 Dec, 18:45 UTC
        assert "Flat 4B" not in part
    assert "&lt;script&gt;" in html
    assert "<script>" not in html


def test_indian_digit_grouping_and_the_order_link() -> None:
    """Lakhs and crores, paise kept; the link in both parts, escaped in the HTML."""
    message = render_order_email(
        event_id="evt_1.retry",
        event_type="order.placed",
        order=_order(total=123456789),
        recipient=RECIPIENT,
        sender="Shop <orders@shop.example>",
        shop_name="Shop",
        order_url="https://shop.example/orders/12?a=1&b=2",
    )
    text, html = _parts(message)
    assert "Order total: ₹12,34,567.89" in text
    assert "₹12,34,567.89" in html
    assert "https://shop.example/orders/12?a=1&b=2" in text
    assert 'href="https://shop.example/orders/12?a=1&amp;b=2"' in html
    assert message["From"] == "Shop <orders@shop.example>"
    assert message["Message-ID"] == "<evt_1.retry.order-email@flipkart-api.invalid>"


def test_the_same_event_renders_the_same_message_id() -> None:
    """A retry after a crash sends what the first attempt sent, so clients deduplicate."""
    first, again = _render(), _render()
    assert first["Message-ID"] == again["Message-ID"]
    other = render_order_email(
        event_id="evt_abd",
        event_type="order.placed",
        order=_order(),
        recipient=RECIPIENT,
        sender=SENDER,
    )
    assert other["Message-ID"] != first["Message-ID"]


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"event_type": "order.refunded"}, "order.refunded"),
        ({"event_id": "evt\r\nBcc: x@evil.example"}, "event_id"),
        ({"event_id": "evt>"}, "event_id"),
        ({"order_url": "javascript:alert(1)"}, "order_url"),
        ({"order": {k: v for k, v in _order().items() if k != "items"}}, "lacks a field"),
        ({"order": _order(shipping_address={"name": "Asha"})}, "lacks a field"),
        ({"order": _order(currency="USD")}, "INR"),
    ],
)
def test_render_refuses_what_it_cannot_send(changes: dict[str, Any], needle: str) -> None:
    """Unknown events, ids that would break the header, odd links and orders: ValueError."""
    arguments: dict[str, Any] = {
        "event_id": "evt_abc",
        "event_type": "order.placed",
        "order": _order(),
        "recipient": RECIPIENT,
        "sender": SENDER,
    }
    with pytest.raises(ValueError, match=re.escape(needle)):
        render_order_email(**(arguments | changes))


def test_starttls_with_a_trusted_certificate(serve, server_tls, client_tls) -> None:
    """STARTTLS before MAIL (the server insists), verified against the passed context."""
    inbox, port = serve(tls_context=server_tls, require_starttls=True)
    send(_render(), _config(f"smtp+starttls://127.0.0.1:{port}"), client_tls)
    [got] = inbox.received
    assert got.tls


def test_starttls_verifies_by_default(serve, server_tls) -> None:
    """Without a context the system's CAs decide: a self-signed server is refused."""
    inbox, port = serve(tls_context=server_tls, require_starttls=True)
    with pytest.raises(MailFailed, match="SSLCertVerificationError") as caught:
        send(_render(), _config(f"smtp://127.0.0.1:{port}?starttls=true"))
    assert caught.value.temporary  # no answer from the server: an operator can fix it
    assert inbox.received == []


def test_implicit_tls(serve, server_tls, client_tls) -> None:
    """smtps://: TLS from the first byte."""
    inbox, port = serve(ssl_context=server_tls)
    send(_render(), _config(f"smtps://127.0.0.1:{port}"), client_tls)
    [got] = inbox.received
    assert got.tls


@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
def test_auth_with_a_percent_encoded_password(serve, server_tls, client_tls, scheme) -> None:
    """The decoded password logs in, over either kind of TLS."""
    if scheme == "smtps":
        # aiosmtpd counts only STARTTLS as TLS for AUTH; under implicit TLS it offers AUTH
        # only with auth_require_tls off (and auth_required off, or it warns).
        tls = {"ssl_context": server_tls, "auth_require_tls": False}
    else:
        tls = {"tls_context": server_tls, "auth_required": True}
    inbox, port = serve(authenticator=_authenticator, **tls)
    send(_render(), _config(f"{scheme}://{USER}:{PASSWORD_IN_URL}@127.0.0.1:{port}"), client_tls)
    [got] = inbox.received
    assert got.tls


def test_a_wrong_password_is_permanent(serve, server_tls, client_tls) -> None:
    """535 (credentials invalid) is a 5xx: retrying cannot help. The message has no secret."""
    inbox, port = serve(tls_context=server_tls, authenticator=_authenticator, auth_required=True)
    config = _config(f"smtp+starttls://{USER}:wrong-{PASSWORD_IN_URL}@127.0.0.1:{port}")
    with pytest.raises(MailFailed, match="SMTPAuthenticationError: 535") as caught:
        send(_render(), config, client_tls)
    assert not caught.value.temporary
    assert "wrong-" not in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert caught.value.__cause__ is None  # no chained exception with the full reply
    assert inbox.received == []


def test_a_reply_that_repeats_the_password_is_redacted(serve, server_tls, client_tls) -> None:
    """Even a server that echoes the secret back cannot put it in MailFailed."""
    inbox = Inbox(rcpt_reply=f"550 5.1.1 not for {USER}:{PASSWORD}")
    _, port = serve(inbox, tls_context=server_tls, authenticator=_authenticator)
    config = _config(f"smtp+starttls://{USER}:{PASSWORD_IN_URL}@127.0.0.1:{port}")
    with pytest.raises(MailFailed, match=re.escape(f"not for {USER}:***")) as caught:
        send(_render(), config, client_tls)
    assert PASSWORD not in str(caught.value)


def test_no_login_where_auth_is_required_is_permanent(serve, server_tls, client_tls) -> None:
    """MAIL without AUTH: 530, a refusal that repeats until the config changes."""
    _, port = serve(tls_context=server_tls, authenticator=_authenticator, auth_required=True)
    with pytest.raises(MailFailed, match="530") as caught:
        send(_render(), _config(f"smtp+starttls://127.0.0.1:{port}"), client_tls)
    assert not caught.value.temporary


def test_a_server_that_is_down_is_temporary_and_quick() -> None:
    """Nothing listening: refused at once, well within the timeout."""
    started = time.monotonic()
    with pytest.raises(MailFailed, match="ConnectionRefusedError") as caught:
        send(_render(), _config(f"smtp://127.0.0.1:{free_port()}", timeout=2.0))
    assert caught.value.temporary
    assert time.monotonic() - started < 2.0


def test_a_server_that_never_greets_times_out() -> None:
    """A listener that accepts but says nothing: the timeout ends it, temporary."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # the kernel completes the handshake; nobody ever answers
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(MailFailed, match="timed out") as caught:
            send(_render(), _config(f"smtp://127.0.0.1:{port}", timeout=0.3))
        elapsed = time.monotonic() - started
    assert caught.value.temporary
    assert 0.25 < elapsed < 1.5


@pytest.mark.parametrize(
    ("inbox", "temporary"),
    [
        (Inbox(rcpt_reply="550 5.1.1 No such user here"), False),
        (Inbox(rcpt_reply="451 4.3.0 Try again later"), True),
        (Inbox(data_reply="554 5.6.0 Message refused"), False),
        (Inbox(data_reply="452 4.3.1 Insufficient system storage"), True),
    ],
    ids=["rcpt-550", "rcpt-451", "data-554", "data-452"],
)
def test_refusals_map_by_reply_code(serve, inbox: Inbox, temporary: bool) -> None:
    """4xx is temporary, 5xx permanent; the code and the reply are in the message."""
    _, port = serve(inbox)
    reply = inbox.rcpt_reply or inbox.data_reply or ""
    with pytest.raises(MailFailed) as caught:
        send(_render(), _config(f"smtp://127.0.0.1:{port}"))
    assert caught.value.temporary is temporary
    assert reply in str(caught.value)
    assert inbox.received == []


def test_a_long_reply_is_cut_short(serve) -> None:
    """A server's page of diagnostics becomes one short line."""
    _, port = serve(Inbox(rcpt_reply="550 5.7.1 " + "blocked because " * 200))
    with pytest.raises(MailFailed) as caught:
        send(_render(), _config(f"smtp://127.0.0.1:{port}"))
    assert len(str(caught.value)) <= 330
    assert "\n" not in str(caught.value)
    assert str(caught.value).endswith("…")


@pytest.mark.parametrize("refused", [False, True])
def test_the_connection_is_closed_either_way(serve, monkeypatch, refused: bool) -> None:
    """After a delivery and after a refusal, no socket stays open."""
    states: list[bool] = []
    close = smtplib.SMTP.close

    def spy(self: smtplib.SMTP) -> None:
        close(self)
        states.append(self.sock is None)

    monkeypatch.setattr(smtplib.SMTP, "close", spy)
    _, port = serve(Inbox(rcpt_reply="550 5.1.1 No such user here" if refused else None))
    with contextlib.suppress(MailFailed):
        send(_render(), _config(f"smtp://127.0.0.1:{port}"))
    assert states
    assert all(states)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.in", ("mail.example.in", 25, None, None, "none")),
        ("smtp://mail.example.in:2525/", ("mail.example.in", 2525, None, None, "none")),
        ("smtp://u:p@mx.example:587?starttls=true", ("mx.example", 587, "u", "p", "starttls")),
        ("smtp://u:p@mx.example?starttls=true", ("mx.example", 587, "u", "p", "starttls")),
        ("smtp://mx.example?starttls=false", ("mx.example", 25, None, None, "none")),
        ("smtp+starttls://u:p@mx.example", ("mx.example", 587, "u", "p", "starttls")),
        ("smtps://u:p@mx.example", ("mx.example", 465, "u", "p", "tls")),
        ("smtps://mx.example:2465", ("mx.example", 2465, None, None, "tls")),
        (
            f"smtps://me%40shop.example:{PASSWORD_IN_URL}@[::1]:465",
            ("::1", 465, "me@shop.example", PASSWORD, "tls"),
        ),
        (" smtp://relay\n", ("relay", 25, None, None, "none")),
    ],
)
def test_from_url(url: str, expected: tuple[Any, ...]) -> None:
    """Schemes, default ports, the starttls option, percent-decoded credentials."""
    config = SmtpConfig.from_url(url, sender=SENDER)
    got = (config.host, config.port, config.username, config.password, config.security)
    assert got == expected
    assert (config.sender, config.timeout_seconds) == (SENDER, 10.0)


@pytest.mark.parametrize(
    "url",
    [
        "http://u:hunter2@mx.example",
        "mx.example:25",
        "smtp://u:hunter2@",
        "smtp://:hunter2@mx.example",
        "smtp://u:hunter2@mx.example:99999",
        "smtp://u:hunter2@mx.example:0",
        "smtp://u:hunter2@mx.example:2hunter2",
        "smtp://u:hunter2@mx.example/path",
        "smtp://u:hunter/2@mx.example",
        "smtp://u:hunter2?x=1@mx.example",
        "smtp://u:hunter2@mx.example?tls=1",
        "smtp://u:hunter2@mx.example?starttls=maybe",
        "smtps://u:hunter2@mx.example?starttls=true",
        "smtp://u:hunter2@mx.example#hunter2",
    ],
)
def test_from_url_errors_never_show_the_password(url: str) -> None:
    """Every bad SMTP_URL: a one-line ValueError naming the problem, no part of the secret."""
    with pytest.raises(ValueError, match="SMTP_URL") as caught:
        SmtpConfig.from_url(url, sender=SENDER)
    message = str(caught.value)
    assert "hunter" not in message
    assert "\n" not in message


def test_the_config_checks_sender_and_timeout_and_hides_the_password() -> None:
    """No sender or a non-positive timeout is refused; repr never shows the password."""
    with pytest.raises(ValueError, match="sender"):
        SmtpConfig.from_url("smtp://mx.example", sender="")
    with pytest.raises(ValueError, match="timeout"):
        SmtpConfig.from_url("smtp://mx.example", sender=SENDER, timeout_seconds=0)
    config = SmtpConfig.from_url("smtps://u:hunter2@mx.example", sender=SENDER)
    assert config.password == "hunter2"
    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config)
    assert "mx.example" in repr(config)
