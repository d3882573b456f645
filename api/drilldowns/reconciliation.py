"""Reconciliation (seeds 001, 003, 004): PSP against internal records per transaction for a
window, with the delta and a status; the refund log; payouts with their dates and holds."""

from __future__ import annotations

from api.drilldowns.spec import Field, Filter, ListView, Subject
from api.pii import PiiKind
from api.queries import reconciliation as sql

CURRENCY = Filter("currency", "ISO currency code (repeatable)", max_length=3, multiple=True)

LEDGER = ListView(
    name="reconciliation",
    title="Reconciliation",
    permission="reconciliation.read",
    export_permission="reconciliation.export",
    listing=sql.LEDGER,
    fields=(
        Field("id", "Transaction", "integer", link="/payments/{id}"),
        Field("created_at", "Created", "date-time"),
        Field("psp", "PSP"),
        Field("psp_id", "PSP id", nullable=True),
        Field("currency", "Currency"),
        Field("livemode", "Live", "boolean"),
        Field("status", "Internal status", show="badge"),
        Field("internal_amount_cents", "Internal amount", "integer", currency="currency"),
        Field("psp_amount_cents", "PSP amount", "integer", nullable=True, currency="currency"),
        Field("psp_status", "PSP status", nullable=True, show="badge"),
        Field("psp_received_at", "PSP reported", "date-time", nullable=True),
        Field("delta_cents", "Delta", "integer", currency="currency"),
        Field("reconciliation", "Reconciliation"),
    ),
    filters=(
        Filter(
            "reconciliation",
            "matched, mismatch (amounts differ) or missing (no PSP record)",
            choices=("matched", "mismatch", "missing"),
            multiple=True,
        ),
        Filter("psp", "payment service provider", choices=("stripe", "paystack")),
        CURRENCY,
    ),
    sorts=("created_at", "id"),
    livemode=True,
    description=(
        "Delta = internal amount − PSP amount (the whole amount when the PSP has no record)."
    ),
)

REFUNDS = ListView(
    name="refunds",
    title="Refund log",
    permission="reconciliation.read",
    export_permission="reconciliation.export",
    listing=sql.REFUNDS,
    fields=(
        Field("id", "Refund", "integer"),
        Field("created_at", "Created", "date-time"),
        Field("transaction_id", "Transaction", "integer", link="/payments/{transaction_id}"),
        Field("amount_cents", "Refunded", "integer", currency="currency"),
        Field("currency", "Currency"),
        Field("reason", "Reason", nullable=True, pii=PiiKind.TEXT),
        Field("psp", "PSP"),
        Field("psp_id", "PSP id", nullable=True),
        Field("livemode", "Live", "boolean"),
        Field("customer_id", "Customer", "integer"),
        Field("charge_amount_cents", "Charged", "integer", currency="currency"),
    ),
    filters=(
        Filter("reason", "refund reason", max_length=60),
        Filter("transaction_id", "transaction id", "integer", minimum=1),
        CURRENCY,
    ),
    sorts=("created_at", "id"),
    livemode=True,
    subject=Subject("customer", "customer_id"),
    default_from="now-7d",
)

PAYOUTS = ListView(
    name="payouts",
    title="Payouts",
    permission="reconciliation.read",
    export_permission="reconciliation.export",
    listing=sql.PAYOUTS,
    fields=(
        Field("id", "Payout", "integer"),
        Field("scheduled_for", "Scheduled for", "date-time"),
        Field("paid_at", "Paid", "date-time", nullable=True),
        Field("status", "Status", show="badge"),
        Field("amount_cents", "Amount", "integer", currency="currency"),
        Field("currency", "Currency"),
        Field("hold_reason", "Hold reason", nullable=True),
    ),
    filters=(
        Filter(
            "status",
            "payout status (repeatable)",
            choices=("scheduled", "paid", "held", "failed"),
            multiple=True,
        ),
        CURRENCY,
    ),
    sorts=("scheduled_for", "id"),
    default_from="now-7d",
    default_to="now+3d",
    time_label="scheduled",
    description=(
        "Payouts move live money only; scheduled ones lie ahead, so the default range runs "
        "3 days into the future."
    ),
)
