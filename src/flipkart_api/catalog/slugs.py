"""The one slug function, and how a product's slug is made unique.

Slugs are derived, readable URL words; they identify nothing. A product is identified by
its id and its SKU, compared exactly (case-sensitive: AB-1 and ab-1 are two products). So a
slug must never make a valid create fail: when two products slug alike, the later one gets
a numeric suffix ("-2", "-3", ...). See docs/decisions.md ("Slugs and SKUs").

Stdlib only: seed_data.py (pure, stdlib-only) imports this too.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Callable

# Lowercase letters and digits survive, apostrophes vanish ("Levi's" -> "levis") and any
# other ASCII character becomes a word break. Mapping every ASCII character (even to itself)
# keeps str.translate on its fast path, about twice as fast as a regex (the seed makes 1M).
_SLUG_KEEP = string.ascii_lowercase + string.digits
_SLUG_TABLE = str.maketrans(
    {chr(c): chr(c) if chr(c) in _SLUG_KEEP else " " for c in range(128)} | {"'": None}
)
# products.slug is String(220): 200 for name and SKU leaves room for any suffix.
PRODUCT_SLUG_BASE = 200


def slugify(text: str, max_length: int | None = None) -> str:
    """Lowercase ASCII words joined by hyphens ("Lakmé Levi's & Co" -> "lakme-levis-co")."""
    if not text.isascii():  # rare, so the NFKD accent-stripping stays off the hot path
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = "-".join(text.lower().translate(_SLUG_TABLE).split())
    return slug if max_length is None else slug[:max_length].rstrip("-")


def product_slug(name: str, sku: str, name_slug: Callable[[str], str] = slugify) -> str:
    """name words + SKU words, at most PRODUCT_SLUG_BASE characters (the SKU part whole).

    `name_slug` lets the seed pass a memoised slugify; the result is the same.
    """
    sku_part = slugify(sku)
    name_part = name_slug(name)[: PRODUCT_SLUG_BASE - 1 - len(sku_part)].rstrip("-")
    return f"{name_part}-{sku_part}".strip("-")


def candidates(base: str, start: int, count: int) -> list[str]:
    """The slugs to try in order: `base` (number 1), then `base-2`, `base-3`, ..."""
    return [base if n == 1 else f"{base}-{n}" for n in range(start, start + count)]
