"""Rejected inbound webhook requests keep a fingerprint, not a copy.

Anyone can POST to the inbound PSP routes, so what a rejection stores is bounded per
request: the SHA-256 of the whole body (``body_sha256``, to recognise the same bad request
again and to match it with what a PSP says it sent) beside a short sample of its first
bytes (``body``, ``webhooks.rejected_sample_bytes``), and the API limits rejections per
client address before storing any. Rows older than ``webhooks.retention_days`` are deleted
by the API's retention loop.

Rows written before this revision have no fingerprint (the whole body was never kept), so
``body_sha256`` stays NULL for them; their samples (at most 4 KB, as before) stay.

Revision ID: 0017_rejection_samples
Revises: 0005_webhooks
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0017_rejection_samples"
down_revision = "0005_webhooks"
branch_labels = ("rejection_samples",)
depends_on = None

UPGRADE = """
ALTER TABLE ops.webhook_inbound_rejections
    ADD COLUMN body_sha256 bytea CHECK (octet_length(body_sha256) = 32);
ALTER TABLE ops.webhook_inbound_rejections
    ADD CONSTRAINT webhook_inbound_rejections_sample CHECK (octet_length(body) <= 4096);
COMMENT ON COLUMN ops.webhook_inbound_rejections.body IS
    'the first bytes of the body (webhooks.rejected_sample_bytes), not the body';
"""

DOWNGRADE = """
ALTER TABLE ops.webhook_inbound_rejections
    DROP CONSTRAINT webhook_inbound_rejections_sample,
    DROP COLUMN body_sha256;
COMMENT ON COLUMN ops.webhook_inbound_rejections.body IS NULL;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
