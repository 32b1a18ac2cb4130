"""partial index on each customer's unconfirmed orders, for the open-order caps

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Every order counts the customer's 'placed' orders (orders/caps.py). The (user_id,
created_at, id) index would walk the customer's whole history; this one holds only the
orders still waiting for confirmation, a handful per customer.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PLACED = sa.text("status = 'placed'")


def upgrade() -> None:
    """Create ix_orders_user_id_placed (PostgreSQL and SQLite both have partial indexes)."""
    op.create_index(
        "ix_orders_user_id_placed",
        "orders",
        ["user_id"],
        postgresql_where=PLACED,
        sqlite_where=PLACED,
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_orders_user_id_placed", table_name="orders")
