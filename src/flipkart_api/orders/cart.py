"""The server-side cart: one per user, shown at current prices."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .. import db
from ..catalog.models import Product
from ..errors import NotFound
from .models import CartItem
from .schemas import CartLineOut, CartOut


def cart_lines(sess: Session, user_id: int) -> list[tuple[int, int]]:
    """(product_id, quantity) of every line in the user's cart."""
    rows = sess.execute(
        select(CartItem.product_id, CartItem.quantity)
        .where(CartItem.user_id == user_id)
        .order_by(CartItem.product_id)
    )
    return [(pid, qty) for pid, qty in rows]


def get_cart(user_id: int) -> CartOut:
    """The cart with current prices and stock."""
    rows = db.session().execute(
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


def set_quantity(user_id: int, product_id: int, quantity: int) -> CartOut:
    """Put `quantity` units of a product in the cart (replacing what was there)."""
    sess = db.begin_write()
    if sess.get(Product, product_id) is None:
        raise NotFound(f"Product {product_id} does not exist.")
    line = sess.get(CartItem, (user_id, product_id))
    if line is None:
        sess.add(CartItem(user_id=user_id, product_id=product_id, quantity=quantity))
    else:
        line.quantity = quantity
    sess.commit()
    return get_cart(user_id)


def remove(user_id: int, product_id: int) -> CartOut:
    """Take a product out of the cart (no error if it was not there)."""
    sess = db.begin_write()
    sess.execute(
        delete(CartItem).where(CartItem.user_id == user_id, CartItem.product_id == product_id)
    )
    sess.commit()
    return get_cart(user_id)
