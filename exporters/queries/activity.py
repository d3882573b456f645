"""API requests, calendar syncs, service checks, support tickets.

Rows of api_logs and service_checks never change after insert, so their write time
(``updated_at``, the inserting transaction's clock) is their event time.
"""

from __future__ import annotations

from collections.abc import Sequence

from exporters.queries.labels import bounded, bucket_index

API_EARLIEST = "SELECT min(updated_at) FROM platform.api_logs"

API_REQUESTS = f"""
SELECT {bounded("route", "routes")}, {bounded("method", "methods")},
       (status_code / 100)::text || 'xx', livemode, count(*)
FROM platform.api_logs
WHERE updated_at >= %(since)s AND updated_at < %(until)s
GROUP BY 1, 2, 3, 4
"""


def api_durations(bounds_ms: Sequence[float]) -> str:
    return f"""
SELECT {bounded("route", "routes")}, {bucket_index("duration_ms", bounds_ms)},
       count(*), sum(duration_ms) / 1000.0
FROM platform.api_logs
WHERE updated_at >= %(since)s AND updated_at < %(until)s
GROUP BY 1, 2
"""


CALENDAR_EARLIEST = "SELECT min(finished_at) FROM platform.calendar_syncs"
CALENDAR_SYNCS = f"""
SELECT {bounded("provider", "providers")}, status, count(*)
FROM platform.calendar_syncs
WHERE finished_at >= %(since)s AND finished_at < %(until)s
GROUP BY 1, 2
"""

CHECKS_EARLIEST = "SELECT min(updated_at) FROM platform.service_checks"
SERVICE_CHECKS = f"""
SELECT {bounded("service", "services")}, ok, count(*)
FROM platform.service_checks
WHERE updated_at >= %(since)s AND updated_at < %(until)s
GROUP BY 1, 2
"""
# One index probe per service for its latest check: (service, ok, unix seconds, stale).
# Its age is measured here, against the database clock that stamped ``checked_at``, on
# every gauge refresh whether or not a check arrived: a checker that stopped writing is
# found out by the clock, not by a new row.
SERVICE_LATEST = """
SELECT s, c.ok, extract(epoch FROM c.checked_at)::float8,
       c.checked_at < now() - %(stale_seconds)s * interval '1 second'
FROM unnest(%(services)s::text[]) AS s
CROSS JOIN LATERAL (
    SELECT ok, checked_at FROM platform.service_checks WHERE service = s
    ORDER BY checked_at DESC LIMIT 1
) AS c
"""

TICKETS_EARLIEST = "SELECT min(resolved_at) FROM platform.support_tickets"


def ticket_resolutions(bounds_seconds: Sequence[float]) -> str:
    seconds = "extract(epoch FROM resolved_at - opened_at)"
    return f"""
SELECT {bucket_index(seconds, bounds_seconds)}, count(*), coalesce(sum({seconds}), 0)
FROM platform.support_tickets
WHERE resolved_at >= %(since)s AND resolved_at < %(until)s AND status = 'resolved'
GROUP BY 1
"""


TICKETS_OPEN = "SELECT count(*) FROM platform.support_tickets WHERE status <> 'resolved'"
