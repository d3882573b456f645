"""Messages and their fan-out to deliveries, in the caller's transaction (the outbox)."""

from __future__ import annotations

CHANNEL = "opsdeck_webhooks"
# Delivered at commit (and only then); several in one transaction arrive once.
NOTIFY = "SELECT pg_notify('opsdeck_webhooks', %(what)s)"

_NEW_MESSAGES = """
new AS (
    INSERT INTO ops.webhook_messages (event_type, body, source, source_key, endpoint_id)
    SELECT t, b, s, k, e
    FROM unnest(%(types)s::text[], %(bodies)s::text[], %(sources)s::text[], %(keys)s::text[],
                %(endpoints)s::bigint[]) AS u(t, b, s, k, e)
    ON CONFLICT (source_key) DO NOTHING
    RETURNING id, uid, event_type, endpoint_id, created_at
),
fan AS (
    INSERT INTO ops.webhook_deliveries (message_id, endpoint_id, trigger, next_attempt_at,
                                        created_at, updated_at)
    SELECT n.id, e.id, %(trigger)s, n.created_at, n.created_at, n.created_at
    FROM new n
    JOIN ops.webhook_endpoints e
      ON e.enabled
     -- a message addressed to one endpoint (a test event) reaches it whatever its filters
     AND (e.id = n.endpoint_id
          OR (n.endpoint_id IS NULL AND ops.webhook_type_matches(e.event_types, n.event_type)))
    RETURNING message_id
)"""

# Many messages at once: how many were new, and how many deliveries they fanned out to.
ENQUEUE_MANY = f"WITH {_NEW_MESSAGES} SELECT (SELECT count(*) FROM new), (SELECT count(*) FROM fan)"

# One message: its id, uid and delivery count; no row when its source_key existed already.
ENQUEUE_ONE = f"""
WITH {_NEW_MESSAGES}
SELECT n.id, n.uid, (SELECT count(*) FROM fan), true FROM new n
"""
EXISTING = """
SELECT m.id, m.uid, (SELECT count(*) FROM ops.webhook_deliveries d WHERE d.message_id = m.id),
       false
FROM ops.webhook_messages m WHERE m.source_key = %(key)s
"""
