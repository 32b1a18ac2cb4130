"""the relay fans events out: drop the per-event dispatch jobs left in the queue

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

Events used to be fanned out by a `flipkart:dispatch` job deferred in each write; the
worker's relay now reads undispatched events from outbox_events itself (docs/decisions.md).
A dispatch job still waiting names an event the relay will take anyway, and a task the new
worker no longer has: it is deleted. PostgreSQL only (SQLite never had the queue).
Downgrade gives every undispatched event the dispatch job the older worker waits for.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DELETE FROM procrastinate_jobs"
            " WHERE task_name = 'flipkart:dispatch' AND status IN ('todo', 'failed')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args)"
            " SELECT 'events', 'flipkart:dispatch', 'dispatch:' || subject,"
            " jsonb_build_object('event_pk', id)"
            " FROM outbox_events WHERE dispatched_at IS NULL ORDER BY id"
        )
