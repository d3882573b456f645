"""Bookings: confirmations and their conflicts, resolutions, the stuck-bookings gauge."""

from __future__ import annotations

from exporters.queries.labels import bounded

EARLIEST = "SELECT least(min(confirmed_at), min(updated_at)) FROM platform.bookings"

CONFIRMED = f"""
SELECT {bounded("currency", "currencies")} AS currency, count(*), coalesce(sum(amount_cents), 0)
FROM platform.bookings
WHERE confirmed_at >= %(since)s AND confirmed_at < %(until)s
GROUP BY 1
"""

# A confirmation conflicts when an earlier-confirmed booking of the resource overlaps it
# and was not cancelled by then. The GiST index on (resource_id, tstzrange(start_at, end_at))
# returns just the overlapping bookings, however long the history.
CONFLICTS = """
SELECT a.id, o.id, a.resource_id, a.location_id, a.customer_id,
       greatest(a.start_at, o.start_at), least(a.end_at, o.end_at), a.confirmed_at
FROM platform.bookings a
JOIN LATERAL (
    SELECT b.id, b.start_at, b.end_at
    FROM platform.bookings b
    WHERE b.resource_id = a.resource_id
      AND tstzrange(b.start_at, b.end_at) && tstzrange(a.start_at, a.end_at)
      AND b.id <> a.id AND b.confirmed_at IS NOT NULL
      AND (b.confirmed_at, b.id) < (a.confirmed_at, a.id)
      AND (b.cancelled_at IS NULL OR b.cancelled_at > a.confirmed_at)
    ORDER BY b.confirmed_at, b.id
    LIMIT 1
) o ON true
WHERE a.confirmed_at >= %(since)s AND a.confirmed_at < %(until)s
"""

# Cancelled or failed since the last fold: resolves the double bookings they were part of.
ENDED = """
SELECT id, status, updated_at FROM platform.bookings
WHERE updated_at >= %(since)s AND updated_at < %(until)s AND status IN ('cancelled', 'failed')
"""

UNPROCESSED = """
SELECT count(*) FROM platform.bookings
WHERE status = 'pending' AND created_at < now() - %(after)s * interval '1 second'
"""

SESSIONS_EARLIEST = "SELECT min(started_at) FROM platform.site_sessions"
SESSIONS = """
SELECT count(*) FROM platform.site_sessions
WHERE started_at >= %(since)s AND started_at < %(until)s
"""
