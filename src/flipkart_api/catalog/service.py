"""Catalog use cases: reads as cached JSON bytes (Cached), writes that return output models."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..cache import Cached, cache
from ..errors import Conflict, InvalidInput, NotFound
from ..uow import UnitOfWork
from . import lexicon_events  # noqa: F401  (its mapper events keep the lexicon in step)
from .cache_keys import (
    BY_TEXT,
    CATEGORIES,
    LISTS,
    invalidate_products,
    list_key,
    list_keys_for_fields,
    list_surrogate_keys,
    product_key,
    product_surrogate_key,
)
from .models import Category, Product
from .pages import load_page
from .product_slugs import free_product_slug
from .schemas import (
    MRP_UNDER_PRICE,
    PRICE_OVER_MRP,
    CategoryIn,
    CategoryList,
    CategoryOut,
    ProductIn,
    ProductOut,
    ProductPatch,
    ProductQuery,
)
from .search_schemas import SuggestQuery
from .slugs import slugify
from .suggest import suggestions


# -- categories ----------------------------------------------------------------
def list_categories(sess: Session) -> Cached:
    """The flat category tree as JSON bytes."""

    def load() -> bytes:
        categories = sess.scalars(select(Category).order_by(Category.id))
        items = [CategoryOut.model_validate(c) for c in categories]
        return CategoryList(items=items).model_dump_json().encode()

    return replace(cache().read_through(list_key("categories"), load), keys=(CATEGORIES,))


def create_category(sess: Session, data: CategoryIn) -> CategoryOut:
    """Add a category under an existing parent; the slug must be unique."""
    slug = data.slug or slugify(data.name, max_length=100)
    if not slug:
        raise InvalidInput("slug", "cannot derive a slug from this name; send one")
    if slug.isdigit():  # ?category=2024 means the category with id 2024
        raise InvalidInput("slug", "must contain a letter (a number is read as a category id)")
    with UnitOfWork(sess) as uow:
        uow.explain(
            "uq_categories_slug", lambda: Conflict(f"A category with slug '{slug}' already exists.")
        )
        if data.parent_id is not None and sess.get(Category, data.parent_id) is None:
            raise InvalidInput("parent_id", "no such category")
        category = Category(name=data.name, slug=slug, parent_id=data.parent_id)
        sess.add(category)
        uow.after_commit(lambda: invalidate_products([], categories=True))
    return CategoryOut.model_validate(category)


# -- product reads ---------------------------------------------------------------
def get_product(sess: Session, product_id: int) -> Cached:
    """One product as JSON bytes; 404 when absent."""

    def load() -> bytes:
        product = sess.get(Product, product_id)
        if product is None:
            raise NotFound(f"Product {product_id} does not exist.")
        return ProductOut.model_validate(product).model_dump_json().encode()

    cached = cache().read_through(product_key(product_id), load)
    return replace(cached, keys=(product_surrogate_key(product_id),))


def list_products(sess: Session, query: ProductQuery) -> Cached:
    """One page of products matching the query, as JSON bytes."""
    canonical = query.model_dump_json(exclude_none=True).encode()
    digest = hashlib.blake2b(canonical, digest_size=16).hexdigest()

    def load() -> bytes:
        return load_page(sess, query).model_dump_json().encode()

    cached = cache().read_through(list_key("products", digest), load)
    return replace(cached, keys=list_surrogate_keys(query, cached.body))


def suggest(sess: Session, query: SuggestQuery) -> Cached:
    """Suggestions for what is being typed, as JSON bytes, cached and tagged like lists."""
    canonical = query.model_dump_json().encode()
    digest = hashlib.blake2b(canonical, digest_size=16).hexdigest()

    def load() -> bytes:
        return suggestions(sess, query).model_dump_json().encode()

    cached = cache().read_through(list_key("suggest", digest), load)
    return replace(cached, keys=(LISTS, BY_TEXT))


# -- product writes --------------------------------------------------------------
def _category_by_slug(sess: Session, slug: str) -> Category:
    category = sess.scalar(select(Category).where(Category.slug == slug))
    if category is None:
        raise InvalidInput("category", "no such category")
    return category


def _explain_product_conflicts(uow: UnitOfWork, product: Product) -> None:
    """Name the value that collided: the sku, or the slug derived from name and sku."""
    sku, slug = product.sku, product.slug
    uow.explain("uq_products_sku", lambda: Conflict(f"A product with sku '{sku}' already exists."))
    uow.explain(
        "uq_products_slug", lambda: Conflict(f"A product with slug '{slug}' already exists.")
    )


def create_product(sess: Session, data: ProductIn) -> ProductOut:
    """Add a product; 409 for a duplicate sku (or slug)."""
    fields: dict[str, Any] = data.model_dump(exclude={"category", "images"})
    with UnitOfWork(sess) as uow:
        product = Product(
            **fields,
            slug=free_product_slug(sess, data.name, data.sku),
            category=_category_by_slug(sess, data.category),
            images=[str(url) for url in data.images],
            currency="INR",
        )
        sess.add(product)
        _explain_product_conflicts(uow, product)
        uow.after_commit(lambda: invalidate_products([product.id]))
    return ProductOut.model_validate(product)


def update_product(sess: Session, product_id: int, data: ProductPatch) -> ProductOut:
    """Change the fields sent; keep price <= mrp against stored values."""
    with UnitOfWork(sess) as uow:
        product = sess.get(Product, product_id)
        if product is None:
            raise NotFound(f"Product {product_id} does not exist.")
        changes = data.model_dump(exclude_unset=True)
        lists = list_keys_for_fields(changes)
        if "category" in changes:
            product.category = _category_by_slug(sess, changes.pop("category"))
        if "images" in changes:
            product.images = [str(url) for url in changes.pop("images")]
        for name, value in changes.items():
            setattr(product, name, value)
        if product.price > product.mrp:
            if "mrp" in changes and "price" not in changes:  # blame the field the client sent
                raise InvalidInput("mrp", MRP_UNDER_PRICE)
            raise InvalidInput("price", PRICE_OVER_MRP)  # the field and words POST uses
        if "name" in changes or "sku" in changes:
            product.slug = free_product_slug(sess, product.name, product.sku, product.id)
        _explain_product_conflicts(uow, product)
        uow.after_commit(lambda: invalidate_products([product_id], lists=lists))
    return ProductOut.model_validate(product)


def delete_product(sess: Session, product_id: int) -> None:
    """Remove a product; later reads give 404."""
    with UnitOfWork(sess) as uow:
        product = sess.get(Product, product_id)
        if product is None:
            raise NotFound(f"Product {product_id} does not exist.")
        sess.delete(product)
        uow.after_commit(lambda: invalidate_products([product_id]))
