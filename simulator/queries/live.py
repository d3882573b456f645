"""SQL of the live stream. Event times are always the database's ``now()`` (the writing
transaction's start), which is what the KPI engine's exactness argument relies on."""

from __future__ import annotations

# Rows arrive as parallel arrays, one statement per table per batch.
# Ids are drawn first, so follow-ups know them; sequences hand them out in draw order, and
# concurrent writers commit them in any order.
NEXT_IDS = "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)"

# The platform's availability check: a slot already held by a pending or confirmed booking
# fails the new one at once.
INSERT_BOOKINGS = """
INSERT INTO platform.bookings (id, resource_id, customer_id, location_id, staff_id, start_at,
                               end_at, status, amount_cents, currency)
SELECT i, r, c, l, s, st, st + d * interval '1 minute',
       CASE WHEN EXISTS (
           SELECT FROM platform.bookings b
           WHERE b.resource_id = r AND b.status IN ('pending', 'confirmed')
             AND tstzrange(b.start_at, b.end_at) && tstzrange(st, st + d * interval '1 minute'))
       THEN 'failed' ELSE 'pending' END,
       a, cur
FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],
            %s::timestamptz[], %s::int[], %s::bigint[], %s::text[])
     AS u(i, r, c, l, s, st, d, a, cur)
RETURNING id, status
"""

INSERT_STUCK_BOOKINGS = """
INSERT INTO platform.bookings (resource_id, customer_id, location_id, staff_id, start_at,
                               end_at, status, amount_cents, currency, created_at)
SELECT r, c, l, s, st, st + interval '1 hour', 'pending', a, cur,
       now() - %s * interval '1 second'
FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::timestamptz[],
            %s::bigint[], %s::text[]) AS u(r, c, l, s, st, a, cur)
RETURNING id
"""

CONFIRM_BOOKINGS = """
UPDATE platform.bookings SET status = 'confirmed', confirmed_at = now()
WHERE id = ANY(%s) AND status = 'pending'
"""
CANCEL_BOOKINGS = """
UPDATE platform.bookings SET status = 'cancelled', cancelled_at = now()
WHERE id = ANY(%s) AND status IN ('pending', 'confirmed')
"""
FAIL_BOOKINGS = """
UPDATE platform.bookings SET status = 'failed' WHERE id = ANY(%s) AND status = 'pending'
"""

# A double booking: a new booking on the slot of an existing confirmed one.
INSERT_OVERLAPPING_BOOKINGS = """
INSERT INTO platform.bookings (resource_id, customer_id, location_id, staff_id, start_at,
                               end_at, status, amount_cents, currency, confirmed_at)
SELECT b.resource_id, b.customer_id, b.location_id, b.staff_id, b.start_at, b.end_at,
       'confirmed', b.amount_cents, b.currency, now()
FROM platform.bookings b
WHERE b.confirmed_at IS NOT NULL AND b.status = 'confirmed' AND b.start_at > now()
ORDER BY b.confirmed_at DESC
LIMIT %s
RETURNING id
"""

INSERT_ATTEMPTS = """
INSERT INTO platform.transactions (id, booking_id, customer_id, amount_cents, currency, status,
    failure_code, psp, psp_id, payment_intent_id, attempt, card_brand, card_last4,
    card_country, fraud_score, livemode, failed_at)
SELECT i, b, c, a, cur, st, fc, psp, pid, pi, att, brand, l4, cc, fs, lm,
       CASE WHEN st = 'failed' THEN now() END
FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::text[],
            %s::text[], %s::text[], %s::text[], %s::text[], %s::int[], %s::text[], %s::text[],
            %s::text[], %s::smallint[], %s::boolean[])
     AS u(i, b, c, a, cur, st, fc, psp, pid, pi, att, brand, l4, cc, fs, lm)
"""
CAPTURE = """
UPDATE platform.transactions SET status = 'captured', captured_at = now()
WHERE id = ANY(%s) AND status = 'authorized'
"""
VOID = """
UPDATE platform.transactions SET status = 'voided' WHERE id = ANY(%s) AND status = 'authorized'
"""

