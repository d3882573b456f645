"""Each person's time zone: ``ops.users.time_zone``.

Pages show times in the viewer's zone (the preferences page sets it; JSON for API keys
stays in UTC). The API accepts only the IANA names Python's ``zoneinfo`` lists; the
column's CHECK is the database's own line behind that: a name PostgreSQL's time zone
database knows (``ops.is_time_zone``), so a row written around the API cannot hold a zone
no page could convert to. Existing users read ``UTC``, as every page did before.

Revision ID: 0022_user_time_zones
Revises: 0004_access
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0022_user_time_zones"
down_revision = "0004_access"
branch_labels = None
depends_on = None

# IMMUTABLE so a CHECK may call it: zone names are only ever added to the tz database
# (a renamed zone stays as a link), so a name accepted once stays accepted.
UPGRADE = """
CREATE FUNCTION ops.is_time_zone(zone text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
    IF zone !~ '^[A-Za-z][A-Za-z0-9_+/-]{0,63}$' THEN
        RETURN false;
    END IF;
    PERFORM timestamptz '2000-01-01 00:00:00+00' AT TIME ZONE zone;
    RETURN true;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN false;
END
$$;
ALTER TABLE ops.users
    ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC' CHECK (ops.is_time_zone(time_zone));
"""

DOWNGRADE = """
ALTER TABLE ops.users DROP COLUMN time_zone;
DROP FUNCTION ops.is_time_zone(text);
"""


def upgrade() -> None:
    op.execute(text(UPGRADE))


def downgrade() -> None:
    op.execute(text(DOWNGRADE))
