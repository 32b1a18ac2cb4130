"""HTTP endpoints for categories and products (thin: validate, call the service, respond)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apiflask import APIBlueprint
from flask import url_for

from .. import db
from ..auth.routes import bearer
from ..cache_front import FastPath
from ..responses import respond
from . import cache_keys, service
from .schemas import (
    CategoryIn,
    CategoryList,
    CategoryOut,
    ProductIn,
    ProductOut,
    ProductPage,
    ProductPatch,
    ProductQuery,
)
from .search_schemas import Suggestions, SuggestQuery

bp = APIBlueprint("catalog", __name__, url_prefix="/api/v1", tag="Catalog")


def _product_detail_key(path: Mapping[str, str]) -> str:
    return cache_keys.product_key(int(path["product_id"]))


def _product_detail_surrogate_keys(path: Mapping[str, str]) -> tuple[str, ...]:
    return (cache_keys.product_surrogate_key(int(path["product_id"])),)


# Cached product details are answered before Flask (cache_front.py), on this route's path,
# with the keys get_product gives them.
FAST_PATHS = (FastPath("catalog.get_product", _product_detail_key, _product_detail_surrogate_keys),)


@bp.get("/categories")
@bp.output(CategoryList)
def list_categories() -> Any:
    """The whole category tree, flat."""
    return respond(service.list_categories(db.session()))


@bp.post("/categories")
@bp.auth_required(bearer, roles=["admin"])
@bp.input(CategoryIn, arg_name="data")
@bp.output(CategoryOut, status_code=201)
@bp.doc(responses=[403, 409, 422])
def create_category(data: CategoryIn) -> Any:
    """Create a category (admin)."""
    return respond(service.create_category(db.session(), data), status=201)


@bp.get("/products")
@bp.input(ProductQuery, location="query", arg_name="query")
@bp.output(ProductPage)
@bp.doc(responses=[422])
def list_products(query: ProductQuery) -> Any:
    """Search, filter, sort and page through products (keyset pagination)."""
    return respond(service.list_products(db.session(), query))


@bp.get("/search/suggest")
@bp.input(SuggestQuery, location="query", arg_name="query")
@bp.output(Suggestions)
@bp.doc(responses=[422])
def suggest(query: SuggestQuery) -> Any:
    """Suggestions as the shopper types: completed queries, products, brands, categories."""
    return respond(service.suggest(db.session(), query))


@bp.get("/products/<int:product_id>")
@bp.output(ProductOut)
@bp.doc(responses=[404])
def get_product(product_id: int) -> Any:
    """One product."""
    return respond(service.get_product(db.session(), product_id))


@bp.post("/products")
@bp.auth_required(bearer, roles=["admin"])
@bp.input(ProductIn, arg_name="data")
@bp.output(ProductOut, status_code=201)
@bp.doc(responses=[403, 409, 422])
def create_product(data: ProductIn) -> Any:
    """Create a product (admin)."""
    product = service.create_product(db.session(), data)
    location = url_for("catalog.get_product", product_id=product.id)
    return respond(product, status=201, headers={"Location": location})


@bp.patch("/products/<int:product_id>")
@bp.auth_required(bearer, roles=["admin"])
@bp.input(ProductPatch, arg_name="data")
@bp.output(ProductOut)
@bp.doc(responses=[403, 404, 409, 422])
def update_product(product_id: int, data: ProductPatch) -> Any:
    """Change some fields of a product (admin)."""
    return respond(service.update_product(db.session(), product_id, data))


@bp.delete("/products/<int:product_id>")
@bp.auth_required(bearer, roles=["admin"])
@bp.output({}, status_code=204)
@bp.doc(responses=[403, 404])
def delete_product(product_id: int) -> Any:
    """Delete a product (admin)."""
    service.delete_product(db.session(), product_id)
    return respond(None)
