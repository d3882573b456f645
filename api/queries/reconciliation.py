"""Reconciliation: what the PSP reported against what the platform recorded, per
transaction (seed 001's drift query, row by row); the refund log; payouts and holds."""

from __future__ import annotations

from api.queries.listing import Listing

LEDGER = Listing(
    columns=(
        "t.id, t.created_at, t.psp, t.psp_id, t.currency, t.livemode, t.status, "
        "t.amount_cents AS internal_amount_cents, p.amount_cents AS psp_amount_cents, "
        "p.status AS psp_status, p.received_at AS psp_received_at, "
        "t.amount_cents - coalesce(p.amount_cents, 0) AS delta_cents, "
        "CASE WHEN p.psp_id IS NULL THEN 'missing' "
        "WHEN p.amount_cents <> t.amount_cents THEN 'mismatch' ELSE 'matched' END AS reconciliation"
    ),
    source="platform.transactions t LEFT JOIN platform.psp_transactions p ON p.psp_id = t.psp_id",
    id_column="t.id",
    time_column="t.created_at",
    sorts={"created_at": "t.created_at", "id": "t.id"},
    conditions={
        "psp": "t.psp = %(psp)s",
        "currency": "t.currency = ANY(%(currency)s)",
        "livemode": "t.livemode = %(livemode)s",
    },
    # A comparison across two tables no index answers: a bounded scan per page.
    post_conditions={"reconciliation": "reconciliation = ANY(%(reconciliation)s)"},
)

REFUNDS = Listing(
    columns=(
        "r.id, r.created_at, r.transaction_id, r.amount_cents, t.currency, r.reason, t.psp, "
        "t.psp_id, t.livemode, t.customer_id, t.amount_cents AS charge_amount_cents"
    ),
    source="platform.refunds r JOIN platform.transactions t ON t.id = r.transaction_id",
    id_column="r.id",
    time_column="r.created_at",
    sorts={"created_at": "r.created_at", "id": "r.id"},
    conditions={
        "reason": "r.reason = %(reason)s",
        "currency": "t.currency = ANY(%(currency)s)",
        "transaction_id": "r.transaction_id = %(transaction_id)s",
        "livemode": "t.livemode = %(livemode)s",
    },
)

PAYOUTS = Listing(
    columns=(
        "p.id, p.scheduled_for, p.paid_at, p.status, p.amount_cents, p.currency, p.hold_reason"
    ),
    source="platform.payouts p",
    id_column="p.id",
    time_column="p.scheduled_for",
    sorts={"scheduled_for": "p.scheduled_for", "id": "p.id"},
    conditions={
        "status": "p.status = ANY(%(status)s)",
        "currency": "p.currency = ANY(%(currency)s)",
    },
)
