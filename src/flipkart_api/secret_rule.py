"""What counts as a real secret: long enough, and not the dev key or a known placeholder."""

from __future__ import annotations

# Known-bad secrets: the dev default and the usual copy-paste placeholders.
DEV_SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"  # noqa: S105
PLACEHOLDER_SECRETS = frozenset(
    {DEV_SECRET_KEY, "changeme", "change-me", "secret", "your-secret-key", "please-change-me"}
)
MIN_SECRET_LENGTH = 32


def is_strong_secret(secret: str) -> bool:
    """Long enough, and not the dev key or a copy-paste placeholder."""
    squashed = secret.lower().replace("-", "").replace("_", "")
    return (
        secret not in PLACEHOLDER_SECRETS
        and len(secret) >= MIN_SECRET_LENGTH
        and "changeme" not in squashed
    )
