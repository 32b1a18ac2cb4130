"""Standard Webhooks signing: endpoint secrets and the headers that carry a signature."""

from __future__ import annotations

import base64
import math
import secrets
from datetime import UTC, datetime

import standardwebhooks

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
# The spec allows keys of 24 to 64 bytes; 32 is the HMAC-SHA256 output size and what the
# reference libraries generate.
SECRET_BYTES = 32
USER_AGENT = "flipkart-api-webhooks/1"


def new_secret() -> str:
    """A fresh endpoint secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def signed_headers(
    secret: str, message_id: str, timestamp: datetime, body: bytes
) -> dict[str, str]:
    """The request headers for one delivery of `body`, signed with the endpoint's secret.

    `timestamp` must be timezone-aware. The body must be UTF-8 (JSON is): the library signs
    text, and str → bytes round-trips exactly for UTF-8, so the signature covers the bytes
    that are sent. A non-UTF-8 body raises UnicodeDecodeError rather than being mangled.
    """
    if timestamp.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    # Webhook.sign() does timestamp.replace(tzinfo=utc): an aware non-UTC time would be
    # shifted by its offset, so it gets UTC here. The header is the same whole second the
    # library signs (floor of the epoch time).
    utc = timestamp.astimezone(UTC)
    signature = standardwebhooks.Webhook(secret).sign(message_id, utc, body.decode("utf-8"))
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(math.floor(utc.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
