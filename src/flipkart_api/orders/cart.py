"""The server-side cart: one per user, shown at current prices."""

from __future__ import annotations

from typing import NamedTuple, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from .. import db
from ..catalog.models import Product
from ..errors import NotFound
from ..orm import utcnow
from ..uow import UnitOfWork
from .models import CartItem
from .schemas import CartLineOut, CartOut

CART = cast(Table, CartItem.__table__)


class Line(NamedTuple):
    """A product and how many of it: a cart line, or an order's line before it is priced."""

    product_id: int
    quantity: int


def cart_lines(sess: Session, user_id: int) -> list[Line]:
    """Every line in the user's cart, by product id."""
    rows = sess.execute(
        select(CartItem.product_id, CartItem.quantity)
        .where(CartItem.user_id == user_id)
        .order_by(CartItem.product_id)
    )
    return [Line(pid, qty) for pid, qty in rows]


def get_cart(sess: Session, user_id: int) -> CartOut:
    """The cart with current prices and stock."""
    rows = sess.execute(
        select(CartItem.quantity, Product)
        .join(Product, Product.id == CartItem.product_id)
        .where(CartItem.user_id == user_id)
        .order_by(CartItem.added_at, CartItem.product_id)
    )
    items = [
        CartLineOut(
            product_id=product.id,
            name=product.name,
            unit_price=product.price,
            quantity=quantity,
            line_total=product.price * quantity,
            in_stock=product.stock >= quantity,
        )
        for quantity, product in rows
    ]
    return CartOut(items=items, total=sum(item.line_total for item in items))


def set_quantity(sess: Session, user_id: int, product_id: int, quantity: int) -> CartOut:
    """Put `quantity` units of a product in the cart (replacing what was there).

    One upsert, not read-then-write: two concurrent PUTs of a new line both found none and
    both inserted (a unique violation, a 500). The product's existence is the foreign key's
    to check, so a product deleted at any moment before our commit is a 404, never a 500.
    """
    upsert = db.dialect_insert(sess, CART).values(
        user_id=user_id, product_id=product_id, quantity=quantity, added_at=utcnow()
    )
    upsert = upsert.on_conflict_do_update(
        index_elements=[CART.c.user_id, CART.c.product_id],
        set_={"quantity": upsert.excluded.quantity},
    )
    with UnitOfWork(sess) as uow:
        uow.explain(
            "fk_cart_items_product_id_products",
            lambda: NotFound(f"Product {product_id} does not exist."),
        )
        sess.execute(upsert)
    return get_cart(sess, user_id)


def remove(sess: Session, user_id: int, product_id: int) -> CartOut:
    """Take a product out of the cart (no error if it was not there)."""
    with UnitOfWork(sess):
        sess.execute(
            delete(CartItem).where(CartItem.user_id == user_id, CartItem.product_id == product_id)
        )
    return get_cart(sess, user_id)
