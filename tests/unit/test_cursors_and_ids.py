"""Keyset cursors and path ids: what a client may forge is refused as input, never a 500."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from werkzeug.exceptions import NotFound
from werkzeug.routing import Map, MapAdapter, Rule

from flipkart_api.errors import InvalidInput
from flipkart_api.orders.schemas import ProductId
from flipkart_api.pagination import decode_cursor, encode_cursor
from flipkart_api.routing import IdConverter, _up_to
from flipkart_api.schemas import MAX_ID


def forge(data: Any) -> str:
    """A cursor as a client could write one by hand: any JSON (2**70 too), base64url."""
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("value", "datetime_key"),
    [
        (4999, False),
        (-12, False),
        (129.5, False),
        (MAX_ID, False),
        (dt.datetime(2026, 12, 1, 20, 0, 0, 123456, tzinfo=dt.UTC), True),
        (dt.datetime(2026, 12, 1, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=5.5))), True),
    ],
)
def test_a_cursor_round_trips(value: Any, datetime_key: bool) -> None:
    cursor = encode_cursor("price", value, 42)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)  # URL-safe, no padding to escape
    assert decode_cursor(cursor, "price", datetime_key) == (value, 42)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!not base64!!!",
        "====",
        base64.urlsafe_b64encode(b"\xff\xfe not json").decode(),
        forge([1, 2, 3]),
        forge("a string"),
        forge({"s": "price", "k": 5}),  # no id
        forge({"s": "price", "i": 5}),  # no key
        forge({"k": 5, "i": 5}),  # no sort
    ],
    ids=lambda c: c[:20] or "empty",
)
def test_garbage_cursors_are_input_errors(cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_cursor(cursor, "price", datetime_key=False)
    assert caught.value.errors == [{"field": "cursor", "message": "invalid cursor for this query"}]


@pytest.mark.parametrize(
    "last_id",
    [0, -1, MAX_ID + 1, 2**70, True, "5", 5.0, None],
    ids=repr,
)
def test_ids_outside_bigint_or_not_integers_are_refused(last_id: Any) -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(forge({"s": "price", "k": 10, "i": last_id}), "price", datetime_key=False)


def test_the_largest_bigint_id_is_accepted() -> None:
    assert decode_cursor(forge({"s": "price", "k": 10, "i": MAX_ID}), "price", False) == (
        10,
        MAX_ID,
    )


@pytest.mark.parametrize(
    "key",
    [MAX_ID + 1, -(MAX_ID + 1), 2**70, -(2**70), 1e300, "10", None, True, [1], {"a": 1}],
    ids=repr,
)
def test_numeric_keys_beyond_bigint_or_not_numbers_are_refused(key: Any) -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(forge({"s": "price", "k": key, "i": 1}), "price", datetime_key=False)


@pytest.mark.parametrize(
    "key",
    ["2026-12-01T20:00:00", "yesterday", "", 1764619200, None],
    ids=repr,
)
def test_datetime_keys_must_be_aware_iso_datetimes(key: Any) -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(forge({"s": "newest", "k": key, "i": 1}), "newest", datetime_key=True)


def test_a_cursor_for_another_sort_is_refused() -> None:
    cursor = encode_cursor("price", 100, 7)
    assert decode_cursor(cursor, "price", False) == (100, 7)
    with pytest.raises(InvalidInput):
        decode_cursor(cursor, "rating", False)


# -- path ids ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def urls() -> MapAdapter:
    """The project's id converter in a bare werkzeug map, as the app installs it."""
    url_map = Map(
        [Rule("/products/<int:product_id>", endpoint="product")],
        converters={"int": IdConverter},
    )
    return url_map.bind("api.example")


@pytest.mark.parametrize("raw", ["1", "6", "42", str(MAX_ID - 1), str(MAX_ID)])
def test_ids_in_range_route(urls: MapAdapter, raw: str) -> None:
    assert urls.match(f"/products/{raw}") == ("product", {"product_id": int(raw)})


@pytest.mark.parametrize(
    "raw",
    ["0", "-1", "06", "00", "+6", "6.0", "1e3", str(MAX_ID + 1), str(2**64), "9" * 19, "9" * 40],
)
def test_ids_out_of_range_or_not_canonical_do_not_route(urls: MapAdapter, raw: str) -> None:
    with pytest.raises(NotFound):
        urls.match(f"/products/{raw}")


def test_ids_build_back_into_the_same_url(urls: MapAdapter) -> None:
    assert urls.build("product", {"product_id": MAX_ID}) == f"/products/{MAX_ID}"


@pytest.mark.parametrize("limit", [1, 9, 10, 11, 99, 100, 101, 199, 200, 909, 1000, 4321])
def test_the_id_regex_matches_exactly_one_to_limit(limit: int) -> None:
    """Exhaustive on small limits: every number up to limit*2, with and without a 0 prefix."""
    pattern = re.compile(_up_to(limit))
    for n in range(limit * 2 + 2):
        assert bool(pattern.fullmatch(str(n))) == (1 <= n <= limit), n
        assert not pattern.fullmatch("0" + str(n)), n


@pytest.mark.parametrize("raw", [0, -1, MAX_ID + 1, 2**64, "6", "06", 6.0, True])
def test_body_product_ids_outside_bigint_or_not_integers_are_refused(raw: Any) -> None:
    """Ids in bodies (order items) have the same bounds as ids in paths."""
    with pytest.raises(ValidationError):
        TypeAdapter(ProductId).validate_python(raw)


@pytest.mark.parametrize("raw", [1, MAX_ID])
def test_body_product_ids_in_range_are_accepted(raw: int) -> None:
    assert TypeAdapter(ProductId).validate_python(raw) == raw
