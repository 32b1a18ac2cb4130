"""The unit of work: one commit, rollback on error, after-commit callbacks, constraint names.

Every test runs on SQLite and on PostgreSQL (the `app` fixture).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, event, func, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flipkart_api import orm
from flipkart_api.auth.models import User
from flipkart_api.catalog.models import Category, Product
from flipkart_api.db import session
from flipkart_api.errors import Conflict, NotFound
from flipkart_api.integrity import UNNAMED_FOREIGN_KEY, constraint_name
from flipkart_api.orders.models import CartItem, IdempotencyKey
from flipkart_api.uow import OutsideUnitOfWork, UnitOfWork

SRC = Path(__file__).resolve().parent.parent / "src" / "flipkart_api"


@pytest.fixture
def sess(app: Flask) -> Iterator[Session]:
    """The app's session inside an app context (what a request's service gets)."""
    with app.app_context():
        yield session()


@pytest.fixture
def transactions(app: Flask) -> dict[str, int]:
    """How many COMMITs and ROLLBACKs the app's engine has sent (and SQL it ran) from now."""
    engine: Engine = app.extensions["db_engine"]
    counts = {"commit": 0, "rollback": 0, "begin_immediate": 0}

    def on_commit(_conn: Any) -> None:
        counts["commit"] += 1

    def on_rollback(_conn: Any) -> None:
        counts["rollback"] += 1

    def on_sql(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counts["begin_immediate"] += statement == "BEGIN IMMEDIATE"

    event.listen(engine, "commit", on_commit)
    event.listen(engine, "rollback", on_rollback)
    event.listen(engine, "before_cursor_execute", on_sql)
    return counts


def category(slug: str) -> Category:
    return Category(name=slug.title(), slug=slug)


def committed_slugs(app: Flask) -> list[str]:
    """What another connection sees: only committed rows."""
    engine: Engine = app.extensions["db_engine"]
    with engine.connect() as conn:
        return list(conn.scalars(select(Category.slug).order_by(Category.slug)))


def test_a_clean_exit_commits_once(app: Flask, sess: Session, transactions: dict[str, int]) -> None:
    with UnitOfWork(sess):
        sess.add(category("shoes"))
        sess.add(category("socks"))
    assert transactions["commit"] == 1
    assert committed_slugs(app) == ["shoes", "socks"]


def test_an_api_write_commits_once(
    app: Flask, client: FlaskClient, admin_headers: dict[str, str], transactions: dict[str, int]
) -> None:
    before = transactions["commit"]
    body = {"name": "Shoes"}
    response = client.post("/api/v1/categories", json=body, headers=admin_headers)
    assert response.status_code == 201, response.get_json()
    assert transactions["commit"] - before == 1


def test_the_write_begins_the_backend_s_way(
    app: Flask, sess: Session, transactions: dict[str, int]
) -> None:
    """SQLite takes the write lock first; PostgreSQL continues the read (no ROLLBACK trip)."""
    sess.scalar(select(func.count()).select_from(User))  # what authenticating does
    with UnitOfWork(sess):
        sess.add(category("shoes"))
    if sess.get_bind().dialect.name == "sqlite":
        assert transactions["begin_immediate"] == 1
    else:
        assert transactions["rollback"] == 0
        assert transactions["commit"] == 1


def test_an_error_rolls_back_and_runs_no_callback(app: Flask, sess: Session) -> None:
    ran: list[str] = []

    def write_then_fail() -> None:
        with UnitOfWork(sess) as uow:
            sess.add(category("shoes"))
            sess.flush()  # the row reached the database inside the transaction
            uow.after_commit(lambda: ran.append("callback"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert ran == []
    assert committed_slugs(app) == []
    with UnitOfWork(sess):  # the session is usable again
        sess.add(category("socks"))
    assert committed_slugs(app) == ["socks"]


def test_an_explicit_rollback_commits_nothing_and_runs_no_callback(
    app: Flask, sess: Session
) -> None:
    ran: list[str] = []
    with UnitOfWork(sess) as uow:
        sess.add(category("shoes"))
        uow.after_commit(lambda: ran.append("callback"))
        uow.rollback()
    assert ran == []
    assert committed_slugs(app) == []


def test_callbacks_run_in_order_after_the_commit(app: Flask, sess: Session) -> None:
    seen: list[tuple[int, list[str]]] = []
    with UnitOfWork(sess) as uow:
        sess.add(category("shoes"))
        for n in (1, 2, 3):
            uow.after_commit(lambda n=n: seen.append((n, committed_slugs(app))))  # type: ignore[misc]
        assert seen == []
    assert seen == [(1, ["shoes"]), (2, ["shoes"]), (3, ["shoes"])]


def test_a_failing_callback_keeps_the_commit_and_is_logged(
    app: Flask, sess: Session, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[int] = []

    def broken() -> None:
        raise ValueError("cache unreachable")

    with caplog.at_level(logging.ERROR, logger="flipkart_api.uow"), UnitOfWork(sess) as uow:
        sess.add(category("shoes"))
        uow.after_commit(broken)
        uow.after_commit(lambda: ran.append(2))
    assert committed_slugs(app) == ["shoes"]
    assert ran == [2]  # the next callback still ran
    [record] = [r for r in caplog.records if r.name == "flipkart_api.uow"]
    assert "after-commit callback" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)


def test_units_do_not_nest(sess: Session) -> None:
    with UnitOfWork(sess), pytest.raises(RuntimeError, match="already open"), UnitOfWork(sess):
        pass


# -- integrity errors by constraint name ---------------------------------------------
@pytest.fixture
def shoe(sess: Session) -> Product:
    """One product in one category."""
    with UnitOfWork(sess):
        product = Product(
            sku="SHOE-1", slug="runner-shoe-1", name="Runner", category=category("shoes")
        )
        product.price, product.mrp, product.stock = 100, 100, 5
        sess.add(product)
    return product


@pytest.fixture
def user_id(sess: Session) -> int:
    """A customer's id (for the cart's foreign keys)."""
    user = User(email="asha@example.in", name="Asha", password_hash="-", role="customer")
    with UnitOfWork(sess):
        sess.add(user)
    return user.id


def _product(sku: str, slug: str, category_id: int) -> Product:
    product = Product(sku=sku, slug=slug, name="Runner", category_id=category_id)
    product.price = product.mrp = 100
    return product


def test_a_duplicate_sku_is_a_sku_conflict(sess: Session, shoe: Product) -> None:
    with pytest.raises(Conflict, match="sku"), UnitOfWork(sess):
        sess.add(_product("SHOE-1", "another-slug", shoe.category_id))


def test_a_duplicate_slug_is_a_slug_conflict_not_a_sku_one(sess: Session, shoe: Product) -> None:
    """The old code answered every product IntegrityError with 'duplicate sku'."""
    with pytest.raises(Conflict) as raised, UnitOfWork(sess):
        sess.add(_product("SHOE-2", "runner-shoe-1", shoe.category_id))
    assert "slug" in raised.value.detail
    assert "sku" not in raised.value.detail


def test_a_unit_s_explanation_names_the_value(sess: Session, shoe: Product) -> None:
    def add_twice() -> None:
        with UnitOfWork(sess) as uow:
            uow.explain("uq_products_sku", lambda: Conflict("A product with sku 'SHOE-1' exists."))
            sess.add(_product("SHOE-1", "another-slug", shoe.category_id))

    with pytest.raises(Conflict, match="'SHOE-1'"):
        add_twice()


def test_a_duplicate_category_slug_is_a_409(
    client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    body = {"name": "Shoes", "slug": "shoes"}
    assert client.post("/api/v1/categories", json=body, headers=admin_headers).status_code == 201
    again = client.post("/api/v1/categories", json=body, headers=admin_headers)
    assert again.status_code == 409
    assert "slug 'shoes'" in again.get_json()["detail"]


def test_a_missing_referenced_row_is_a_404(sess: Session, shoe: Product, user_id: int) -> None:
    def add_to_cart() -> None:
        with UnitOfWork(sess) as uow:
            uow.explain("fk_cart_items_product_id_products", lambda: NotFound("Product 999 ..."))
            sess.execute(insert(CartItem).values(user_id=user_id, product_id=999, quantity=1))

    with pytest.raises(NotFound, match="Product 999"):
        add_to_cart()


def test_a_cart_line_for_a_missing_product_is_a_404_naming_it(
    client: FlaskClient, customer_headers: dict[str, str]
) -> None:
    """Through the API: the foreign key the cart's unit explains (SQLite names none)."""
    put = client.put("/api/v1/cart/items/999999", json={"quantity": 1}, headers=customer_headers)
    assert put.status_code == 404
    assert put.get_json()["detail"] == "Product 999999 does not exist."


def test_an_unknown_constraint_is_re_raised(sess: Session, shoe: Product) -> None:
    """A CHECK no rule explains is a bug: it propagates and the unit rolls back."""
    with pytest.raises(IntegrityError), UnitOfWork(sess):
        sess.execute(update(Product).values(stock=-1))
    assert sess.scalar(select(Product.stock)) == 5


def test_an_unexplained_foreign_key_on_sqlite_is_re_raised(
    sess: Session, shoe: Product, user_id: int
) -> None:
    """SQLite names no foreign key, so only the unit's own explanation can claim it."""
    row = {"user_id": user_id, "product_id": 999, "quantity": 1}
    if sess.get_bind().dialect.name == "sqlite":
        with pytest.raises(IntegrityError), UnitOfWork(sess):
            sess.execute(insert(CartItem).values(**row))
    else:  # PostgreSQL names it: the general table answers
        with pytest.raises(NotFound, match="No such product"), UnitOfWork(sess):
            sess.execute(insert(CartItem).values(**row))


def _violation(sess: Session, statement: Any) -> IntegrityError:
    """The raw error (a unit of work would map it); nothing is committed.

    Run on the session's connection, under the guard's statement check (see below).
    """
    try:
        with pytest.raises(IntegrityError) as raised:
            sess.connection().execute(statement)
        return raised.value
    finally:
        sess.rollback()


def test_both_backends_name_the_same_constraint(sess: Session, shoe: Product, user_id: int) -> None:
    """SQLite reports columns; they resolve to the names PostgreSQL reports."""
    key = {"user_id": user_id, "key": "k", "request_hash": "h", "created_at": orm.utcnow()}
    with UnitOfWork(sess):
        sess.execute(insert(IdempotencyKey).values(**key))
    cases = {
        "uq_idempotency_keys_user_id": insert(IdempotencyKey).values(**key),
        "uq_products_sku": insert(Product).values(
            sku="SHOE-1", slug="x", name="x", category_id=shoe.category_id, price=1, mrp=1
        ),
        "uq_categories_slug": insert(Category).values(slug="shoes", name="Shoes"),
        "ck_products_mrp_at_least_price": update(Product).values(mrp=1),
    }
    for name, statement in cases.items():
        assert constraint_name(_violation(sess, statement)) == name
    fk = insert(CartItem).values(user_id=user_id, product_id=999, quantity=1)
    pg = sess.get_bind().dialect.name == "postgresql"
    expected = "fk_cart_items_product_id_products" if pg else UNNAMED_FOREIGN_KEY
    assert constraint_name(_violation(sess, fk)) == expected


# -- the guard: no write outside a unit of work ----------------------------------------
def test_a_commit_outside_a_unit_fails(app: Flask, sess: Session) -> None:
    """A deliberate violation: a write in raw SQL (which no statement check sees), committed."""
    raw = "INSERT INTO categories (slug, name, created_at) VALUES ('shoes', 'Shoes', '2026-12-01')"
    sess.execute(text(raw))
    with pytest.raises(OutsideUnitOfWork):
        sess.commit()
    sess.rollback()
    assert committed_slugs(app) == []


@pytest.mark.parametrize("kind", ["insert", "update", "delete"])
def test_core_dml_outside_a_unit_fails_when_it_runs(app: Flask, sess: Session, kind: str) -> None:
    """A deliberate violation: Core DML through the session, never committed by hand.

    On PostgreSQL it would ride along with the request's next unit of work (which continues
    the read transaction); at teardown it would be rolled back silently.
    """
    statement = {
        "insert": insert(Category).values(slug="shoes", name="Shoes"),
        "update": update(Category).values(name="Shoes"),
        "delete": delete(Category),
    }[kind]
    with pytest.raises(OutsideUnitOfWork):
        sess.execute(statement)
    sess.rollback()
    with UnitOfWork(sess):
        sess.execute(statement)  # the same statement inside a unit is fine


def test_an_orm_change_outside_a_unit_fails_at_flush(app: Flask, sess: Session) -> None:
    """A deliberate violation: an ORM change flushed (here by a query's autoflush)."""
    sess.add(category("shoes"))
    with pytest.raises(OutsideUnitOfWork):
        sess.scalar(select(Category.id))
    sess.rollback()
    assert committed_slugs(app) == []


def test_no_source_file_commits_or_begins_a_write_by_hand() -> None:
    """Static half of the guard: the runtime one sees only the paths the tests exercise."""
    allowed = {SRC / "uow.py", SRC / "migrations" / "env.py"}  # env.py: Alembic's connection
    pattern = re.compile(r"\.commit\(|begin_write\(|\.begin\(\)")
    offenders = [
        f"{path.relative_to(SRC)}:{n}"
        for path in sorted(SRC.rglob("*.py"))
        if path not in allowed
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_the_guard_is_on_the_app_s_sessions(app: Flask) -> None:
    with app.app_context():
        factory = app.extensions["db_sessionmaker"]
        sess = factory()
        try:
            sess.execute(text("SELECT 1"))
            with pytest.raises(OutsideUnitOfWork):
                sess.commit()
        finally:
            sess.close()
