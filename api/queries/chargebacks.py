"""Chargebacks: each dispute with the payment it disputes (currency, PSP, mode and customer
come from the transaction), and one chargeback with its payment and booking."""

from __future__ import annotations

from api.queries.listing import Listing

CHARGEBACK_COLUMNS = (
    "cb.id, cb.created_at, cb.status, cb.reason, cb.amount_cents, t.currency, "
    "cb.transaction_id, t.psp, t.psp_id, t.livemode, t.amount_cents AS charge_amount_cents, "
    "t.customer_id, c.name AS customer_name, c.email AS customer_email, t.booking_id"
)
CHARGEBACK_SOURCE = (
    "platform.chargebacks cb JOIN platform.transactions t ON t.id = cb.transaction_id "
    "JOIN platform.customers c ON c.id = t.customer_id"
)

CHARGEBACKS = Listing(
    columns=CHARGEBACK_COLUMNS,
    source=CHARGEBACK_SOURCE,
    id_column="cb.id",
    time_column="cb.created_at",
    sorts={"created_at": "cb.created_at", "id": "cb.id"},
    conditions={
        "status": "cb.status = ANY(%(status)s)",
        "reason": "cb.reason = ANY(%(reason)s)",
        "transaction_id": "cb.transaction_id = %(transaction_id)s",
        "customer_id": "t.customer_id = %(customer_id)s",
        "psp": "t.psp = %(psp)s",
        "currency": "t.currency = ANY(%(currency)s)",
        "livemode": "t.livemode = %(livemode)s",
    },
)

CHARGEBACK = (
    f"SELECT {CHARGEBACK_COLUMNS}, c.phone AS customer_phone, cb.updated_at "
    f"FROM {CHARGEBACK_SOURCE} WHERE cb.id = %(id)s"
)
PAYMENT = (
    "SELECT t.id, t.created_at, t.status, t.amount_cents, t.currency, t.psp, t.psp_id, "
    "t.payment_intent_id, t.attempt, t.card_brand, t.card_last4, t.card_country, "
    "t.fraud_score, t.livemode, t.captured_at, "
    "(SELECT coalesce(sum(r.amount_cents), 0) FROM platform.refunds r "
    "WHERE r.transaction_id = t.id)::bigint AS refunded_cents "
    "FROM platform.transactions t WHERE t.id = %(id)s"
)
BOOKING = (
    "SELECT b.id, b.created_at, b.start_at, b.end_at, b.status, b.location_id, "
    "l.name AS location, b.resource_id, r.name AS resource, b.customer_id, "
    "c.name AS customer_name, c.email AS customer_email, b.amount_cents, b.currency "
    "FROM platform.bookings b "
    "JOIN platform.locations l ON l.id = b.location_id "
    "JOIN platform.resources r ON r.id = b.resource_id "
    "JOIN platform.customers c ON c.id = b.customer_id WHERE b.id = %(id)s"
)
