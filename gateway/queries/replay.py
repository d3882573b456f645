"""Replays, recovery and dead letters: putting deliveries and inbound events back in line."""

from __future__ import annotations

REPLAY_DELIVERY = """
UPDATE ops.webhook_deliveries
SET status = 'pending', trigger = %(trigger)s, next_attempt_at = clock_timestamp(),
    lease_owner = NULL, lease_until = NULL, updated_at = clock_timestamp()
WHERE id = %(id)s AND status <> 'pending'
RETURNING id
"""

DELIVERY_STATUS = "SELECT status FROM ops.webhook_deliveries WHERE id = %(id)s"

_FAILED_IN_RANGE = """
FROM ops.webhook_deliveries d
WHERE d.endpoint_id = %(endpoint_id)s AND d.status = 'dead'
  AND d.created_at >= %(since)s AND d.created_at < %(until)s
"""
COUNT_FAILED = f"SELECT count(*) {_FAILED_IN_RANGE}"
REPLAY_FAILED = f"""
UPDATE ops.webhook_deliveries r
SET status = 'pending', trigger = 'replay', next_attempt_at = clock_timestamp(),
    lease_owner = NULL, lease_until = NULL, updated_at = clock_timestamp()
FROM (SELECT d.id {_FAILED_IN_RANGE} ORDER BY d.created_at LIMIT %(limit)s FOR UPDATE) p
WHERE r.id = p.id
RETURNING r.id
"""

# Messages of the range the endpoint's filters match but that have no delivery to it (the
# endpoint was added, disabled or filtered differently when they were created).
_MISSING = """
FROM ops.webhook_messages m
JOIN ops.webhook_endpoints e ON e.id = %(endpoint_id)s
WHERE m.created_at >= %(since)s AND m.created_at < %(until)s
  AND (m.endpoint_id = e.id
       OR (m.endpoint_id IS NULL AND ops.webhook_type_matches(e.event_types, m.event_type)))
  AND NOT EXISTS (SELECT FROM ops.webhook_deliveries d
                  WHERE d.message_id = m.id AND d.endpoint_id = e.id)
"""
COUNT_MISSING = f"SELECT count(*) {_MISSING}"
RECOVER = f"""
INSERT INTO ops.webhook_deliveries (message_id, endpoint_id, trigger, next_attempt_at)
SELECT m.id, e.id, 'recover', clock_timestamp() {_MISSING}
ORDER BY m.created_at
LIMIT %(limit)s
ON CONFLICT (message_id, endpoint_id) DO NOTHING
RETURNING id
"""

RESOLVE_OUTBOUND = """
UPDATE ops.webhook_dead_letters SET resolved_at = clock_timestamp(), resolution = %(how)s
WHERE delivery_id = ANY(%(ids)s) AND resolved_at IS NULL
"""
RESOLVE_INBOUND = """
UPDATE ops.webhook_dead_letters SET resolved_at = clock_timestamp(), resolution = %(how)s
WHERE inbound_event_id = ANY(%(ids)s) AND resolved_at IS NULL
"""

OPEN_LETTERS = """
SELECT direction, count(*) FROM ops.webhook_dead_letters
WHERE resolved_at IS NULL AND (%(direction)s::text IS NULL OR direction = %(direction)s)
GROUP BY 1
"""

REPROCESS_OUTBOUND = """
UPDATE ops.webhook_deliveries d
SET status = 'pending', trigger = 'replay', next_attempt_at = clock_timestamp(),
    lease_owner = NULL, lease_until = NULL, updated_at = clock_timestamp()
FROM (SELECT DISTINCT l.delivery_id FROM ops.webhook_dead_letters l
      JOIN ops.webhook_deliveries x ON x.id = l.delivery_id AND x.status = 'dead'
      JOIN ops.webhook_endpoints e ON e.id = x.endpoint_id AND e.enabled
      WHERE l.direction = 'outbound' AND l.resolved_at IS NULL
      ORDER BY l.delivery_id LIMIT %(limit)s) p
WHERE d.id = p.delivery_id AND d.status = 'dead'
RETURNING d.id
"""

REPROCESS_INBOUND = """
UPDATE ops.webhook_inbound_events i
SET status = 'pending', attempts = 0, next_attempt_at = clock_timestamp(), last_error = NULL,
    lease_owner = NULL, lease_until = NULL
FROM (SELECT DISTINCT l.inbound_event_id FROM ops.webhook_dead_letters l
      WHERE l.direction = 'inbound' AND l.resolved_at IS NULL
      ORDER BY l.inbound_event_id LIMIT %(limit)s) p
WHERE i.id = p.inbound_event_id AND i.status = 'dead'
RETURNING i.id
"""
