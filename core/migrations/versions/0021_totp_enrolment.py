"""Two-factor devices are enrolled at sign-in: ``ops.users.totp_secret`` may be NULL for
every role.

Until now a super admin could only be created with a TOTP secret (0004's CHECK), printed to
the terminal of whoever ran ``opsdeck users add``. From here on an account without a device
(a new one, the demo's, one whose device was reset) enrols one at its first sign-in: the
sign-in page shows a QR code of a new secret and saves it only once the person types a
current code from it, and until then the account holds no session at all. The rule moved
from the table to the sign-in, which applies it to every role, so the CHECK goes.

Sessions of accounts without a device, made before this revision by a password alone, end
here (their session version goes up): their next sign-in enrols a device.

Revision ID: 0021_totp_enrolment
Revises: 0019_session_versions
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0021_totp_enrolment"
down_revision = "0019_session_versions"
branch_labels = None
depends_on = None

# 0004 left the CHECK unnamed: PostgreSQL named it after the table.
SUPER_ADMIN_TOTP_CHECK = "users_check"


def upgrade() -> None:
    op.execute(text(f"ALTER TABLE ops.users DROP CONSTRAINT IF EXISTS {SUPER_ADMIN_TOTP_CHECK}"))
    op.execute(
        text("UPDATE ops.users SET session_version = session_version + 1 WHERE totp_secret IS NULL")
    )


def downgrade() -> None:
    # Super admins still waiting to enrol would break the old rule: the downgrade stops on
    # them (the CHECK is validated) rather than leave a rule the rows do not keep.
    op.execute(
        text(
            f"ALTER TABLE ops.users ADD CONSTRAINT {SUPER_ADMIN_TOTP_CHECK} "
            "CHECK (role <> 'super_admin' OR totp_secret IS NOT NULL)"
        )
    )
