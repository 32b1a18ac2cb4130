"""The categories and products tables."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..orm import Base, BigId, UTCDateTime, utcnow


def discount_percent(price: int, mrp: int) -> int:
    """floor((mrp - price) * 100 / mrp), 0 when mrp is 0."""
    return (mrp - price) * 100 // mrp if mrp else 0


class Category(Base):
    """A node of the category tree (parent_id NULL at the top)."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Product(Base):
    """A sellable item; money is integer paise in INR."""

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_non_negative"),
        CheckConstraint("mrp >= price", name="mrp_at_least_price"),
        CheckConstraint("stock >= 0", name="stock_non_negative"),
        # Keyset pagination walks these (sort key, id) pairs in both directions.
        Index("ix_products_created_at_id", "created_at", "id"),
        Index("ix_products_price_id", "price", "id"),
        Index("ix_products_rating_id", "rating", "id"),
        Index("ix_products_category_id_created_at_id", "category_id", "created_at", "id"),
        Index("ix_products_category_id_price_id", "category_id", "price", "id"),
        Index("ix_products_category_id_rating_id", "category_id", "rating", "id"),
        Index("ix_products_brand_lower", func.lower(text("brand"))),
        # Every facet key: a category's facet counts are an index-only scan (facets.py).
        Index("ix_products_facet_keys", "category_id", "brand", "price", "rating", "stock"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    slug: Mapped[str] = mapped_column(String(220), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    brand: Mapped[str] = mapped_column(String(100), default="")
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id", ondelete="RESTRICT"))
    price: Mapped[int] = mapped_column(BigInteger)
    mrp: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="INR")
    stock: Mapped[int] = mapped_column(Integer, default=0)
    rating: Mapped[float] = mapped_column(Float, default=0.0)
    images: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    category: Mapped[Category] = relationship(lazy="joined")

    @property
    def discount_percent(self) -> int:
        """See `discount_percent()`."""
        return discount_percent(self.price, self.mrp)

    @property
    def in_stock(self) -> bool:
        """True while at least one unit can be sold."""
        return self.stock > 0


class SearchTerm(Base):
    """A word of the catalog (product names, brands, descriptions, category names).

    The lexicon typos and suggestions are looked up in (lexicon.py): `weight` is how many
    products and categories brought the word in, never lowered (a word left behind by a
    deleted product only costs a lookup). Trigram-indexed: pg_trgm on PostgreSQL, an FTS5
    trigram table on SQLite (migration 0009).
    """

    __tablename__ = "search_terms"

    term: Mapped[str] = mapped_column(String(40), primary_key=True)
    stem: Mapped[str] = mapped_column(String(40), index=True)  # search_words.stem(term)
    folded: Mapped[str] = mapped_column(String(40), index=True)  # search_words.fold(term)
    weight: Mapped[int] = mapped_column(Integer, default=0)


class SearchBrand(Base):
    """A brand of the catalog and how many products brought it in (never lowered), for
    suggestions: a few thousand rows at most, read whole, where products are millions."""

    __tablename__ = "search_brands"

    brand: Mapped[str] = mapped_column(String(100), primary_key=True)
    words: Mapped[str] = mapped_column(String(120))  # its words, lower case, accents folded
    weight: Mapped[int] = mapped_column(Integer, default=0)
