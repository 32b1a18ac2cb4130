"""Opaque keyset cursors: (sort name, last row's key, last row's id) in URL-safe base64."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

import orjson

from .errors import InvalidInput


def encode_cursor(sort: str, value: Any, last_id: int) -> str:
    """A cursor that resumes after the row with this (key, id)."""
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    raw = orjson.dumps({"s": sort, "k": value, "i": last_id})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str, datetime_key: bool) -> tuple[Any, int]:
    """(key, id) from a cursor made by encode_cursor for the same sort; 422 otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
        value, last_id = data["k"], data["i"]
        if data["s"] != sort or not isinstance(last_id, int) or isinstance(last_id, bool):
            raise ValueError
        if datetime_key:
            value = dt.datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError
        elif not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError
    except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidInput("cursor", "invalid cursor for this query") from None
    return value, last_id
