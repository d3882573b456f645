"""The epochs of every leader lock, keyed by its name (core/leadership.py).

- ``ops.leaders``: one row per leader lock (``kpi`` for the KPI engine, the gateway's
  metrics, the escalation engine), whose epoch an election bumps. The KPI engine's epoch
  moves over from ``ops.kpi_leader`` unchanged, so a fold in flight keeps its meaning.
- ``ops.leader_fence(name, fence_key)``: takes the fence lock shared until the transaction
  ends, then reads the leader's epoch (a new snapshot, as ``ops.kpi_fence`` of 0009 does).
- ``ops.kpi_leader`` becomes a view of the ``kpi`` row, updatable: ``ops.kpi_fence`` and a
  replica still running the previous release elect and fence on the same epoch.

Revision ID: 0010_leaders
Revises: 0002_ops_base
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0010_leaders"
down_revision = "0002_ops_base"
branch_labels = ("leaders",)
depends_on = ("0009_kpi_fence",)

UPGRADE = """
CREATE TABLE ops.leaders (
    name       text PRIMARY KEY,
    epoch      bigint NOT NULL CHECK (epoch >= 0),
    holder     text NOT NULL,
    elected_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO ops.leaders (name, epoch, holder, elected_at)
SELECT 'kpi', epoch, holder, elected_at FROM ops.kpi_leader;
DROP TABLE ops.kpi_leader;
CREATE VIEW ops.kpi_leader AS
SELECT epoch, holder, elected_at FROM ops.leaders WHERE name = 'kpi';

CREATE FUNCTION ops.leader_fence(leader text, fence_key bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(fence_key);
    RETURN (SELECT epoch FROM ops.leaders WHERE name = leader);
END
$$;
"""

DOWNGRADE = """
DROP FUNCTION ops.leader_fence(text, bigint);
DROP VIEW ops.kpi_leader;
CREATE TABLE ops.kpi_leader (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch      bigint NOT NULL,
    holder     text NOT NULL,
    elected_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO ops.kpi_leader (epoch, holder, elected_at)
SELECT coalesce(l.epoch, 0), coalesce(l.holder, 'nobody'), coalesce(l.elected_at, now())
FROM (VALUES (1)) AS one (n) LEFT JOIN ops.leaders l ON l.name = 'kpi';
DROP TABLE ops.leaders;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
