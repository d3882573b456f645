"""Payments: attempts by outcome and PSP, volume, the event feed, refunds, chargebacks,
retries."""

from __future__ import annotations

from exporters.queries.labels import bounded

EARLIEST = """
SELECT least((SELECT min(created_at) FROM platform.transactions),
             (SELECT min(created_at) FROM platform.refunds),
             (SELECT min(created_at) FROM platform.chargebacks))
"""

SUCCEEDED = f"""
SELECT livemode, {bounded("currency", "currencies")}, {bounded("psp", "psps")}, count(*),
       coalesce(sum(amount_cents), 0), count(*) FILTER (WHERE attempt > 1)
FROM platform.transactions
WHERE captured_at >= %(since)s AND captured_at < %(until)s
GROUP BY 1, 2, 3
"""

FAILED = f"""
SELECT livemode, {bounded("failure_code", "failure_codes")}, {bounded("currency", "currencies")},
       {bounded("psp", "psps")}, count(*), coalesce(sum(amount_cents), 0)
FROM platform.transactions
WHERE failed_at >= %(since)s AND failed_at < %(until)s AND status = 'failed'
GROUP BY 1, 2, 3, 4
"""

RETRIES = """
SELECT livemode, count(*) FROM platform.transactions
WHERE created_at >= %(since)s AND created_at < %(until)s AND attempt > 1
GROUP BY 1
"""

REFUNDS = f"""
SELECT t.livemode, {bounded("t.currency", "currencies")}, count(*), coalesce(sum(r.amount_cents), 0)
FROM platform.refunds r JOIN platform.transactions t ON t.id = r.transaction_id
WHERE r.created_at >= %(since)s AND r.created_at < %(until)s
GROUP BY 1, 2
"""

CHARGEBACKS = """
SELECT t.livemode, count(*)
FROM platform.chargebacks c JOIN platform.transactions t ON t.id = c.transaction_id
WHERE c.created_at >= %(since)s AND c.created_at < %(until)s
GROUP BY 1
"""
