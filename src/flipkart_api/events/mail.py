"""Order emails: rendered from Jinja2 templates (text and HTML), delivered over SMTP.

`send` raises one exception, `MailFailed`; its `temporary` flag is the worker's one decision
(retry later, or give up). Permanent only when the server refused for good: a 5xx reply, or
no extension we need. Everything else (refused or reset connections, timeouts, TLS, DNS,
4xx replies) is temporary.
"""

from __future__ import annotations

import contextlib
import functools
import re
import smtplib
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any, Literal

import jinja2

Security = Literal["none", "starttls", "tls"]
_SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("none", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}
_URL_SHAPE = "expected smtp://, smtp+starttls:// or smtps://[user:password@]host[:port]"
_MAX_DETAIL = 300  # a server's reply can be a page of diagnostics; a log line needs the gist
_IST = timezone(timedelta(hours=5, minutes=30), "IST")  # India keeps no daylight saving time
# Dot-atom text: an event id goes into the Message-ID verbatim, so nothing that could end
# the header or the angle brackets gets in.
_EVENT_ID = re.compile(r"[A-Za-z0-9_+=-]+(\.[A-Za-z0-9_+=-]+)*")


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to deliver mail, read from SMTP_URL."""

    host: str
    port: int
    username: str | None
    password: str | None = field(repr=False)  # so a logged config leaks nothing
    security: Security
    timeout_seconds: float
    sender: str

    @classmethod
    def from_url(cls, url: str, sender: str, timeout_seconds: float = 10.0) -> SmtpConfig:
        """Parse SMTP_URL; errors never repeat any part of the URL, which may hold a secret."""
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in _SCHEMES:
            raise ValueError(f"SMTP_URL has an unknown scheme; {_URL_SHAPE}")
        security, default_port = _SCHEMES[parts.scheme]
        if parts.path not in ("", "/") or parts.fragment:
            raise ValueError(f"SMTP_URL has a path or fragment; {_URL_SHAPE}")
        if not parts.hostname:
            raise ValueError(f"SMTP_URL has no host; {_URL_SHAPE}")
        try:
            port = parts.port  # urllib's own message quotes the text, which may be a secret
        except ValueError:
            port = -1
        if port is not None and not 0 < port < 65536:
            raise ValueError("SMTP_URL has a bad port; expected a number from 1 to 65535")
        options = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        if options:
            starttls = options.pop("starttls", [""])[-1].lower()
            if options or parts.scheme != "smtp" or starttls not in ("true", "false"):
                raise ValueError("SMTP_URL's only option is ?starttls=true|false, on smtp://")
            if starttls == "true":
                security, default_port = _SCHEMES["smtp+starttls"]
        username = urllib.parse.unquote(parts.username) if parts.username else None
        password = urllib.parse.unquote(parts.password) if parts.password else None
        if password and not username:
            raise ValueError("SMTP_URL has a password but no user name")
        if not sender or timeout_seconds <= 0:
            raise ValueError("SMTP needs a sender address and a positive timeout")
        return cls(
            host=parts.hostname,
            port=port or default_port,
            username=username,
            password=password,
            security=security,
            timeout_seconds=timeout_seconds,
            sender=sender,
        )


class MailFailed(Exception):
    """Delivery failed; `temporary` says whether retrying later can succeed."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        """Keep the short message and the retry verdict."""
        super().__init__(message)
        self.temporary = temporary


def send(
    message: EmailMessage, config: SmtpConfig, tls_context: ssl.SSLContext | None = None
) -> None:
    """Deliver `message` through the server in `config`; raise MailFailed on any failure."""
    # Verifying by default; a context is passed for a private CA (and the tests).
    context = tls_context or ssl.create_default_context()
    client: smtplib.SMTP | None = None
    try:
        # The timeout covers the connect and every command after it (the socket keeps it,
        # through STARTTLS too): a stalled server costs at most one timeout per step.
        host, port, timeout = config.host, config.port, config.timeout_seconds
        if config.security == "tls":
            client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        if config.security == "starttls":
            client.starttls(context=context)
        if config.username:
            client.login(config.username, config.password or "")
        refused = client.send_message(message, from_addr=config.sender)
        if refused:  # some recipients accepted, some not: report those as one failure
            raise smtplib.SMTPRecipientsRefused(refused)
        # Accepted is delivered: a failed goodbye must not make the worker send it twice.
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
    except (smtplib.SMTPException, OSError) as exc:
        # `from None`: the chained exception would carry the server's full reply.
        raise _failure(exc, config.password) from None
    finally:
        if client is not None:
            client.close()


def _failure(exc: Exception, password: str | None) -> MailFailed:
    """Map an smtplib or socket error to MailFailed by the module's rule."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = exc.recipients.items()
        replies = "; ".join(f"{to}: {c} {r.decode(errors='replace')}" for to, (c, r) in refused)
        detail = f"recipient refused: {replies}"
        permanent = all(code >= 500 for _, (code, _) in refused)
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, reply = exc.smtp_code, exc.smtp_error
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
        detail, permanent = f"{type(exc).__name__}: {code} {text}", code >= 500
    else:
        # SMTPServerDisconnected and other OSErrors: no answer. The other SMTPExceptions (no
        # STARTTLS, no AUTH, no common mechanism) are the server's standing refusal.
        permanent = isinstance(exc, smtplib.SMTPException) and not isinstance(
            exc, smtplib.SMTPServerDisconnected
        )
        detail = f"{type(exc).__name__}: {exc}"
    detail = " ".join(detail.split())
    detail = detail.replace(password, "***") if password else detail
    detail = detail if len(detail) <= _MAX_DETAIL else detail[: _MAX_DETAIL - 1] + "…"
    return MailFailed(f"SMTP delivery failed: {detail}", temporary=not permanent)


