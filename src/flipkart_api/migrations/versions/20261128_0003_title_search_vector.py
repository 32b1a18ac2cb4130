"""title-only search vector for tiered relevance (PostgreSQL only)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TITLE_VECTOR = "to_tsvector('english', coalesce(name, '') || ' ' || coalesce(brand, ''))"


def upgrade() -> None:
    """Add products.title_vector and its GIN index (name and brand only)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE products ADD COLUMN title_vector tsvector "
        f"GENERATED ALWAYS AS ({TITLE_VECTOR}) STORED"
    )
    op.execute("CREATE INDEX ix_products_title_vector ON products USING gin (title_vector)")


def downgrade() -> None:
    """Drop the column (its index goes with it)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE products DROP COLUMN title_vector")
