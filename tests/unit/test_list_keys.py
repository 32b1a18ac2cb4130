"""Which list keys a product write purges (catalog/cache_keys.py)."""

from __future__ import annotations

import pytest

from flipkart_api.catalog.cache_keys import list_keys_for_fields


@pytest.mark.parametrize(
    ("fields", "keys"),
    [
        ({"price"}, ("by-price",)),
        ({"price", "mrp"}, ("by-price",)),
        ({"stock"}, ("by-stock",)),
        ({"name"}, ("by-text",)),
        ({"brand", "sku", "description"}, ("by-text",)),
        ({"name", "stock"}, ("by-stock", "by-text")),
        # Shown on a page but never filtered or sorted by: only the pages listing it.
        ({"mrp", "images"}, ()),
        # The category decides which pages a product is on at all: every list.
        ({"category", "price"}, ("products",)),
    ],
)
def test_a_write_purges_the_lists_its_fields_can_move(
    fields: set[str], keys: tuple[str, ...]
) -> None:
    assert list_keys_for_fields(fields) == keys
