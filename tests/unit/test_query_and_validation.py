"""query.py's single-valued rule and validation.py's field paths, on plain pydantic models.

validation.field_errors reads what the client sent from the request, so those cases run
in a bare Flask request context (no app of ours, no database).
"""

from __future__ import annotations

from typing import Annotated, Any

import flask
import pytest
from flask import Flask
from pydantic import BaseModel, Field, ValidationError, model_validator

from flipkart_api.query import _is_multi, single_valued
from flipkart_api.schemas import FieldError, StrictModel
from flipkart_api.validation import field_errors


@pytest.mark.parametrize(
    ("annotation", "multi"),
    [
        (int, False),
        (str | None, False),
        (dict[str, int], False),
        (Annotated[int, Field(ge=1)], False),
        (list, True),
        (list[int], True),
        (tuple[str, ...], True),
        (set[str], True),
        (frozenset[int], True),
        (list[str] | None, True),
        (Annotated[list[int], Field(max_length=3)], True),
        (Annotated[list[int], Field(max_length=3)] | None, True),
    ],
    ids=str,
)
def test_is_multi_sees_collections_also_inside_optional_and_annotated(
    annotation: Any, multi: bool
) -> None:
    assert _is_multi(annotation) is multi


class ProductQuery(BaseModel):
    q: str | None = None
    limit: int = 20
    in_stock: bool | None = Field(default=None, alias="inStock")
    ids: list[int] | None = None
    tags: Annotated[list[str], Field(max_length=5)] = []


def test_single_valued_names_fields_and_aliases_but_not_lists() -> None:
    assert single_valued(ProductQuery) == {"q", "limit", "in_stock", "inStock"}


# -- validation.py ------------------------------------------------------------------------


class Item(StrictModel):
    product_id: int
    quantity: int = Field(ge=1)


class Order(StrictModel):
    items: list[Item]
    note: str | None = None
    code: int | list[int] = 0


class PriceRule(StrictModel):
    price: int
    mrp: int

    @model_validator(mode="after")
    def _price_within_mrp(self) -> PriceRule:
        if self.price > self.mrp:
            raise FieldError("mrp", "must be at least the price")
        return self


class Headers(BaseModel):
    idempotency_key: str = Field(min_length=8)


@pytest.fixture(scope="module")
def flask_app() -> Flask:
    return Flask("unit")


def errors_of(
    flask_app: Flask, model: type[BaseModel], location: str, **request: Any
) -> list[dict[str, str]]:
    """field_errors for `model` validated against what this request carries there."""
    with flask_app.test_request_context("/", **request):
        sent: Any = {
            "json": lambda: flask.request.get_json(silent=True),
            "headers": lambda: {k.lower().replace("-", "_"): v for k, v in flask.request.headers},
        }[location]()
        try:
            model.model_validate(sent)
        except ValidationError as exc:
            return field_errors(exc, location)
    raise AssertionError("the input was valid")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"items": [{"product_id": 1, "quantity": 0}]},
            [
                {
                    "field": "items[0].quantity",
                    "message": "Input should be greater than or equal to 1",
                }
            ],
        ),
        (
            {"items": [{"product_id": 1}]},
            [{"field": "items[0].quantity", "message": "Field required"}],
        ),
        ({}, [{"field": "items", "message": "Field required"}]),
        ({"items": "x"}, [{"field": "items", "message": "Input should be a JSON array"}]),
        ({"items": ["x"]}, [{"field": "items[0]", "message": "Input should be a JSON object"}]),
        ({"items": [], "colour": "red"}, [{"field": "colour", "message": "Unknown field"}]),
        ([1, 2], [{"field": "body", "message": "Input should be a JSON object"}]),
        (
            {"items": [], "note": "a\x00b"},
            [{"field": "note", "message": "must not contain NUL characters"}],
        ),
    ],
    ids=repr,
)
def test_body_errors_name_the_field_as_the_client_wrote_it(
    flask_app: Flask, body: Any, expected: list[dict[str, str]]
) -> None:
    assert errors_of(flask_app, Order, "json", json=body) == expected


def test_a_union_reports_the_field_once_without_its_member_tag(flask_app: Flask) -> None:
    errors = errors_of(flask_app, Order, "json", json={"items": [], "code": "abc"})
    assert {e["field"] for e in errors} == {"code"}
    assert len(errors) == len({e["message"] for e in errors})  # each message once


def test_a_cross_field_rule_blames_the_field_it_names(flask_app: Flask) -> None:
    errors = errors_of(flask_app, PriceRule, "json", json={"price": 100, "mrp": 50})
    assert errors == [{"field": "mrp", "message": "must be at least the price"}]


def test_header_errors_are_named_as_the_header(flask_app: Flask) -> None:
    errors = errors_of(flask_app, Headers, "headers", headers={"Idempotency-Key": "short"})
    assert [e["field"] for e in errors] == ["Idempotency-Key"]
    missing = errors_of(flask_app, Headers, "headers")
    assert missing == [{"field": "Idempotency-Key", "message": "Field required"}]
