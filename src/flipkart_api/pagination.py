"""Opaque keyset cursors: (sort name, last row's key, last row's id) in URL-safe base64."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

import orjson

from .errors import InvalidInput
from .schemas import MAX_ID


def encode_cursor(sort: str, value: Any, last_id: int) -> str:
    """A cursor that resumes after the row with this (key, id)."""
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    raw = orjson.dumps({"s": sort, "k": value, "i": last_id})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def decode_cursor(cursor: str, sort: str, datetime_key: bool) -> tuple[Any, int]:
    """(key, id) from a cursor made by encode_cursor for the same sort; 422 otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
        value, last_id = data["k"], data["i"]
        if data["s"] != sort or not _is_int(last_id) or not 1 <= last_id <= MAX_ID:
            raise ValueError
        if datetime_key:
            value = dt.datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError
        elif not (isinstance(value, float) or _is_int(value)) or abs(value) > MAX_ID:
            raise ValueError  # a forged 2**70 (a float once parsed) overflowed bigint: a 500
    except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidInput("cursor", "invalid cursor for this query") from None
    return value, last_id
