"""Finishing touches on the generated OpenAPI document: the real error shape and headers."""

from __future__ import annotations

from typing import Any

from apiflask import APIFlask

from .problems import PROBLEM_MEDIA_TYPE
from .schemas import MAX_ID

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
                "properties": {
                    "field": {
                        "type": "string",
                        "description": "As sent: price, items[0].quantity, Idempotency-Key; "
                        "body or query when the whole of it is wrong",
                    },
                    "message": {"type": "string"},
                },
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
# What any operation that takes a JSON body can answer before its schema is even consulted.
BODY_ERRORS = {
    "400": "The body is not valid JSON",
    "413": "The body is larger than 1 MB",
    "415": "The body is not sent as application/json",
}
# What any operation with query parameters answers to one of them sent twice (query.py).
REPEATED_QUERY = "A single-valued query parameter was sent more than once"


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": _problem_content()}


def _finish(spec: dict[str, Any] | str) -> dict[str, Any] | str:
    """Errors are problem+json; body errors and id ranges documented; cached GETs: X-Cache."""
    if isinstance(spec, str):  # only when SPEC_FORMAT is yaml, which we do not use
        return spec
    spec["components"]["schemas"]["Problem"] = PROBLEM_SCHEMA
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                for code, description in BODY_ERRORS.items():
                    operation["responses"].setdefault(code, _problem(description))
            for code, response in operation.get("responses", {}).items():
                generic = any(name in str(response.get("content")) for name in APIFLASK_ERRORS)
                if int(code) >= 400 and generic:
                    response["content"] = _problem_content()
            if any(param["in"] == "query" for param in operation.get("parameters", [])):
                operation["responses"].setdefault("400", _problem(REPEATED_QUERY))
            for param in operation.get("parameters", []):
                if param["in"] == "path" and param["schema"].get("type") == "integer":
                    param["schema"].update(minimum=1, maximum=MAX_ID)  # others: routing 404
                if param["in"] == "header":  # apiflask lower-cases them: idempotency-key
                    param["name"] = "-".join(w.capitalize() for w in param["name"].split("-"))
            if method == "get" and path in CACHED_PATHS:
                operation["responses"]["200"].setdefault("headers", {})["X-Cache"] = X_CACHE
    for unused in APIFLASK_ERRORS:
        spec["components"]["schemas"].pop(unused, None)
    return spec


def init_app(app: APIFlask) -> None:
    """Install the spec processor."""
    app.spec_processor(_finish)
