"""Integrity errors -> domain errors, by the name of the constraint that failed.

Every constraint is named by the convention in orm.py (uq_*, fk_*, ck_*, pk_*), so the name
says exactly which rule a write broke: a product whose slug collides is not reported as a
duplicate sku. PostgreSQL reports the name; SQLite reports the columns of a unique
constraint (resolved to its name through the models' metadata), the name of a CHECK, and
nothing at all for a foreign key (see UNNAMED_FOREIGN_KEY).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import PrimaryKeyConstraint, UniqueConstraint
from sqlalchemy.exc import IntegrityError

from .errors import Conflict, DomainError, InvalidInput, NotFound
from .orm import Base

ErrorFactory = Callable[[], DomainError]

# SQLite's "FOREIGN KEY constraint failed" names no constraint.
UNNAMED_FOREIGN_KEY = "fk"

# The answer for each constraint a client's request can break. A unit of work may give a
# more precise one (naming the value) with UnitOfWork.explain; a constraint in neither is a
# bug, and its IntegrityError propagates (a 500 with a log line, never a hidden conflict).
KNOWN: Mapping[str, ErrorFactory] = {
    "uq_users_email": lambda: Conflict("An account with this email already exists."),
    "uq_categories_slug": lambda: Conflict("A category with this slug already exists."),
    "uq_products_sku": lambda: Conflict("A product with this sku already exists."),
    "uq_products_slug": lambda: Conflict("A product with this slug already exists."),
    "fk_categories_parent_id_categories": lambda: InvalidInput("parent_id", "no such category"),
    "fk_products_category_id_categories": lambda: InvalidInput("category", "no such category"),
    "fk_cart_items_product_id_products": lambda: NotFound("No such product."),
    "fk_cart_items_user_id_users": lambda: NotFound("No such user."),
}


def constraint_name(error: IntegrityError) -> str | None:
    """The name of the constraint that failed, UNNAMED_FOREIGN_KEY, or None if unknown."""
    diag = getattr(error.orig, "diag", None)
    if diag is not None:  # psycopg
        name: str | None = diag.constraint_name
        return name
    kind, found, detail = str(error.orig).partition(" constraint failed")
    if not found:
        return None
    detail = detail.removeprefix(": ").strip()
    if kind == "FOREIGN KEY":
        return UNNAMED_FOREIGN_KEY
    if kind == "CHECK":
        return detail or None
    if kind == "UNIQUE":
        return _sqlite_unique_name(detail)
    return None  # NOT NULL: a bug, never a client's conflict


def _sqlite_unique_name(detail: str) -> str | None:
    """'products.sku' or 'idempotency_keys.user_id, idempotency_keys.key' -> its name."""
    if detail.startswith("index '"):
        return detail.removeprefix("index '").removesuffix("'")
    qualified = [part.strip().split(".", 1) for part in detail.split(",")]
    if any(len(part) != 2 for part in qualified):
        return None
    table = Base.metadata.tables.get(qualified[0][0])
    if table is None:
        return None
    columns = tuple(column for _, column in qualified)
    keys = [
        (str(c.name), tuple(col.name for col in c.columns))
        for c in table.constraints
        if isinstance(c, UniqueConstraint | PrimaryKeyConstraint)
    ]
    keys += [(str(i.name), tuple(col.name for col in i.columns)) for i in table.indexes if i.unique]
    return next((name for name, key in keys if key == columns), None)


def domain_error(
    error: IntegrityError, explained: Mapping[str, ErrorFactory]
) -> DomainError | None:
    """The domain error for this failure, or None when no rule explains it (re-raise it).

    An unnamed foreign key (SQLite) is the one foreign key the unit of work explained, if
    it explained exactly one: SQLite cannot say more, and PostgreSQL, which can, is exact.
    """
    name = constraint_name(error)
    if name is None:
        return None
    if name == UNNAMED_FOREIGN_KEY:
        foreign = [factory for key, factory in explained.items() if key.startswith("fk_")]
        return foreign[0]() if len(foreign) == 1 else None
    factory = explained.get(name) or KNOWN.get(name)
    return factory() if factory is not None else None
