"""The running totals behind the opsdeck_webhook_* counters, bumped in the transaction that
does what they count. Rows are locked in key order, so concurrent writers never deadlock."""

from __future__ import annotations

SEPARATOR = "\x1f"

BUMP = """
INSERT INTO ops.webhook_counters AS c (metric, labels, value)
SELECT m, string_to_array(l, E'\\x1f'), v
FROM unnest(%(metrics)s::text[], %(labels)s::text[], %(values)s::float8[]) AS u(m, l, v)
ORDER BY m, l
ON CONFLICT (metric, labels) DO UPDATE SET value = c.value + EXCLUDED.value
"""

ALL = "SELECT metric, labels, value FROM ops.webhook_counters"
