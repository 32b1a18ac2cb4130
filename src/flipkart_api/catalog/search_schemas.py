"""Search's own request and response models: facet counts and suggestions."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from ..schemas import StrictModel

FACETS = ("brand", "category", "price", "rating", "in_stock")
FacetList = Annotated[
    str,
    StringConstraints(pattern=rf"^({'|'.join(FACETS)})(,({'|'.join(FACETS)}))*$"),
    Field(description="Counts to return beside the page: any of " + ", ".join(FACETS)),
]


class BrandCount(BaseModel):
    """Products of one brand."""

    brand: str
    count: int


class CategoryCount(BaseModel):
    """Products in a category or below it."""

    id: int
    slug: str
    name: str
    parent_id: int | None
    count: int


class PriceBucket(BaseModel):
    """Products priced from `min` (inclusive) to `max` (exclusive; null: no upper bound)."""

    min: int
    max: int | None
    count: int


class RatingCount(BaseModel):
    """Products rated `at_least` or more."""

    at_least: int
    count: int


class StockCount(BaseModel):
    """Products that can be sold now, and those that cannot."""

    in_stock: int
    out_of_stock: int


class Facets(BaseModel):
    """Counts of what the query finds, each under every filter but its own (null: not asked)."""

    brand: list[BrandCount] | None = None
    category: list[CategoryCount] | None = None
    price: list[PriceBucket] | None = None
    rating: list[RatingCount] | None = None
    in_stock: StockCount | None = None


class SuggestQuery(StrictModel):
    """What GET /api/v1/search/suggest takes: the query as typed so far."""

    q: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    limit: Annotated[int, Field(ge=1, le=10)] = 5


class SuggestedProduct(BaseModel):
    """A product a suggestion leads to."""

    id: int
    slug: str
    name: str
    brand: str
    price: int = Field(description="Selling price in paise")


class SuggestedCategory(BaseModel):
    """A category a suggestion leads to (list it with ?category=<slug>)."""

    id: int
    slug: str
    name: str


class Suggestions(BaseModel):
    """Where what was typed may lead: whole queries, products, brands and categories."""

    q: str
    completions: list[str] = Field(description="q with its last word completed")
    products: list[SuggestedProduct]
    brands: list[str]
    categories: list[SuggestedCategory]
