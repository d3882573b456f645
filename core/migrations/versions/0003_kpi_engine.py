"""The KPI engine's state: cursors, running values, and the windows it keeps itself.

Everything a fold changes is written in one transaction with the collector's cursor, so a
restart continues exactly where the last commit left off.

Revision ID: 0003_kpi_engine
Revises: 0002_ops_base
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0003_kpi_engine"
down_revision = "0002_ops_base"
branch_labels = ("kpi",)
depends_on = None

UPGRADE = """
-- The fencing token of the folding replica: a new leader bumps the epoch, and a fold
-- commits only while the epoch it started under is still current.
CREATE TABLE ops.kpi_leader (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch      bigint NOT NULL,
    holder     text NOT NULL,
    elected_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO ops.kpi_leader (epoch, holder) VALUES (0, 'nobody');

-- How far each collector has folded: every event before `horizon` is counted.
CREATE TABLE ops.kpi_cursors (
    collector       text PRIMARY KEY,
    horizon         timestamptz NOT NULL,
    folded_at       timestamptz NOT NULL DEFAULT now(),
    last_ok         boolean NOT NULL DEFAULT true,
    last_error      text,
    last_duration_s double precision NOT NULL DEFAULT 0
);

-- Running totals (counters, histogram buckets) and state gauges, by label values in the
-- family's label order.
CREATE TABLE ops.kpi_values (
    collector text NOT NULL,
    metric    text NOT NULL,
    labels    text[] NOT NULL,
    value     double precision NOT NULL,
    PRIMARY KEY (collector, metric, labels)
);

-- Confirmed bookings that overlapped an earlier-confirmed one, as they were counted.
CREATE TABLE ops.kpi_booking_conflicts (
    booking_id       bigint PRIMARY KEY,
    other_booking_id bigint NOT NULL,
    resource_id      bigint NOT NULL,
    location_id      bigint NOT NULL,
    customer_id      bigint NOT NULL,
    overlap_start    timestamptz NOT NULL,
    overlap_end      timestamptz NOT NULL,
    confirmed_at     timestamptz NOT NULL,
    counted_at       timestamptz NOT NULL DEFAULT now(),
    -- set when either booking is later cancelled or fails: the double booking is resolved
    resolved_at      timestamptz,
    resolution       text
);
CREATE INDEX kpi_booking_conflicts_confirmed ON ops.kpi_booking_conflicts (confirmed_at);

-- PSP against internal amounts of the transactions created in the last day ...
CREATE TABLE ops.kpi_recon (
    transaction_id bigint PRIMARY KEY,
    psp_id         text COLLATE "C",
    created_at     timestamptz NOT NULL,
    internal_cents bigint NOT NULL,
    psp_cents      bigint,
    currency       char(3) NOT NULL
);
CREATE UNIQUE INDEX kpi_recon_psp ON ops.kpi_recon (psp_id);
CREATE INDEX kpi_recon_created ON ops.kpi_recon (created_at);

-- ... and their sums per minute of creation, so the 24 h gauges read 1,440 rows, not a day
-- of transactions.
CREATE TABLE ops.kpi_recon_minutes (
    minute         timestamptz PRIMARY KEY,
    internal_cents bigint NOT NULL,
    delta_cents    bigint NOT NULL,
    mismatches     bigint NOT NULL
);

-- The Command Center's PostgreSQL panels (read by the opsdeck_grafana role): no names,
-- emails or card data, only ids and amounts.
CREATE VIEW ops.grafana_recent_double_bookings AS
SELECT c.booking_id, c.other_booking_id,
       'cus_' || left(md5(c.customer_id::text), 8) AS customer_ref,
       c.resource_id, c.location_id, c.overlap_start, c.overlap_end, c.confirmed_at,
       CASE WHEN c.resolved_at IS NULL THEN 'open' ELSE 'resolved' END AS resolution_status,
       c.resolution, c.resolved_at
FROM ops.kpi_booking_conflicts c;

CREATE VIEW ops.grafana_recent_payment_mismatches AS
SELECT r.transaction_id, r.psp_id, r.internal_cents AS internal_amount_cents,
       r.psp_cents AS psp_amount_cents,
       r.internal_cents - coalesce(r.psp_cents, 0) AS delta_cents, r.currency,
       CASE WHEN r.psp_cents IS NULL THEN 'missing_at_psp' ELSE 'amount_differs' END AS status,
       r.created_at
FROM ops.kpi_recon r
WHERE r.psp_cents IS DISTINCT FROM r.internal_cents;

GRANT SELECT ON ops.grafana_recent_double_bookings, ops.grafana_recent_payment_mismatches
    TO opsdeck_grafana;
"""

DOWNGRADE = """
DROP VIEW ops.grafana_recent_payment_mismatches, ops.grafana_recent_double_bookings;
DROP TABLE ops.kpi_recon_minutes, ops.kpi_recon, ops.kpi_booking_conflicts, ops.kpi_values,
    ops.kpi_cursors, ops.kpi_leader;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
