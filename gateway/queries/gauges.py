"""State behind the gauges: queues, dead letters, endpoints. Bounded by partial indexes."""

from __future__ import annotations

GAUGES = """
SELECT
  (SELECT count(*) FROM ops.webhook_deliveries WHERE status = 'pending'),
  (SELECT count(*) FROM ops.webhook_inbound_events WHERE status = 'pending'),
  (SELECT count(*) FROM ops.webhook_dead_letters
    WHERE resolved_at IS NULL AND direction = 'outbound'),
  (SELECT count(*) FROM ops.webhook_dead_letters
    WHERE resolved_at IS NULL AND direction = 'inbound'),
  (SELECT count(*) FROM ops.webhook_endpoints WHERE enabled),
  (SELECT count(*) FROM ops.webhook_endpoints WHERE NOT enabled),
  (SELECT count(*) FROM ops.webhook_endpoints WHERE enabled AND circuit_open_until > now())
"""
