"""Sessions obey the database: ``ops.users.session_version``.

A browser session names a user and the session version it was made at; the API checks both
against this row on load (cached for a few seconds at most). Changing a role, disabling a
user, resetting a password or a TOTP secret and ``opsdeck users revoke-sessions`` add one
to the version, so every older session ends on every API process, whether or not the
command could reach Redis, and whatever Redis says about the session.

Revision ID: 0019_session_versions
Revises: 0004_access
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0019_session_versions"
down_revision = "0004_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        text(
            "ALTER TABLE ops.users "
            "ADD COLUMN session_version bigint NOT NULL DEFAULT 1 CHECK (session_version > 0)"
        )
    )


def downgrade() -> None:
    op.execute(text("ALTER TABLE ops.users DROP COLUMN session_version"))
