"""What a restore drill compares: every table's row count and checksum, and every sequence.

Shared by the native drill (tests/test_backup.py) and the compose one
(tests/container/test_backup.py), which runs the same SQL through psql in the db container.
"""

from __future__ import annotations

from collections.abc import Callable

# Every table in the public schema (alembic_version included): a table added later is
# covered without touching the drill.
TABLES_SQL = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"


def checksums_sql(tables: list[str]) -> str:
    """One query: `name|row count|md5 of the rows in a fixed order` per table and sequence."""
    # Names come from pg_tables; refuse anything that is not a plain identifier.
    assert all(t.isidentifier() for t in tables), tables
    parts = [
        f"SELECT '{t}', count(*), md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), ''))"  # noqa: S608
        f" FROM public.{t} r"
        for t in tables
    ]
    # last_value decides the next id: a restore that lost it would collide on insert.
    parts.append(
        "SELECT 'seq:' || sequencename, coalesce(last_value, 0), '' FROM pg_sequences"
        " WHERE schemaname = 'public'"
    )
    return " UNION ALL ".join(parts) + " ORDER BY 1"


Snapshot = dict[str, tuple[int, str]]


def snapshot(query: Callable[[str], list[tuple[str, ...]]]) -> Snapshot:
    """Counts and checksums, through `query` (SQL in, rows of strings out)."""
    tables = [row[0] for row in query(TABLES_SQL)]
    assert tables, "no tables: nothing to compare"
    return {name: (int(count), digest) for name, count, digest in query(checksums_sql(tables))}


def row_counts(snap: Snapshot) -> dict[str, int]:
    """The tables' row counts, for the report."""
    return {name: count for name, (count, _) in snap.items() if not name.startswith("seq:")}
