"""Payments explorer: transactions (one row per attempt), their intents' retry history,
refunds, chargebacks, the PSP's record, and what the fraud flags are computed from."""

from __future__ import annotations

from api.queries.listing import Listing

PAYMENT_COLUMNS = (
    "t.id, t.created_at, t.status, t.amount_cents, t.currency, t.psp, t.psp_id, "
    "t.payment_intent_id, t.attempt, t.card_brand, t.card_last4, t.card_country, "
    "t.failure_code, t.fraud_score, t.livemode, t.customer_id, c.name AS customer_name, "
    "c.email AS customer_email, t.booking_id, t.captured_at"
)
PAYMENT_SOURCE = "platform.transactions t JOIN platform.customers c ON c.id = t.customer_id"

PAYMENTS = Listing(
    columns=PAYMENT_COLUMNS,
    source=PAYMENT_SOURCE,
    id_column="t.id",
    time_column="t.created_at",
    sorts={"created_at": "t.created_at", "amount_cents": "t.amount_cents", "id": "t.id"},
    conditions={
        "status": "t.status = ANY(%(status)s)",
        # Charge/PSP id, intent id, or (digits) a customer or transaction id. The CASE folds
        # to a constant at planning, so each arm can use its own index.
        "q": (
            "(t.psp_id = %(q)s OR t.payment_intent_id = %(q)s "
            "OR t.customer_id = (CASE WHEN %(q)s ~ '^[0-9]{1,18}$' THEN %(q)s::bigint END) "
            "OR t.id = (CASE WHEN %(q)s ~ '^[0-9]{1,18}$' THEN %(q)s::bigint END))"
        ),
        "customer_id": "t.customer_id = %(customer_id)s",
        "payment_intent_id": "t.payment_intent_id = %(payment_intent_id)s",
        "attempt": "t.attempt = %(attempt)s",
        # Folds to one arm at planning, so retries use the partial (attempt > 1) index.
        "retried": "CASE WHEN %(retried)s THEN t.attempt > 1 ELSE t.attempt = 1 END",
        "card_brand": "t.card_brand = %(card_brand)s",
        "failure_code": "t.failure_code = %(failure_code)s",
        "psp": "t.psp = %(psp)s",
        "currency": "t.currency = ANY(%(currency)s)",
        "livemode": "t.livemode = %(livemode)s",
    },
)

PAYMENT = (
    f"SELECT {PAYMENT_COLUMNS}, c.phone AS customer_phone, t.updated_at, t.failed_at, "
    "p.amount_cents AS psp_amount_cents, p.status AS psp_status, p.received_at AS psp_received_at "
    f"FROM {PAYMENT_SOURCE} LEFT JOIN platform.psp_transactions p ON p.psp_id = t.psp_id "
    "WHERE t.id = %(id)s"
)
RETRY_HISTORY = (
    "SELECT t.id, t.attempt, t.created_at, t.status, t.failure_code, t.amount_cents, t.currency, "
    "t.card_brand, t.card_last4, t.fraud_score, t.customer_id FROM platform.transactions t "
    "WHERE t.payment_intent_id = %(intent)s ORDER BY t.attempt, t.created_at, t.id"
)
# Refunds and chargebacks are in their payment's currency.
REFUNDS = (
    "SELECT r.id, r.created_at, r.amount_cents, r.reason, t.currency FROM platform.refunds r "
    "JOIN platform.transactions t ON t.id = r.transaction_id "
    "WHERE r.transaction_id = %(id)s ORDER BY r.created_at, r.id"
)
CHARGEBACKS = (
    "SELECT cb.id, cb.created_at, cb.amount_cents, cb.reason, cb.status, t.currency "
    "FROM platform.chargebacks cb JOIN platform.transactions t ON t.id = cb.transaction_id "
    "WHERE cb.transaction_id = %(id)s ORDER BY cb.created_at, cb.id"
)
# The customer's other payments around this one: velocity, usual amount, usual card country.
CUSTOMER_PATTERN = (
    "SELECT count(*) FILTER (WHERE t.created_at BETWEEN %(at)s - interval '1 hour' AND %(at)s), "
    "avg(t.amount_cents) FILTER (WHERE t.id <> %(id)s), "
    "mode() WITHIN GROUP (ORDER BY t.card_country) FILTER (WHERE t.id <> %(id)s) "
    "FROM platform.transactions t WHERE t.customer_id = %(customer)s "
    "AND t.created_at >= %(at)s - interval '90 days' AND t.created_at <= %(at)s"
)
