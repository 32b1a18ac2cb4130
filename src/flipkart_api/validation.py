"""pydantic's validation errors as a client can read them: its own field names, plain words.

apiflask flattens pydantic's errors into `{"_schema": ["Input should be a valid dictionary or
instance of RegisterIn"]}`: a framework's placeholder for "the whole body", a Python class
name, and "Value error, ..." before every rule of ours. Here each error becomes
`{field, message}` with the field written as the client wrote it (`items[0].quantity`,
`Idempotency-Key`) and a message that names no class.
"""

from __future__ import annotations

from typing import Any

from flask import request
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .schemas import FieldError

# What the client sent a whole model as, when it is not one (nothing in the client's words
# is called a "dictionary" or an "instance of RegisterIn").
_OBJECT = "Input should be a JSON object"
_PLAIN = {
    "model_type": _OBJECT,
    "model_attributes_type": _OBJECT,
    "dict_type": _OBJECT,
    "dataclass_type": _OBJECT,
    "list_type": "Input should be a JSON array",
    "extra_forbidden": "Unknown field",
    "is_instance_of": "Input has the wrong type",
    "is_subclass_of": "Input has the wrong type",
}
# How a location's root is named when an error is about the whole of it.
_ROOT = {"json": "body", "query": "query", "headers": "headers", "view_args": "path"}


def _sent(location: str) -> Any:
    """What the client sent in this location, keyed as the model saw it."""
    if location == "json":
        return request.get_json(silent=True)
    if location == "query":
        return request.args.to_dict()
    if location == "headers":  # apiflask names X-Token x_token for the model
        return {name.lower().replace("-", "_"): value for name, value in request.headers}
    return request.view_args or {}


def _path(error: ErrorDetails, data: Any, location: str) -> list[str]:
    """The error's location in the client's data; a union member's tag ("int") is dropped."""
    parts: list[str] = []
    loc = error["loc"]
    for i, key in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(data, dict) and isinstance(key, str):
            if key not in data and not (last and error["type"] == "missing"):
                continue
            if location == "headers":
                key = "-".join(word.capitalize() for word in key.split("_"))
            parts.append(f".{key}" if parts else key)
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int):
            parts.append(f"[{key}]")
            data = data[key] if -len(data) <= key < len(data) else None
    return parts


def _message(error: ErrorDetails) -> tuple[str | None, str]:
    """(field named by one of our rules, or None; the message in plain words)."""
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        return cause.field, str(cause)
    if error["type"] in ("value_error", "assertion_error") and cause is not None:
        return None, str(cause)  # our validators' words, without "Value error, "
    return None, _PLAIN.get(error["type"], error["msg"])


def field_errors(error: ValidationError, location: str) -> list[dict[str, str]]:
    """One {field, message} per distinct problem, in pydantic's order."""
    data = _sent(location)
    result: list[dict[str, str]] = []
    for detail in error.errors(include_url=False):
        parts = _path(detail, data, location)
        named, message = _message(detail)
        if named is not None:
            parts.append(f".{named}" if parts else named)
        entry = {"field": "".join(parts) or _ROOT.get(location, location), "message": message}
        if entry not in result:  # a union reports each member: say each thing once
            result.append(entry)
    return result
