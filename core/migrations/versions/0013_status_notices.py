"""Public status notices: what customers read on ``/status`` about an incident on a
customer-facing component, in public words only.

- ``ops.status_notices``: one per incident that opened it (``incident_id``, internal and
  never shown), its component, public title and status (investigating → identified →
  resolved).
- ``ops.status_notice_updates``: the notice's public updates, oldest first; ``author``
  is internal (who wrote or edited it) and never shown.

Revision ID: 0013_status_notices
Revises: 0006_incidents
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0013_status_notices"
down_revision = "0006_incidents"
branch_labels = ("status",)
depends_on = None

UPGRADE = """
CREATE TABLE ops.status_notices (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id bigint UNIQUE REFERENCES ops.incidents ON DELETE SET NULL,
    component   text NOT NULL CHECK (component IN ('booking_api', 'payments', 'calendar_sync')),
    title       text NOT NULL,
    status      text NOT NULL
                CHECK (status IN ('investigating', 'identified', 'monitoring', 'resolved')),
    opened_at   timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    resolved_at timestamptz
);
CREATE INDEX status_notices_recent ON ops.status_notices (opened_at DESC);

CREATE TABLE ops.status_notice_updates (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notice_id bigint NOT NULL REFERENCES ops.status_notices ON DELETE CASCADE,
    at        timestamptz NOT NULL,
    status    text NOT NULL,
    message   text NOT NULL,
    author    text NOT NULL
);
CREATE INDEX status_notice_updates_notice ON ops.status_notice_updates (notice_id, id);
"""

DOWNGRADE = "DROP TABLE ops.status_notice_updates, ops.status_notices;"


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
