"""search: the lexicon of catalog words (typos, suggestions); FTS5 on SQLite

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

Both backends get `search_terms` (a word of the catalog, its singular (stem), the word
without accents, and how many products and categories brought it in),
filled here from the products and categories there are, and trigram-indexed (the accentless
form) for typo lookups: pg_trgm's GIN index on PostgreSQL; on SQLite a contentless FTS5 trigram table fed
by triggers with pg_trgm's padded form of each word ("  word "). SQLite also gets
`products_fts`, FTS5 over name, brand and description (porter stems, 2- and 3-letter
prefix indexes), an external-content table kept in step by triggers and built here.

`search_brands` (each brand and its product count) is what suggestions read for brands.

Safe on a live table of 1,000,000 products: nothing new is built on `products` on
PostgreSQL (search keeps its tsvector GIN indexes); the backfill only reads it, in batches,
and writes the new, small table. The word rule is copied from catalog/search_words.py as of
this revision, so what the migration writes never changes with later code.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_SEPARATORS = re.compile(r"[\W_]+")
MAX_WORD = 40
BATCH = 20_000

SQLITE_DDL = (
    "CREATE VIRTUAL TABLE search_terms_trigrams USING fts5(term, tokenize='trigram', content='')",
    "CREATE TRIGGER search_terms_ai AFTER INSERT ON search_terms BEGIN"
    " INSERT INTO search_terms_trigrams(rowid, term) VALUES (new.rowid, '  ' || new.folded || ' ');"
    " END",
    "CREATE TRIGGER search_terms_ad AFTER DELETE ON search_terms BEGIN"
    " INSERT INTO search_terms_trigrams(search_terms_trigrams, rowid, term)"
    " VALUES ('delete', old.rowid, '  ' || old.folded || ' ');"
    " END",
    "CREATE VIRTUAL TABLE products_fts USING fts5(name, brand, description,"
    " tokenize='porter unicode61 remove_diacritics 0', prefix='2 3',"
    " content='products', content_rowid='id')",
    "CREATE TRIGGER products_fts_ai AFTER INSERT ON products BEGIN"
    " INSERT INTO products_fts(rowid, name, brand, description)"
    " VALUES (new.id, new.name, new.brand, new.description);"
    " END",
    "CREATE TRIGGER products_fts_ad AFTER DELETE ON products BEGIN"
    " INSERT INTO products_fts(products_fts, rowid, name, brand, description)"
    " VALUES ('delete', old.id, old.name, old.brand, old.description);"
    " END",
    "CREATE TRIGGER products_fts_au AFTER UPDATE OF name, brand, description ON products BEGIN"
    " INSERT INTO products_fts(products_fts, rowid, name, brand, description)"
    " VALUES ('delete', old.id, old.name, old.brand, old.description);"
    " INSERT INTO products_fts(rowid, name, brand, description)"
    " VALUES (new.id, new.name, new.brand, new.description);"
    " END",
    "INSERT INTO products_fts(products_fts) VALUES ('rebuild')",
)


def _stem(word: str) -> str:
    if len(word) <= 3 or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "zes", "sses")):
        return word[:-2]
    return word[:-1] if word.endswith("s") else word


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _word_list(text: str) -> list[str]:
    lowered = unicodedata.normalize("NFKC", text).lower()
    return [w for w in _SEPARATORS.split(lowered) if w and len(w) <= MAX_WORD]


def _words(text: str) -> set[str]:
    lowered = unicodedata.normalize("NFKC", text).lower()
    return {w for w in _SEPARATORS.split(lowered) if w and len(w) <= MAX_WORD}


def _backfill(conn: sa.Connection) -> None:
    counts: Counter[str] = Counter()
    for (name,) in conn.execute(sa.text("SELECT name FROM categories")):
        counts.update(_words(name))
    last = 0
    while True:
        rows = conn.execute(
            sa.text(
                "SELECT id, name, brand, description FROM products WHERE id > :last"
                " ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": BATCH},
        ).all()
        if not rows:
            break
        for row in rows:
            counts.update(_words(row.name) | _words(row.brand) | _words(row.description))
        last = rows[-1].id
    terms = sorted(counts)
    for start in range(0, len(terms), BATCH):
        chunk = [
            {"t": t, "s": _stem(t), "f": _fold(t), "w": counts[t]}
            for t in terms[start : start + BATCH]
        ]
        conn.execute(
            sa.text(
                "INSERT INTO search_terms (term, stem, folded, weight) VALUES (:t, :s, :f, :w)"
            ),
            chunk,
        )


def upgrade() -> None:
    """The lexicon (+ its trigram index), filled; on SQLite also products_fts."""
    conn = op.get_bind()
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "search_terms",
        sa.Column("term", sa.String(length=40, collation="C" if postgres else None)),
        sa.Column("stem", sa.String(length=40), nullable=False),
        sa.Column("folded", sa.String(length=40), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("term", name=op.f("pk_search_terms")),
    )
    op.create_index(op.f("ix_search_terms_stem"), "search_terms", ["stem"])
    op.create_index(op.f("ix_search_terms_folded"), "search_terms", ["folded"])
    if postgres:
        op.execute(
            "CREATE INDEX ix_search_terms_trigram ON search_terms USING gin (folded gin_trgm_ops)"
        )
    else:
        for statement in SQLITE_DDL:
            op.execute(statement)
    op.create_table(
        "search_brands",
        sa.Column("brand", sa.String(length=100)),
        sa.Column("words", sa.String(length=120), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("brand", name=op.f("pk_search_brands")),
    )
    _backfill(conn)
    brands = conn.execute(
        sa.text("SELECT brand, count(*) FROM products WHERE brand <> '' GROUP BY brand")
    ).all()
    if brands:
        conn.execute(
            sa.text("INSERT INTO search_brands (brand, words, weight) VALUES (:b, :w, :n)"),
            [{"b": b, "w": " ".join(_fold(w) for w in _word_list(b)), "n": n} for b, n in brands],
        )


def downgrade() -> None:
    """Drop them (pg_trgm stays: other schemas in the database may use it)."""
    if op.get_bind().dialect.name != "postgresql":
        for name in ("products_fts_ai", "products_fts_ad", "products_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS products_fts")
        op.execute("DROP TABLE IF EXISTS search_terms_trigrams")
    op.drop_table("search_brands")
    op.drop_table("search_terms")
