"""Platform events for partner webhooks, read by event time like the KPI engine reads them:
each through the index on its event-time column, for one window behind the commit horizon.
Payloads carry ids, amounts and states, never customers' personal data."""

from __future__ import annotations

EVENTS = """
SELECT 'booking.confirmed', 'booking.confirmed:' || b.id, b.confirmed_at,
       jsonb_build_object('id', b.id, 'resource_id', b.resource_id, 'location_id', b.location_id,
           'staff_id', b.staff_id, 'customer_id', b.customer_id, 'start_at', b.start_at,
           'end_at', b.end_at, 'amount_cents', b.amount_cents, 'currency', b.currency,
           'confirmed_at', b.confirmed_at)
FROM platform.bookings b
WHERE b.confirmed_at >= %(since)s AND b.confirmed_at < %(until)s
UNION ALL
SELECT 'payment.succeeded', 'payment.succeeded:' || t.id, t.captured_at,
       jsonb_build_object('id', t.id, 'booking_id', t.booking_id, 'amount_cents', t.amount_cents,
           'currency', t.currency, 'psp', t.psp, 'psp_id', t.psp_id,
           'payment_intent_id', t.payment_intent_id, 'attempt', t.attempt,
           'livemode', t.livemode, 'captured_at', t.captured_at)
FROM platform.transactions t
WHERE t.captured_at >= %(since)s AND t.captured_at < %(until)s
UNION ALL
SELECT 'payment.failed', 'payment.failed:' || t.id, t.failed_at,
       jsonb_build_object('id', t.id, 'booking_id', t.booking_id, 'amount_cents', t.amount_cents,
           'currency', t.currency, 'psp', t.psp, 'psp_id', t.psp_id,
           'payment_intent_id', t.payment_intent_id, 'attempt', t.attempt,
           'failure_code', t.failure_code, 'livemode', t.livemode, 'failed_at', t.failed_at)
FROM platform.transactions t
WHERE t.failed_at >= %(since)s AND t.failed_at < %(until)s AND t.status = 'failed'
UNION ALL
SELECT 'refund.created', 'refund.created:' || r.id, r.created_at,
       jsonb_build_object('id', r.id, 'transaction_id', r.transaction_id,
           'amount_cents', r.amount_cents, 'currency', t.currency, 'reason', r.reason,
           'livemode', t.livemode, 'created_at', r.created_at)
FROM platform.refunds r JOIN platform.transactions t ON t.id = r.transaction_id
WHERE r.created_at >= %(since)s AND r.created_at < %(until)s
UNION ALL
SELECT 'chargeback.created', 'chargeback.created:' || c.id, c.created_at,
       jsonb_build_object('id', c.id, 'transaction_id', c.transaction_id,
           'amount_cents', c.amount_cents, 'currency', t.currency, 'reason', c.reason,
           'status', c.status, 'livemode', t.livemode, 'created_at', c.created_at)
FROM platform.chargebacks c JOIN platform.transactions t ON t.id = c.transaction_id
WHERE c.created_at >= %(since)s AND c.created_at < %(until)s
ORDER BY 3
"""

SOURCE = "platform"
CURSOR = "SELECT horizon FROM ops.webhook_tail_cursor WHERE source = %(source)s"
START = """
INSERT INTO ops.webhook_tail_cursor (source, horizon) VALUES (%(source)s, %(horizon)s)
ON CONFLICT (source) DO NOTHING
"""
# One tailer at a time; the others skip the window instead of waiting for it.
LOCK = (
    "SELECT horizon FROM ops.webhook_tail_cursor WHERE source = %(source)s FOR UPDATE SKIP LOCKED"
)
ADVANCE = """
UPDATE ops.webhook_tail_cursor SET horizon = %(horizon)s, tailed_at = now()
WHERE source = %(source)s
"""
