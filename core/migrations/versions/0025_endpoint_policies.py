"""Endpoint policies: each outbound endpoint may have a retry schedule and a rate limit of
its own.

- ``retry_schedule_seconds``: the delays before its 2nd, 3rd ... attempt (each spread by
  ``webhooks.retry_jitter``), so a schedule of k delays allows k + 1 attempts. NULL: the
  global ``webhooks.retry_schedule_seconds``. The database refuses an empty list, a delay
  that is not above zero and more delays than any schedule needs; the API applies the
  tighter bounds of the settings and names the value it refuses.
- ``rate_limit_per_second`` (since 0005): NULL now means the global
  ``webhooks.default_rate_limit_per_second`` (itself none by default: no limit).

Revision ID: 0025_endpoint_policies
Revises: 0005_webhooks
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0025_endpoint_policies"
down_revision = "0005_webhooks"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE ops.webhook_endpoints
    ADD COLUMN retry_schedule_seconds double precision[]
    CONSTRAINT webhook_endpoints_retry_schedule CHECK (
        cardinality(retry_schedule_seconds) BETWEEN 1 AND 100
        AND array_ndims(retry_schedule_seconds) = 1
        AND 0 < ALL (retry_schedule_seconds)
        AND 'infinity' > ALL (retry_schedule_seconds)
    );
COMMENT ON COLUMN ops.webhook_endpoints.retry_schedule_seconds IS
    'delays before the 2nd, 3rd ... attempt; NULL: webhooks.retry_schedule_seconds';
COMMENT ON COLUMN ops.webhook_endpoints.rate_limit_per_second IS
    'deliveries a second (a token bucket); NULL: webhooks.default_rate_limit_per_second';
"""

DOWNGRADE = """
ALTER TABLE ops.webhook_endpoints DROP COLUMN retry_schedule_seconds;
COMMENT ON COLUMN ops.webhook_endpoints.rate_limit_per_second IS NULL;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
