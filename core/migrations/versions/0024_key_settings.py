"""API keys with limits, and accounts managed from the API's own pages.

- ``ops.api_keys.expires_at``: a key is refused (401, "expired") from then on; NULL never
  expires. ``rate_limit_per_minute``: the key's own request rate, counted by the API's
  rate limiter per key in place of ``api.requests_per_minute``; NULL keeps that default.
  ``scopes`` (since ``0004_access``) stay the permissions a key holds, never more than its
  user's role.
- ``ops.api_key_usage_daily``: requests made with each key per day (all, 4xx, 5xx), counted
  by every API process and added here every ``api.key_usage_flush_seconds``. The usage
  roll-up (``ops.api_usage_daily``) counts the platform's API from ``platform.api_logs``,
  whose keys are the platform's customers', never opsdeck's.
- After ``0021_totp_enrolment``: a reset of the second factor leaves the secret NULL, and
  the account enrols a device at its next sign-in.

Revision ID: 0024_key_settings
Revises: 0015_key_owners, 0021_totp_enrolment
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0024_key_settings"
down_revision = ("0015_key_owners", "0021_totp_enrolment")
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE ops.api_keys
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN rate_limit_per_minute integer
        CHECK (rate_limit_per_minute BETWEEN 1 AND 1000000);

CREATE TABLE ops.api_key_usage_daily (
    api_key_id    bigint NOT NULL REFERENCES ops.api_keys (id) ON DELETE CASCADE,
    day           date NOT NULL,
    calls         bigint NOT NULL CHECK (calls >= 0),
    client_errors bigint NOT NULL CHECK (client_errors >= 0),
    server_errors bigint NOT NULL CHECK (server_errors >= 0),
    PRIMARY KEY (api_key_id, day)
);
"""

DOWNGRADE = """
DROP TABLE ops.api_key_usage_daily;
ALTER TABLE ops.api_keys DROP COLUMN rate_limit_per_minute, DROP COLUMN expires_at;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
