"""Deterministic demo catalog: categories and products for seeding the storefront.

Pure and stdlib-only. Product ``i`` depends on ``i`` alone, so a seed run can be split
into chunks, resumed after a crash or run in parallel and still produce the same rows.
"""

from __future__ import annotations

import functools
import hashlib
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .catalog.slugs import product_slug, slugify
from .seed_tables import LEAF_TABLES, TREE


@dataclass(frozen=True)
class CategorySeed:
    """One category; ``parent_slug`` is None for top-level categories."""

    slug: str
    name: str
    parent_slug: str | None


@dataclass(frozen=True)
class ProductSeed:
    """One product; money is in paise so it never touches floating point."""

    sku: str
    slug: str
    name: str
    description: str
    brand: str
    category_slug: str
    price: int
    mrp: int
    stock: int
    rating: float
    images: list[str]


# All top-level categories first, so inserting in order never references a missing parent.
CATEGORIES: tuple[CategorySeed, ...] = (
    *(CategorySeed(slugify(top), top, None) for top, _ in TREE),
    *(CategorySeed(slugify(kid), kid, slugify(top)) for top, kids in TREE for kid in kids),
)


# Leaves in category order; the lookup fails at import if the tree and tables drift apart.
_BY_SLUG = {leaf.slug: leaf for leaf in LEAF_TABLES}
_LEAVES = tuple(_BY_SLUG[slugify(name)] for top, kids in TREE for name in (kids or (top,)))


# One BLAKE2 digest of the product number, read as 16 unsigned 16-bit slots: slot k feeds
# decision k. Seeding a random.Random per product costs more than building the product.
_SLOTS = struct.Struct("<16H")


# The leaf tables allow only ~71k distinct names, so every name's slug stays cached.
_name_slug: Callable[[str], str] = functools.lru_cache(maxsize=1 << 17)(slugify)


def _round_price(rupees: int, *, up: bool = False) -> int:
    """Round to the usual Indian price point: ...9 below ₹1,000, ...99 from there on."""
    if up:  # smallest price point >= rupees instead of the largest <= rupees
        rupees += 9 if rupees < 1000 else 99
    step = 10 if rupees < 1000 else 100
    return (rupees + 1) // step * step - 1


def _product(i: int) -> ProductSeed:
    """Product number ``i``; every value is derived from ``i`` alone."""
    u = _SLOTS.unpack(hashlib.blake2b(i.to_bytes(8, "little"), digest_size=32).digest())
    # Round-robin over leaves keeps the categories evenly filled at any count.
    leaf = _LEAVES[i % len(_LEAVES)]
    # ``slot % n`` favours low values by under 1% even for n = 500: invisible in demo data.
    brand, series = leaf.brands[u[0] % len(leaf.brands)]
    fields = {
        "brand": brand,
        "series": series[u[1] % len(series)],
        "a": leaf.a[u[2] % len(leaf.a)],
        "b": leaf.b[u[3] % len(leaf.b)],
        "c": leaf.c[u[4] % len(leaf.c)],
        "colour": leaf.colours[u[5] % len(leaf.colours)],
    }
    name = leaf.name.format_map(fields)[:200]
    first = u[6] % len(leaf.features)
    description = leaf.features[first].format_map(fields)
    if u[7] % 10 < 6:  # a second sentence on ~60% of products
        second = leaf.features[(first + 1) % len(leaf.features)]
        description = f"{description} {second.format_map(fields)}"

    price = max(leaf.lo, _round_price(int(leaf.lo * math.exp(u[8] / 65536 * leaf.log_span))))
    mrp = price
    if u[9] % 100 >= 15:  # the other 15% sell at MRP, i.e. no discount
        # Rounding the 5-55% markup up keeps it >= 5%; min() caps what rounding adds at 60%.
        marked_up = _round_price(math.ceil(price * (1.05 + 0.5 * u[10] / 65536)), up=True)
        mrp = min(marked_up, _round_price(price * 8 // 5))

    sku = f"FK{i:08d}"
    lower_sku = sku.lower()
    slug = product_slug(name, sku, _name_slug)  # the API's slug rule: one function for both
    url = f"https://img.example.in/products/{lower_sku}/"
    return ProductSeed(
        sku=sku,
        slug=slug,
        name=name,
        description=description[:2000],
        brand=brand,
        category_slug=leaf.slug,
        price=price * 100,
        mrp=mrp * 100,
        stock=0 if u[11] % 100 < 8 else 1 + u[12] % 500,
        # x ** 0.35 skews toward the top: median ~4.1, under 2% below 2.0, ~3.5% at 5.0.
        rating=round(1.0 + 4.0 * (u[13] / 65536) ** 0.35, 1),
        images=[f"{url}{n}.jpg" for n in range(1, 2 + u[14] % 3)],
    )


def iter_products(count: int, start: int = 0) -> Iterator[ProductSeed]:
    """Yield products numbered ``start`` .. ``count - 1``, identical on every run."""
    return map(_product, range(start, count))
