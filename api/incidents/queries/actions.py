"""SQL of the one-click actions."""

from __future__ import annotations

CLAIM_REQUEST = """
INSERT INTO ops.action_requests (idempotency_key, action, actor, target, reason, status)
VALUES (%(key)s, %(action)s, %(actor)s, %(target)s, %(reason)s, 'running')
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING idempotency_key
"""

EXISTING_REQUEST = """
SELECT action, actor, status, result FROM ops.action_requests WHERE idempotency_key = %(key)s
"""

FINISH_REQUEST = """
UPDATE ops.action_requests SET status = %(status)s, result = %(result)s, finished_at = now()
WHERE idempotency_key = %(key)s
"""

FORGET_REQUEST = "DELETE FROM ops.action_requests WHERE idempotency_key = %(key)s"

QUEUE_ANNOTATION = """
INSERT INTO ops.grafana_annotations (text, tags, at) VALUES (%(text)s, %(tags)s, %(at)s)
"""

SILENCE = "SELECT silence_id, ends_at FROM ops.silences WHERE target = %(target)s FOR UPDATE"

SAVE_SILENCE = """
INSERT INTO ops.silences (target, silence_id, ends_at, created_by)
VALUES (%(target)s, %(silence)s, %(ends_at)s, %(actor)s)
ON CONFLICT (target) DO UPDATE
SET silence_id = excluded.silence_id, ends_at = excluded.ends_at, updated_at = now()
"""

LOCK_SILENCE_TARGET = "SELECT pg_advisory_xact_lock(hashtext('silence:' || %(target)s))"

# A request older than incidents.approval_ttl_seconds expires: neither approvable nor
# blocking (the unique index admits one pending request at a time).
EXPIRE_PAYOUT_REQUESTS = """
UPDATE ops.payout_suspensions SET status = 'expired'
WHERE status = 'pending' AND requested_at < now() - make_interval(secs => %(ttl)s)
"""

PENDING_PAYOUT_REQUEST = """
SELECT id, kind, requested_by, reason, requested_by_user FROM ops.payout_suspensions
WHERE status = 'pending' AND requested_at >= now() - make_interval(secs => %(ttl)s)
FOR UPDATE
"""

REQUEST_PAYOUT_CHANGE = """
INSERT INTO ops.payout_suspensions (kind, status, requested_by, requested_by_user, reason)
VALUES (%(kind)s, 'pending', %(actor)s, %(user_id)s, %(reason)s)
RETURNING id
"""

APPROVE_PAYOUT_CHANGE = """
UPDATE ops.payout_suspensions SET status = 'approved', approved_by = %(actor)s,
    approved_by_user = %(user_id)s, approved_at = now()
WHERE id = %(id)s
"""

PAYOUTS_SUSPENDED = """
SELECT kind = 'suspend' FROM ops.payout_suspensions WHERE status = 'approved'
ORDER BY approved_at DESC, id DESC LIMIT 1
"""

SCHEDULED_PAYOUTS = """
SELECT count(*), coalesce(sum(amount_cents), 0) FROM platform.payouts WHERE status = 'scheduled'
"""

SET_MAINTENANCE = """
INSERT INTO ops.maintenance_mode (enabled, changed_by, reason)
VALUES (%(enabled)s, %(actor)s, %(reason)s)
ON CONFLICT (singleton) DO UPDATE
SET enabled = excluded.enabled, changed_by = excluded.changed_by, reason = excluded.reason,
    changed_at = now()
"""

MAINTENANCE = "SELECT enabled FROM ops.maintenance_mode"

PARTNER_ENDPOINTS = """
SELECT count(*) FROM ops.webhook_endpoints
WHERE enabled AND ops.webhook_type_matches(event_types, %(event_type)s)
"""

OPEN_DEAD_LETTERS = """
SELECT direction, count(*) FROM ops.webhook_dead_letters WHERE resolved_at IS NULL
GROUP BY direction
"""

TAKE_LEASE = """
INSERT INTO ops.action_leases (name, holder, lease_until)
VALUES (%(name)s, %(holder)s, now() + make_interval(secs => %(seconds)s))
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder, lease_until = excluded.lease_until
WHERE ops.action_leases.lease_until < now()
RETURNING holder
"""

RELEASE_LEASE = "DELETE FROM ops.action_leases WHERE name = %(name)s AND holder = %(holder)s"

FAILED_PAYMENTS = """
SELECT count(*), coalesce(sum(amount_cents), 0) FROM platform.transactions
WHERE status = 'failed' AND created_at >= now() - interval '24 hours'
  AND (%(code)s::text IS NULL OR failure_code = %(code)s)
"""
