"""users, categories, products (+ PostgreSQL full-text search)

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)

# Name and brand weigh more than the description in relevance ranking.
SEARCH_VECTOR = (
    "setweight(to_tsvector('english', coalesce(name, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(brand, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(description, '')), 'B')"
)


def upgrade() -> None:
    """Create the tables, keyset indexes and (on PostgreSQL) the search vector + GIN index."""
    op.create_table(
        "categories",
        sa.Column("id", BigId, nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("parent_id", BigId, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["categories.id"],
            name=op.f("fk_categories_parent_id_categories"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_categories")),
        sa.UniqueConstraint("slug", name=op.f("uq_categories_slug")),
    )
    op.create_index(op.f("ix_categories_parent_id"), "categories", ["parent_id"])

    op.create_table(
        "users",
        sa.Column("id", BigId, nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.CheckConstraint("role IN ('customer', 'admin')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )

    op.create_table(
        "products",
        sa.Column("id", BigId, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("slug", sa.String(length=220), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("brand", sa.String(length=100), nullable=False),
        sa.Column("category_id", BigId, nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("mrp", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("rating", sa.Float(), nullable=False),
        sa.Column("images", sa.JSON(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.CheckConstraint("mrp >= price", name=op.f("ck_products_mrp_at_least_price")),
        sa.CheckConstraint("price >= 0", name=op.f("ck_products_price_non_negative")),
        sa.CheckConstraint("stock >= 0", name=op.f("ck_products_stock_non_negative")),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_products_category_id_categories"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("sku", name=op.f("uq_products_sku")),
        sa.UniqueConstraint("slug", name=op.f("uq_products_slug")),
    )
    op.create_index("ix_products_brand_lower", "products", [sa.text("lower(brand)")])
    # One leaf category sorted any way is the commonest browse; these serve it in index order.
    for key in ("created_at", "price", "rating"):
        op.create_index(f"ix_products_category_id_{key}_id", "products", ["category_id", key, "id"])
    op.create_index("ix_products_created_at_id", "products", ["created_at", "id"])
    op.create_index("ix_products_price_id", "products", ["price", "id"])
    op.create_index("ix_products_rating_id", "products", ["rating", "id"])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"ALTER TABLE products ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({SEARCH_VECTOR}) STORED"
        )
        op.execute("CREATE INDEX ix_products_search_vector ON products USING gin (search_vector)")


def downgrade() -> None:
    """Drop everything this revision created."""
    op.drop_table("products")
    op.drop_table("users")
    op.drop_index(op.f("ix_categories_parent_id"), table_name="categories")
    op.drop_table("categories")
