"""Reconciliation: transactions of the last day against the PSP's figures, kept in ops.

The platform is read only for what changed; the 24 h gauges come from per-minute sums in
``ops.kpi_recon_minutes`` plus the rows of the one minute the window cuts through, less the
transactions whose PSP report is not due yet (no report, younger than the grace period).
"""

from __future__ import annotations

EARLIEST = "SELECT now() - interval '25 hours'"

# New transactions of the window that still fall in the last day, with what the PSP says
# (one primary-key probe per transaction, whatever the plan's row estimate).
CREATED = """
SELECT t.id, t.psp_id, t.created_at, t.amount_cents, t.currency,
       (SELECT p.amount_cents FROM platform.psp_transactions p WHERE p.psp_id = t.psp_id)
FROM platform.transactions t
WHERE t.created_at >= %(since)s AND t.created_at < %(until)s AND t.created_at >= %(cutoff)s
"""

# PSP figures that arrived or changed. A change older than the cutoff can't concern a
# transaction still in the window: those read the PSP's current figure when folded.
PSP_CHANGED = """
SELECT psp_id, amount_cents FROM platform.psp_transactions
WHERE updated_at >= greatest(%(since)s, %(cutoff)s - interval '1 hour') AND updated_at < %(until)s
"""

# -- ops side ---------------------------------------------------------------------------

KNOWN = """
SELECT transaction_id, psp_id, created_at, internal_cents, psp_cents FROM ops.kpi_recon
WHERE transaction_id = ANY(%(ids)s)
"""
KNOWN_BY_PSP = """
SELECT transaction_id, psp_id, created_at, internal_cents, psp_cents FROM ops.kpi_recon
WHERE psp_id = ANY(%(psp_ids)s)
"""
UPSERT_ROWS = """
INSERT INTO ops.kpi_recon (transaction_id, psp_id, created_at, internal_cents, psp_cents, currency)
SELECT * FROM unnest(%(ids)s::bigint[], %(psp_ids)s::text[], %(created)s::timestamptz[],
                     %(internal)s::bigint[], %(psp)s::bigint[], %(currencies)s::text[])
ON CONFLICT (transaction_id) DO UPDATE SET psp_cents = EXCLUDED.psp_cents
"""
ADD_TO_MINUTES = """
INSERT INTO ops.kpi_recon_minutes (minute, internal_cents, delta_cents, mismatches)
SELECT * FROM unnest(%(minutes)s::timestamptz[], %(internal)s::bigint[], %(delta)s::bigint[],
                     %(mismatches)s::bigint[])
ON CONFLICT (minute) DO UPDATE
SET internal_cents = ops.kpi_recon_minutes.internal_cents + EXCLUDED.internal_cents,
    delta_cents = ops.kpi_recon_minutes.delta_cents + EXCLUDED.delta_cents,
    mismatches = ops.kpi_recon_minutes.mismatches + EXCLUDED.mismatches
"""
EXPIRE_ROWS = "DELETE FROM ops.kpi_recon WHERE created_at < %(keep_after)s"
EXPIRE_MINUTES = "DELETE FROM ops.kpi_recon_minutes WHERE minute < %(keep_after)s"

# Whole minutes inside the window from the buckets, the minute it cuts through row by row;
# then the pending rows taken out again: unreported and created after %(due)s. A pending row
# counts in the buckets as a missing report would (delta = |internal|, one mismatch). Only
# the grace period's rows are read, through kpi_recon_created.
WINDOW = """
WITH edge AS (
    SELECT %(start)s::timestamptz AS start,
           date_trunc('minute', %(start)s::timestamptz) + interval '1 minute' AS first_whole
)
SELECT coalesce(m.internal, 0) + coalesce(r.internal, 0) - coalesce(p.internal, 0),
       coalesce(m.delta, 0) + coalesce(r.delta, 0) - coalesce(p.delta, 0),
       coalesce(m.mismatches, 0) + coalesce(r.mismatches, 0) - p.mismatches
FROM edge,
LATERAL (SELECT sum(internal_cents) AS internal, sum(delta_cents) AS delta,
                sum(mismatches) AS mismatches
         FROM ops.kpi_recon_minutes WHERE minute >= edge.first_whole) m,
LATERAL (SELECT sum(internal_cents) AS internal,
                sum(abs(internal_cents - coalesce(psp_cents, 0))) AS delta,
                count(*) FILTER (WHERE psp_cents IS DISTINCT FROM internal_cents) AS mismatches
         FROM ops.kpi_recon
         WHERE created_at >= edge.start AND created_at < edge.first_whole) r,
LATERAL (SELECT sum(internal_cents) AS internal, sum(abs(internal_cents)) AS delta,
                count(*) AS mismatches
         FROM ops.kpi_recon
         WHERE created_at >= greatest(edge.start, %(due)s::timestamptz) AND psp_cents IS NULL) p
"""