INSERT_REFUNDS = """
WITH r AS (
    INSERT INTO platform.refunds (transaction_id, amount_cents, reason)
    SELECT t, a, reason FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS u(t, a, reason)
    RETURNING transaction_id, amount_cents
)
UPDATE platform.transactions t
SET status = CASE WHEN r.amount_cents >= t.amount_cents THEN 'refunded'
                  ELSE 'partially_refunded' END
FROM r WHERE t.id = r.transaction_id AND t.captured_at IS NOT NULL
"""
INSERT_CHARGEBACKS = """
INSERT INTO platform.chargebacks (transaction_id, amount_cents, reason)
SELECT t, a, reason FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS u(t, a, reason)
"""
RECENT_CAPTURED = """
SELECT id, amount_cents FROM platform.transactions
WHERE captured_at > now() - interval '1 day' AND livemode
ORDER BY captured_at DESC LIMIT %s
"""

UPSERT_PSP = """
INSERT INTO platform.psp_transactions (psp_id, psp, amount_cents, currency, status, livemode)
SELECT pid, psp, a, cur, st, lm
FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::text[], %s::boolean[])
     AS u(pid, psp, a, cur, st, lm)
ON CONFLICT (psp_id) DO UPDATE
SET amount_cents = EXCLUDED.amount_cents, status = EXCLUDED.status, received_at = now()
"""
# Make the PSP's figure disagree with ours for the biggest recent charges.
SKEW_PSP_AMOUNTS = """
UPDATE platform.psp_transactions p SET amount_cents = p.amount_cents / 2, received_at = now()
FROM (SELECT t.psp_id FROM platform.transactions t
      JOIN platform.psp_transactions q USING (psp_id)
      WHERE t.created_at > now() - interval '23 hours' AND q.amount_cents = t.amount_cents
      ORDER BY t.amount_cents DESC LIMIT %s) s
WHERE p.psp_id = s.psp_id
RETURNING p.amount_cents
"""
# The 24 h volume and the drift the PSP's reports already show. A charge not reported yet
# is left out of the delta: within the reporting grace the exporter leaves it out as
# pending, so skewing until reported rows alone pass the target passes it whatever the grace.
RECONCILIATION_24H = """
SELECT coalesce(sum(t.amount_cents), 0),
       coalesce(sum(abs(t.amount_cents - p.amount_cents)), 0)
FROM platform.transactions t LEFT JOIN platform.psp_transactions p USING (psp_id)
WHERE t.created_at >= now() - interval '24 hours'
"""

INSERT_API_LOGS = """
INSERT INTO platform.api_logs (request_id, started_at, method, path, route, status_code,
    duration_ms, api_key_id, account_id, ip_address, livemode, api_version, idempotency_key,
    error_type, error_message, stack_trace, user_id, request_body, response_body)
SELECT rid, now() - d * interval '1 millisecond', m, p, r, sc, d, k, acct, ip, lm, v, idk,
       et, em, trace, usr, rb, resp
FROM unnest(%s::text[], %s::float8[], %s::text[], %s::text[], %s::text[], %s::smallint[],
            %s::text[], %s::text[], %s::inet[], %s::boolean[], %s::text[], %s::text[],
            %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
     AS u(rid, d, m, p, r, sc, k, acct, ip, lm, v, idk, et, em, trace, usr, rb, resp)
"""

INSERT_SESSIONS = """
INSERT INTO platform.site_sessions (started_at, customer_id)
SELECT now(), c FROM unnest(%s::bigint[]) AS u(c)
"""

INSERT_CALENDAR_SYNCS = """
INSERT INTO platform.calendar_syncs (provider, calendar_id, resource_id, started_at,
                                     finished_at, status, error)
SELECT p, cal, r, now() - d * interval '1 millisecond', now(), st, e
FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::float8[], %s::text[], %s::text[])
     AS u(p, cal, r, d, st, e)
"""

INSERT_SERVICE_CHECKS = """
INSERT INTO platform.service_checks (service, checked_at, ok, latency_ms)
SELECT s, now(), ok, l FROM unnest(%s::text[], %s::boolean[], %s::float8[]) AS u(s, ok, l)
"""

