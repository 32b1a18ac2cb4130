"""Request and response models for the cart and orders."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, model_validator

from ..schemas import FieldError, RowId, StrictModel
from .lifecycle import Status

Quantity = Annotated[StrictInt, Field(ge=1, le=10)]
ProductId = RowId
Text100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CartQuantityIn(StrictModel):
    """How many units of a product the cart should hold."""

    quantity: Quantity


class CartLineOut(BaseModel):
    """A cart line at the product's current price."""

    product_id: int
    name: str
    unit_price: int
    quantity: int
    line_total: int
    in_stock: bool


class CartOut(BaseModel):
    """The user's cart."""

    items: list[CartLineOut]
    total: int
    currency: Literal["INR"] = "INR"


class ShippingAddress(StrictModel):
    """An Indian postal address."""

    name: Text100
    line1: Text200
    line2: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    city: Text100
    state: Text100
    pincode: Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{5}$")]
    phone: Annotated[str, StringConstraints(pattern=r"^[0-9]{10}$")]


class OrderLineIn(StrictModel):
    """A product and how many of it."""

    product_id: ProductId
    quantity: Quantity


class OrderIn(StrictModel):
    """Either explicit items or `from_cart: true`, plus where to ship."""

    items: Annotated[list[OrderLineIn], Field(max_length=50)] | None = None
    from_cart: bool = False
    shipping_address: ShippingAddress

    @model_validator(mode="after")
    def _one_source(self) -> OrderIn:
        if self.from_cart and self.items is not None:
            raise FieldError("from_cart", "send either items or from_cart, not both")
        if not self.from_cart:
            if not self.items:
                raise FieldError("items", "must not be empty")
            ids = [line.product_id for line in self.items]
            if len(ids) != len(set(ids)):
                raise FieldError("items", "duplicate product_id")
        return self


class OrderItemOut(BaseModel):
    """An order line as captured at order time."""

    model_config = ConfigDict(from_attributes=True)

    product_id: int | None
    sku: str
    name: str
    unit_price: int
    quantity: int
    line_total: int


class OrderOut(BaseModel):
    """An order."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    status: Status
    items: list[OrderItemOut]
    total: int
    currency: Literal["INR"]
    shipping_address: ShippingAddress
    created_at: dt.datetime
    updated_at: dt.datetime


class OrderPage(BaseModel):
    """One page of orders, newest first."""

    items: list[OrderOut]
    next_cursor: str | None


class OrderListQuery(StrictModel):
    """Paging of GET /api/v1/orders."""

    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None


class StatusIn(StrictModel):
    """The status an admin moves an order to."""

    status: Status
