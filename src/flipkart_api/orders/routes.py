"""HTTP endpoints for the cart and orders; every route needs a bearer token."""

from __future__ import annotations

from typing import Annotated, Any

from apiflask import APIBlueprint
from flask import current_app, url_for
from pydantic import StringConstraints

from .. import db
from ..auth.routes import bearer, current_user
from ..limits import limit_from_settings, limiter
from ..responses import respond
from ..schemas import CleanText
from . import cart, service, transitions
from .caps import OpenOrderCaps
from .schemas import (
    CartOut,
    CartQuantityIn,
    OrderIn,
    OrderListQuery,
    OrderOut,
    OrderPage,
    StatusIn,
)

bp = APIBlueprint("orders", __name__, url_prefix="/api/v1", tag="Orders")


class IdempotencyHeaders(CleanText):
    """The optional Idempotency-Key header of POST /orders (other headers are ignored)."""

    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None


def _caller() -> tuple[int, bool]:
    """(user id, is admin) of the authenticated caller, read before any unit of work starts."""
    user = current_user()
    return user.id, user.role == "admin"


# -- cart ---------------------------------------------------------------------------
@bp.get("/cart")
@bp.auth_required(bearer)
@bp.output(CartOut)
def get_cart() -> Any:
    """The caller's cart at current prices."""
    return respond(cart.get_cart(db.session(), _caller()[0]))


@bp.put("/cart/items/<int:product_id>")
@bp.auth_required(bearer)
@bp.input(CartQuantityIn, arg_name="data")
@bp.output(CartOut)
@bp.doc(responses=[404, 422])
def put_cart_item(product_id: int, data: CartQuantityIn) -> Any:
    """Set how many units of a product the cart holds (1-10)."""
    return respond(cart.set_quantity(db.session(), _caller()[0], product_id, data.quantity))


@bp.delete("/cart/items/<int:product_id>")
@bp.auth_required(bearer)
@bp.output(CartOut)
def delete_cart_item(product_id: int) -> Any:
    """Take a product out of the cart."""
    return respond(cart.remove(db.session(), _caller()[0], product_id))


# -- orders -----------------------------------------------------------------------------
@bp.post("/orders")
@bp.auth_required(bearer)
@limiter.limit(limit_from_settings("ratelimit_orders"))
@bp.input(OrderIn, arg_name="data")
@bp.input(IdempotencyHeaders, location="headers", arg_name="headers")
@bp.output(OrderOut, status_code=201)
@bp.doc(responses=[409, 422, 429])
def place_order(data: OrderIn, headers: IdempotencyHeaders) -> Any:
    """Place an order from items or from the cart; retry safely with an Idempotency-Key.

    409 when stock is short, or when the caller's unconfirmed orders are at their cap.
    """
    user_id, _ = _caller()
    settings = current_app.config["SETTINGS"]
    limits = OpenOrderCaps(settings.orders_max_open, settings.orders_max_open_units)
    placed = service.place_order(
        db.session(),
        user_id,
        data,
        headers.idempotency_key,
        settings.idempotency_ttl_hours,
        limits,
        settings.stock_low_threshold,
    )
    extra = {"Location": url_for("orders.get_order", order_id=placed.order.id)}
    if placed.replayed:
        extra["Idempotent-Replayed"] = "true"
    return respond(placed.order, status=201, headers=extra)


@bp.get("/orders")
@bp.auth_required(bearer)
@bp.input(OrderListQuery, location="query", arg_name="query")
@bp.output(OrderPage)
@bp.doc(responses=[422])
def list_orders(query: OrderListQuery) -> Any:
    """The caller's orders, newest first (admins see every order)."""
    return respond(service.list_orders(db.session(), *_caller(), query))


@bp.get("/orders/<int:order_id>")
@bp.auth_required(bearer)
@bp.output(OrderOut)
@bp.doc(responses=[404])
def get_order(order_id: int) -> Any:
    """One of the caller's orders (any order for admins)."""
    return respond(service.get_order(db.session(), *_caller(), order_id))


@bp.post("/orders/<int:order_id>/cancel")
@bp.auth_required(bearer)
@bp.output(OrderOut)
@bp.doc(responses=[404, 409])
def cancel_order(order_id: int) -> Any:
    """Cancel an order that is placed or confirmed; its stock is restored."""
    return respond(transitions.cancel_order(db.session(), _caller()[0], order_id))


@bp.post("/orders/<int:order_id>/status")
@bp.auth_required(bearer, roles=["admin"])
@bp.input(StatusIn, arg_name="data")
@bp.output(OrderOut)
@bp.doc(responses=[403, 404, 409, 422])
def set_status(order_id: int, data: StatusIn) -> Any:
    """Move an order along placed -> confirmed -> shipped -> delivered, or cancel it (admin)."""
    return respond(transitions.set_status(db.session(), order_id, data.status))
