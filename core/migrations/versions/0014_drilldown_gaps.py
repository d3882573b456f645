"""The drilldowns Grafana points at that were missing: a calendar's syncs, for the
per-calendar sync failures and each calendar's latest good sync.

Like ``0007_operations_drilldowns``, the indexes are created only where the platform schema
lives in this database; on a large live platform, build them by hand first with ``CREATE
INDEX CONCURRENTLY`` under the same names and this revision skips them. Stuck bookings need
none: ``bookings_pending_created`` (``0001_platform``) already holds exactly them; nor do
chargebacks, a page of which walks ``chargebacks_created_id`` (``0004_access``).

Revision ID: 0014_drilldown_gaps
Revises: 0007_operations_drilldowns
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0014_drilldown_gaps"
down_revision = "0007_operations_drilldowns"
branch_labels = None
depends_on = None

PLATFORM_INDEXES: tuple[tuple[str, str, str], ...] = (
    # A calendar's failed syncs newest first, and its latest good one, however long the
    # calendar has been failing: both are a range of (calendar, result).
    ("calendar_syncs_calendar_status", "calendar_syncs", "(calendar_id, status, started_at)"),
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
