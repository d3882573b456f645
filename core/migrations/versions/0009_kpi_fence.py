"""A fold's fence reads the leader epoch after it holds the fence lock.

``SELECT pg_advisory_xact_lock_shared(k), epoch FROM ops.kpi_leader`` takes its snapshot
before it waits for the lock: a fold that waited for an election read the epoch from
before it and could commit under a leader that had been replaced. A volatile PL/pgSQL
function takes a new snapshot for each statement, so ``ops.kpi_fence`` reads the epoch
once the lock is held, in one round trip and without locking the row.

Revision ID: 0009_kpi_fence
Revises: 0008_kpi_bucket_counts
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0009_kpi_fence"
down_revision = "0008_kpi_bucket_counts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION ops.kpi_fence(fence_key bigint) RETURNS bigint
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock_shared(fence_key);
            RETURN (SELECT epoch FROM ops.kpi_leader);
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION ops.kpi_fence(bigint)")
