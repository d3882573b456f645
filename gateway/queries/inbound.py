"""Inbound PSP events: stored before the 2xx, deduplicated, processed with retries."""

from __future__ import annotations

# One row per (provider, event key, livemode): a redelivery is counted, never stored twice.
STORE = """
INSERT INTO ops.webhook_inbound_events AS i (provider, event_key, livemode, event_type,
    headers, body, signature, remote_addr)
VALUES (%(provider)s, %(event_key)s, %(livemode)s, %(event_type)s, %(headers)s, %(body)s,
    %(signature)s, %(remote_addr)s)
ON CONFLICT (provider, event_key, livemode) DO UPDATE
SET duplicates = i.duplicates + 1, last_duplicate_at = clock_timestamp()
RETURNING id, xmax = 0 AS inserted
"""

REJECT = """
INSERT INTO ops.webhook_inbound_rejections (provider, reason, detail, status_code, headers,
    body, body_sha256, body_bytes, remote_addr)
VALUES (%(provider)s, %(reason)s, %(detail)s, %(status_code)s, %(headers)s, %(body)s,
    %(body_sha256)s, %(body_bytes)s, %(remote_addr)s)
"""

# Retention (webhooks.retention_days), a batch at a time so no delete holds locks for long.
PRUNE_REJECTIONS = """
DELETE FROM ops.webhook_inbound_rejections
WHERE id IN (SELECT id FROM ops.webhook_inbound_rejections
             WHERE received_at < now() - make_interval(days => %(days)s)
             ORDER BY received_at
             LIMIT %(batch)s)
"""

CLAIM = """
UPDATE ops.webhook_inbound_events i
SET lease_owner = %(worker)s,
    lease_until = clock_timestamp() + %(lease)s * interval '1 second',
    attempts = i.attempts + 1
FROM (SELECT id FROM ops.webhook_inbound_events
      WHERE status = 'pending' AND next_attempt_at <= now()
        AND (lease_until IS NULL OR lease_until < now())
      ORDER BY next_attempt_at
      LIMIT %(limit)s
      FOR NO KEY UPDATE SKIP LOCKED) p
WHERE i.id = p.id
RETURNING i.id, i.provider, i.event_key, i.livemode, i.event_type, i.body, i.attempts,
          i.received_at
"""

HEARTBEAT = """
UPDATE ops.webhook_inbound_events
SET lease_until = clock_timestamp() + %(lease)s * interval '1 second'
WHERE id = ANY(%(ids)s) AND lease_owner = %(worker)s AND status = 'pending'
"""

INSERT_ATTEMPT = """
INSERT INTO ops.webhook_inbound_attempts (event_id, attempt, worker, started_at, duration_ms,
    succeeded, outcome, error)
VALUES (%(event_id)s, %(attempt)s, %(worker)s, %(started_at)s, %(duration_ms)s, %(succeeded)s,
    %(outcome)s, %(error)s)
"""

FINISH = """
UPDATE ops.webhook_inbound_events
SET status = %(status)s,
    outcome = %(outcome)s,
    last_error = %(error)s,
    next_attempt_at = coalesce(%(next_at)s, next_attempt_at),
    processed_at = CASE WHEN %(status)s = 'processed' THEN clock_timestamp() END,
    lease_owner = NULL,
    lease_until = NULL
WHERE id = %(id)s AND status = 'pending' AND lease_owner = %(worker)s
RETURNING id
"""

DEAD_LETTER = """
INSERT INTO ops.webhook_dead_letters (direction, inbound_event_id, reason)
VALUES ('inbound', %(id)s, %(reason)s)
"""

# The newest event applied to one PSP object, locked for the rest of the transaction.
ENSURE_VERSION = """
INSERT INTO ops.webhook_psp_versions (psp, psp_id, event_at, event_key)
VALUES (%(psp)s, %(psp_id)s, 'epoch', '')
ON CONFLICT (psp, psp_id) DO NOTHING
"""
LOCK_VERSION = """
SELECT event_at, event_key FROM ops.webhook_psp_versions
WHERE psp = %(psp)s AND psp_id = %(psp_id)s FOR UPDATE
"""
SET_VERSION = """
UPDATE ops.webhook_psp_versions SET event_at = %(event_at)s, event_key = %(event_key)s
WHERE psp = %(psp)s AND psp_id = %(psp_id)s
"""

# The reconciliation feed. updated_at comes from the table's default and trigger (the
# database clock), so the KPI engine folds the change exactly.
UPSERT_PSP = """
INSERT INTO platform.psp_transactions (psp_id, psp, amount_cents, currency, status, livemode)
VALUES (%(psp_id)s, %(psp)s, %(amount_cents)s, %(currency)s, %(status)s, %(livemode)s)
ON CONFLICT (psp_id) DO UPDATE
SET amount_cents = EXCLUDED.amount_cents, currency = EXCLUDED.currency,
    status = EXCLUDED.status, livemode = EXCLUDED.livemode, received_at = now()
"""
