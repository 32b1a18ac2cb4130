"""Query strings read one way for every route: a single-valued parameter sent twice is a 400.

apiflask hands a route's declared query model `request.args.to_dict()`, which keeps the
first of repeated values: `?limit=5&limit=10` silently meant 5. This hook reads the query
model each endpoint declares (`@bp.input(Model, location="query")`) and refuses a repeat
of any of its fields that is not a list, before the view runs, so no route can forget it.
"""

from __future__ import annotations

import typing

from apiflask import APIFlask
from flask import request
from pydantic import BaseModel

from .errors import AmbiguousInput

QUERY_LOCATIONS = ("query", "querystring")
MULTI_VALUED = (list, tuple, set, frozenset)


class RepeatedParameter(AmbiguousInput):
    """A single-valued query parameter appeared more than once: which one is meant?"""

    def __init__(self, name: str, count: int) -> None:
        super().__init__(
            f"Query parameter '{name}' was given {count} times; it takes one value.",
            [{"field": name, "message": f"given {count} times; send it once"}],
        )


def single_valued(model: type[BaseModel]) -> frozenset[str]:
    """The names (and aliases) of a model's fields that take one value."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        if _is_multi(field.annotation):
            continue
        names.add(name)
        if field.alias:
            names.add(field.alias)
    return frozenset(names)


def _is_multi(annotation: object) -> bool:
    """list[...] / tuple[...] / set[...], also inside Optional or Annotated."""
    origin = typing.get_origin(annotation)
    if origin in MULTI_VALUED or annotation in MULTI_VALUED:
        return True
    return any(_is_multi(arg) for arg in typing.get_args(annotation))


def _declared(app: APIFlask) -> dict[str, frozenset[str]]:
    """endpoint -> single-valued query parameters, from each view's declared query models."""
    found: dict[str, frozenset[str]] = {}
    for endpoint, view in app.view_functions.items():
        spec = getattr(view, "_spec", {}) or {}
        names: frozenset[str] = frozenset()
        for schema, location in spec.get("args", []):
            is_model = isinstance(schema, type) and issubclass(schema, BaseModel)
            if location in QUERY_LOCATIONS and is_model:
                names |= single_valued(schema)
        if names:
            found[endpoint] = names
    return found


def init_app(app: APIFlask) -> None:
    """Check every request's query against its endpoint's model (call after the blueprints)."""
    declared = _declared(app)

    @app.before_request
    def _refuse_repeats() -> None:
        names = declared.get(request.endpoint or "")
        if not names or not request.args:
            return
        for name, values in request.args.lists():
            if len(values) > 1 and name in names:
                raise RepeatedParameter(name, len(values))
