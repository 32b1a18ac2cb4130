"""Reading request bodies: JSON only when declared as JSON, and failures that say what they are."""

from __future__ import annotations

from typing import Any

from flask import Request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType


class MalformedJSON(BadRequest):
    """A request body that does not parse as JSON."""

    description = "The request body is not valid JSON."


class NotJSON(UnsupportedMediaType):
    """A request body sent without a JSON content type."""

    description = "The request body must be sent as Content-Type: application/json."


class APIRequest(Request):
    """Flask's request: JSON bodies only when declared as JSON, failures that say what they are."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        """Never `force`: apiflask forces, which parsed text/plain bodies and 400'd empty ones."""
        try:
            return super().get_json(force=False, silent=silent, cache=cache)
        except RecursionError:  # b"[" * 100_000: the stdlib parser recurses, it was a 500
            raise MalformedJSON() from None

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        """415 for a non-JSON content type, 400 for JSON that does not parse (text not shown)."""
        if e is None:
            raise NotJSON()
        raise MalformedJSON()