INSERT_TICKETS = """
INSERT INTO platform.support_tickets (id, customer_id, subject, priority, status, opened_at)
SELECT i, c, s, p, 'open', now() - age * interval '1 second'
FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::float8[])
     AS u(i, c, s, p, age)
"""
PEND_TICKETS = """
UPDATE platform.support_tickets SET status = 'pending' WHERE id = ANY(%s) AND status = 'open'
"""
RESOLVE_TICKETS = """
UPDATE platform.support_tickets SET status = 'resolved', resolved_at = now()
WHERE id = ANY(%s) AND status <> 'resolved'
"""
RESOLUTIONS = """
SELECT count(*), coalesce(sum(extract(epoch FROM resolved_at - opened_at)), 0)
FROM platform.support_tickets WHERE resolved_at >= now() - %s * interval '1 second'
"""

CONFIRMED_24H = """
SELECT count(*) FROM platform.bookings WHERE confirmed_at >= now() - interval '24 hours'
"""
CAPTURED_30D = """
SELECT count(*) FROM platform.transactions
WHERE captured_at >= now() - interval '30 days' AND livemode
"""
CHARGEBACKS_30D = """
SELECT count(*) FROM platform.chargebacks c JOIN platform.transactions t ON t.id = c.transaction_id
WHERE c.created_at >= now() - interval '30 days' AND t.livemode
"""
DIMENSIONS = """
SELECT (SELECT count(*) FROM platform.customers), (SELECT count(*) FROM platform.resources)
"""
RESOURCES = "SELECT id, location_id, staff_id FROM platform.resources ORDER BY id"
TAKEN_SLOTS = """
SELECT resource_id, start_at, end_at FROM platform.bookings
WHERE end_at > now() AND status IN ('pending', 'confirmed')
"""
LOCATION_CURRENCIES = """
SELECT l.id, coalesce(mode() WITHIN GROUP (ORDER BY b.currency), 'USD')
FROM platform.locations l LEFT JOIN platform.bookings b ON b.location_id = l.id
     AND b.id > (SELECT coalesce(max(id), 0) - 50000 FROM platform.bookings)
GROUP BY l.id ORDER BY l.id
"""

# The platform gives up on a booking left unpaid 8 minutes since it last changed. Bookings
# that `--inject stuck-bookings` backdates are new rows: no sweep cancels them before the
# stream has seen that processing is paused.
SWEEP_UNPAID_BOOKINGS = """
UPDATE platform.bookings SET status = 'cancelled', cancelled_at = now()
WHERE status = 'pending' AND created_at < now() - interval '8 minutes'
  AND updated_at < now() - interval '8 minutes'
RETURNING id
"""
# Charges of the last 15 minutes the PSP never reported (a stopped simulator's): the PSP
# catches up on them, as webhooks when the stream sends those, else straight into the table.
UNREPORTED_CHARGES = """
SELECT t.psp_id, t.psp, t.amount_cents, t.currency,
       CASE t.status WHEN 'failed' THEN 'failed' WHEN 'authorized' THEN 'requires_capture'
                     ELSE 'succeeded' END, t.livemode
FROM platform.transactions t
WHERE t.created_at > now() - interval '15 minutes' AND t.psp_id IS NOT NULL
  AND NOT EXISTS (SELECT FROM platform.psp_transactions p WHERE p.psp_id = t.psp_id)
"""
PSP_CATCH_UP = f"""
INSERT INTO platform.psp_transactions (psp_id, psp, amount_cents, currency, status, livemode)
{UNREPORTED_CHARGES}
ON CONFLICT (psp_id) DO NOTHING
"""
ACTIVE_ANOMALIES = """
SELECT kind, extract(epoch FROM until - now()) FROM ops.simulator_anomalies WHERE until > now()
"""
SET_ANOMALY = """
INSERT INTO ops.simulator_anomalies (kind, until) VALUES (%s, now() + %s * interval '1 second')
ON CONFLICT (kind) DO UPDATE SET until = EXCLUDED.until, created_at = now()
"""
END_ANOMALY = """
UPDATE ops.simulator_anomalies SET until = now() WHERE kind = %s AND until > now()
"""
