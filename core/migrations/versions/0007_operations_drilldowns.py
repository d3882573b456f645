"""Operations drilldowns: the indexes that page calendar syncs and support tickets.

Like the drilldown indexes of ``0004_access``, they are created only where the platform
schema lives in this database; on a large live platform, build them by hand first with
``CREATE INDEX CONCURRENTLY`` under the same names and this revision skips them.

Revision ID: 0007_operations_drilldowns
Revises: 0004_access
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0007_operations_drilldowns"
down_revision = "0004_access"
branch_labels = None
depends_on = None

PLATFORM_INDEXES: tuple[tuple[str, str, str], ...] = (
    ("calendar_syncs_started_id", "calendar_syncs", "(started_at, id)"),
    ("calendar_syncs_failed_started", "calendar_syncs", "(started_at) WHERE status = 'failed'"),
    ("support_tickets_opened_id", "support_tickets", "(opened_at, id)"),
    ("support_tickets_status_opened", "support_tickets", "(status, opened_at)"),
)


def upgrade() -> None:
    found = op.get_bind().execute(text("SELECT to_regclass('platform.calendar_syncs')")).scalar()
    if found is None:
        return
    for name, table, definition in PLATFORM_INDEXES:
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON platform.{table} {definition}")


def downgrade() -> None:
    for name, _, _ in PLATFORM_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS platform.{name}")
