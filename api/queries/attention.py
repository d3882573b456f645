"""What needs an operator now, for the home page: each a count and the oldest time among
its rows (where the page it links to starts its range). Every predicate here is the one
the linked page's filters apply, so the page shows exactly the rows counted."""

from __future__ import annotations

# Not resolved: the incidents list's status filter triggered + acknowledged. The partial
# index incidents_open holds them.
OPEN_INCIDENTS = """
SELECT severity, count(*), min(started_at) FROM ops.incidents
WHERE status = ANY(%(statuses)s) GROUP BY severity
"""

# Parked and not reprocessed: the dead letters list's open=true (index webhook_dead_letters_open).
OPEN_DEAD_LETTERS = """
SELECT count(*), min(created_at) FROM ops.webhook_dead_letters WHERE resolved_at IS NULL
"""

# The endpoints list's enabled=false.
DISABLED_ENDPOINTS = """
SELECT count(*), min(created_at) FROM ops.webhook_endpoints WHERE NOT enabled
"""

# Payout changes waiting for their second person, younger than the approval TTL (an older
# one has expired: it can no longer be approved).
PENDING_PAYOUT_CHANGES = """
SELECT kind, count(*) FROM ops.payout_suspensions
WHERE status = 'pending' AND requested_at >= now() - make_interval(secs => %(ttl)s)
GROUP BY kind
"""