# The subject's ending per event; the body's words are in the templates (_status.txt).
_SUBJECTS = {
    "order.placed": "is placed",
    "order.confirmed": "is confirmed",
    "order.shipped": "has shipped",
    "order.delivered": "is delivered",
    "order.cancelled": "is cancelled",
}


def render_order_email(
    *,
    event_id: str,
    event_type: str,
    order: Mapping[str, Any],
    recipient: str,
    sender: str,
    shop_name: str = "flipkart-api",
    order_url: str | None = None,
) -> EmailMessage:
    """Build the email for one order event: text and HTML alternatives, a stable Message-ID."""
    if event_type not in _SUBJECTS:
        raise ValueError(f"not an order email event: {event_type!r}; one of {', '.join(_SUBJECTS)}")
    template = "order_placed" if event_type == "order.placed" else "order_status"
    if not _EVENT_ID.fullmatch(event_id):
        raise ValueError("event_id must be letters, digits, '_+=-' and single dots")
    if order_url is not None and not order_url.startswith(("https://", "http://")):
        raise ValueError("order_url must be an http(s) URL")
    try:
        if order["currency"] != "INR":
            raise ValueError(f"order emails show INR only, not {order['currency']!r}")
        subject = f"Your order #{int(order['id'])} {_SUBJECTS[event_type]}"
        context = {
            "event_type": event_type,
            "subject": subject,
            "order": order,
            "items": order["items"],  # not order["items"] in Jinja: that falls back to dict.items
            "shop_name": shop_name,
            "order_url": order_url,
        }
        text = _environment().get_template(f"{template}.txt").render(context)
        html = _environment().get_template(f"{template}.html").render(context)
    except (KeyError, jinja2.UndefinedError) as exc:
        raise ValueError(f"order lacks a field the email needs: {exc}") from None
    message = EmailMessage()
    message["Subject"] = subject
    name, address = parseaddr(sender)
    message["From"] = sender if name else formataddr((shop_name, address))
    message["To"] = recipient
    message["Date"] = format_datetime(datetime.now(UTC))
    # The same event always gets the same Message-ID: a worker that retries after a crash
    # resends an identical message, and mail clients show it once.
    message["Message-ID"] = f"<{event_id}.order-email@flipkart-api.invalid>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def _inr(paise: int) -> str:
    """Paise as rupees in Indian digit grouping: 123456789 -> ₹12,34,567.89."""
    # Lakh and crore grouping (3 digits, then 2s) is how Indian customers read prices.
    rupees, fraction = divmod(abs(paise), 100)
    digits = str(rupees)
    head, groups = digits[:-3], [digits[-3:]]
    while head:
        head, groups = head[:-2], [head[-2:], *groups]
    return f"{'-' if paise < 0 else ''}₹{','.join(groups)}.{fraction:02d}"


def _ist(timestamp: str) -> str:
    """An API timestamp (ISO 8601, UTC) in India's time: 2 Dec 2026, 15:30 IST."""
    moment = datetime.fromisoformat(timestamp)
    if moment.tzinfo is None:  # the API's timestamps are UTC; a bare one is read as such
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(_IST)
    return f"{local.day} {local:%b %Y, %H:%M} IST"


@functools.cache
def _environment() -> jinja2.Environment:
    """The template environment, built on first use: HTML escaped, missing names an error."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("flipkart_api.events", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["inr"] = _inr
    env.filters["ist"] = _ist
    return env
