"""Finishing touches on the generated OpenAPI document: the real error shape and headers."""

from __future__ import annotations

from typing import Any

from apiflask import APIFlask
from werkzeug.routing import IntegerConverter, Map

from .errors import PROBLEM_MEDIA_TYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
CACHED_PATHS = ("/api/v1/products", "/api/v1/products/{product_id}", "/api/v1/categories", "/")
X_CACHE = {
    "description": "HIT, MISS, or BYPASS when the cache is unavailable",
    "schema": {"type": "string", "enum": ["HIT", "MISS", "BYPASS"]},
}


APIFLASK_ERRORS = ("HTTPError", "ValidationError")  # apiflask's defaults; we send problem+json
MAX_ID = 2**63 - 1  # BIGINT


class IdConverter(IntegerConverter):
    """`<int:...>` for BIGINT ids: 1..2^63-1, so an impossible id is a routing 404."""

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


def _finish(spec: dict[str, Any] | str) -> dict[str, Any] | str:
    """Errors are problem+json; cached GETs document X-Cache."""
    if isinstance(spec, str):  # only when SPEC_FORMAT is yaml, which we do not use
        return spec
    spec["components"]["schemas"]["Problem"] = PROBLEM_SCHEMA
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for code, response in operation.get("responses", {}).items():
                generic = any(name in str(response.get("content")) for name in APIFLASK_ERRORS)
                if int(code) >= 400 and generic:
                    response["content"] = {
                        PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    }
            for param in operation.get("parameters", []):
                if param["in"] == "header":  # apiflask lower-cases them: idempotency-key
                    param["name"] = "-".join(w.capitalize() for w in param["name"].split("-"))
            if method == "get" and path in CACHED_PATHS:
                operation["responses"]["200"].setdefault("headers", {})["X-Cache"] = X_CACHE
    for unused in APIFLASK_ERRORS:
        spec["components"]["schemas"].pop(unused, None)
    return spec


def init_app(app: APIFlask) -> None:
    """Install the id converter and the spec processor."""
    app.url_map.converters["int"] = IdConverter
    app.spec_processor(_finish)
