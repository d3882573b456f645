"""SQL of the Command Center's PostgreSQL panels.

Grafana reads as the ``opsdeck_grafana`` role, which may only select from the masked
``ops.grafana_*`` views (PII hashed or truncated there, never here). ``$__timeFilter`` is
Grafana's macro for the dashboard's time range.
"""

from __future__ import annotations

ROW_LIMIT = 200

ACTIVE_INCIDENTS = f"""
SELECT id, title, severity, services, started_at, owner, status, runbook_url
FROM ops.grafana_active_incidents
ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 ELSE 2 END, started_at DESC
LIMIT {ROW_LIMIT}
""".strip()

RECENT_DOUBLE_BOOKINGS = f"""
SELECT booking_id, other_booking_id, customer_ref, resource_id, location_id,
       overlap_start, overlap_end, confirmed_at, resolution_status
FROM ops.grafana_recent_double_bookings
WHERE $__timeFilter(confirmed_at)
ORDER BY confirmed_at DESC
LIMIT {ROW_LIMIT}
""".strip()

RECENT_PAYMENT_MISMATCHES = f"""
SELECT transaction_id, psp_id, internal_amount_cents / 100.0 AS internal_amount,
       psp_amount_cents / 100.0 AS psp_amount, delta_cents / 100.0 AS delta,
       currency, status, created_at
FROM ops.grafana_recent_payment_mismatches
WHERE $__timeFilter(created_at)
ORDER BY abs(delta_cents) DESC, created_at DESC
LIMIT {ROW_LIMIT}
""".strip()

AUDIT_TRAIL = f"""
SELECT at, actor, actor_role, action, target_type, target_id, outcome, reason
FROM ops.grafana_audit_trail
WHERE $__timeFilter(at)
ORDER BY at DESC
LIMIT {ROW_LIMIT}
""".strip()
