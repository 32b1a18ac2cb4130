"""Request and response models for categories and products."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StrictInt,
    StringConstraints,
    model_validator,
)

from ..schemas import FieldError, PatchModel, QueryBool, RowId, StrictModel
from .search_schemas import FACETS, FacetList, Facets

MAX_PAISE = 10**12  # ₹1,000 crore: far above any product, far below integer overflow
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=100)]
Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Paise = Annotated[StrictInt, Field(ge=0, le=MAX_PAISE)]
Stock = Annotated[StrictInt, Field(ge=0, le=1_000_000_000)]
Description = Annotated[str, Field(max_length=5000)]
Brand = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]
Images = Annotated[list[HttpUrl], Field(max_length=10)]
SortKey = Literal["relevance", "newest", "price", "-price", "rating", "-rating"]
PRICE_OVER_MRP = "must not exceed mrp"  # POST (here) and PATCH (the service) blame `price`
MRP_UNDER_PRICE = "must not be below price"  # a PATCH that sent mrp alone blames `mrp`


class CategoryIn(StrictModel):
    """A new category; the slug is derived from the name when left out."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    slug: Slug | None = None
    parent_id: RowId | None = None


class CategoryOut(BaseModel):
    """One category of the flat tree."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str
    parent_id: int | None


class CategoryList(BaseModel):
    """The whole category tree, flat, parents before children."""

    items: list[CategoryOut]


class ProductIn(StrictModel):
    """A new product. Money is integer paise."""

    sku: Sku
    name: Name
    description: Description = ""
    brand: Brand = ""
    category: Slug
    price: Paise
    mrp: Paise
    stock: Stock
    images: Images = Field(default_factory=list)

    @model_validator(mode="after")
    def _price_within_mrp(self) -> ProductIn:
        if self.price > self.mrp:
            raise FieldError("price", PRICE_OVER_MRP)
        return self


class ProductPatch(PatchModel):
    """A partial update; price <= mrp is checked against the stored values too."""

    sku: Sku | None = None
    name: Name | None = None
    description: Description | None = None
    brand: Brand | None = None
    category: Slug | None = None
    price: Paise | None = None
    mrp: Paise | None = None
    stock: Stock | None = None
    images: Images | None = None


class ProductCategory(BaseModel):
    """The category as embedded in a product."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str


class ProductOut(BaseModel):
    """A product as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    sku: str
    slug: str
    name: str
    description: str
    brand: str
    category: ProductCategory
    price: int = Field(description="Selling price in paise")
    mrp: int = Field(description="Maximum retail price in paise")
    discount_percent: int
    currency: Literal["INR"]
    stock: int
    in_stock: bool
    rating: float
    images: list[str]
    created_at: dt.datetime
    updated_at: dt.datetime


class ProductPage(BaseModel):
    """One page of products; pass next_cursor back as `cursor` for the next one."""

    items: list[ProductOut]
    next_cursor: str | None
    facets: Facets | None = Field(default=None, description="When `facets` asked for counts")
    showing_results_for: str | None = Field(
        default=None,
        description="When `q` as written finds nothing: the respelt query these results are for",
    )


class ProductQuery(StrictModel):
    """Filters, sort and page of GET /api/v1/products."""

    q: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
        | None
    ) = None
    # A slug or an id: digits are an id (slugs of new categories always hold a letter).
    category: (
        Annotated[Slug, Field(description="A category id or slug; includes sub-categories")] | None
    ) = None
    brand: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    min_price: Annotated[int, Field(ge=0, le=MAX_PAISE)] | None = None
    max_price: Annotated[int, Field(ge=0, le=MAX_PAISE)] | None = None
    in_stock: QueryBool | None = None
    min_rating: Annotated[float, Field(ge=0, le=5)] | None = None
    sort: SortKey | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    facets: FacetList | None = None

    @model_validator(mode="after")
    def _coherent(self) -> ProductQuery:
        low, high = self.min_price, self.max_price
        if low is not None and high is not None and low > high:
            raise FieldError("min_price", "must not exceed max_price")
        if self.sort == "relevance" and self.q is None:
            raise FieldError("sort", "relevance needs q")
        return self

    @property
    def facet_names(self) -> tuple[str, ...]:
        """The facets asked for, each once, in FACETS order."""
        asked = set((self.facets or "").split(","))
        return tuple(name for name in FACETS if name in asked)

    @property
    def effective_sort(self) -> SortKey:
        """relevance when searching, newest otherwise, unless asked."""
        return self.sort or ("relevance" if self.q else "newest")
