"""ops side of double bookings: what was counted, and when it was resolved."""

from __future__ import annotations

# Parallel arrays, one element per conflicting confirmation (customer_ref: the keyed hash
# Grafana shows). Returns the rows new to the table: a confirmation is counted once even if
# a window were ever read twice.
RECORD = """
INSERT INTO ops.kpi_booking_conflicts (booking_id, other_booking_id, resource_id, location_id,
    customer_id, overlap_start, overlap_end, confirmed_at, customer_ref)
SELECT * FROM unnest(%(booking)s::bigint[], %(other)s::bigint[], %(resource)s::bigint[],
                     %(location)s::bigint[], %(customer)s::bigint[], %(start)s::timestamptz[],
                     %(end)s::timestamptz[], %(confirmed)s::timestamptz[],
                     %(customer_ref)s::text[])
ON CONFLICT (booking_id) DO NOTHING
RETURNING booking_id
"""

RESOLVE = """
UPDATE ops.kpi_booking_conflicts c
SET resolved_at = e.at, resolution = 'booking ' || e.id || ' ' || e.status
FROM unnest(%(ids)s::bigint[], %(statuses)s::text[], %(at)s::timestamptz[]) AS e(id, status, at)
WHERE c.resolved_at IS NULL AND (c.booking_id = e.id OR c.other_booking_id = e.id)
"""
