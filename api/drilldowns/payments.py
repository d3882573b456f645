"""Payments explorer (seeds 003, 004): every attempt, searchable by charge/PSP id or
customer; the detail shows the intent's retry history, refunds, chargebacks, the PSP's own
record and the fraud score with its risk level and flags."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from api.drilldowns.spec import DetailView, Field, Filter, ListView, Rows, Section, Subject
from api.pii import PiiKind
from api.queries import payments as sql
from api.runtime import Runtime
from core.settings import ApiSettings

CUSTOMER = Subject("customer", "customer_id")
STATUSES = (
    "pending",
    "authorized",
    "captured",
    "failed",
    "refunded",
    "partially_refunded",
    "voided",
)
FRAUD_DECLINES = frozenset({"fraudulent", "lost_card", "stolen_card"})

PAYMENT_FIELDS = (
    Field("id", "Id", "integer", link="/payments/{id}"),
    Field("created_at", "Created", "date-time"),
    Field("status", "Status", show="badge"),
    Field("amount_cents", "Amount", "integer", currency="currency"),
    Field("currency", "Currency"),
    Field("psp", "PSP"),
    Field("psp_id", "Charge / PSP id", nullable=True),
    Field("payment_intent_id", "Payment intent"),
    Field("attempt", "Attempt", "integer"),
    Field("card_brand", "Card brand", nullable=True, show="card_brand"),
    Field("card_last4", "Card (last 4)", nullable=True),
    Field("card_country", "Card country", nullable=True),
    Field("failure_code", "Failure code", nullable=True),
    Field("fraud_score", "Fraud score", "integer", nullable=True),
    Field("livemode", "Live", "boolean"),
    Field("customer_id", "Customer", "integer"),
    Field("customer_name", "Customer name", pii=PiiKind.NAME),
    Field("customer_email", "Customer email", pii=PiiKind.EMAIL),
    Field("booking_id", "Booking", "integer", nullable=True),
    Field("captured_at", "Captured", "date-time", nullable=True),
)

PAYMENTS = ListView(
    name="payments",
    title="Payments",
    permission="payments.read",
    export_permission="payments.export",
    listing=sql.PAYMENTS,
    fields=PAYMENT_FIELDS,
    filters=(
        Filter("status", "payment status (repeatable)", choices=STATUSES, multiple=True),
        Filter(
            "q", "charge/PSP id, payment intent id, customer id or transaction id", max_length=100
        ),
        Filter("customer_id", "customer id", "integer", minimum=1),
        Filter("payment_intent_id", "payment intent id", max_length=100),
        Filter("attempt", "attempt number (2 and up are retries)", "integer", minimum=1),
        Filter("retried", "only retries (true) or only first attempts (false)", "boolean"),
        Filter("card_brand", "card brand, e.g. visa", max_length=30),
        Filter("failure_code", "failure code, e.g. card_declined", max_length=60),
        Filter("psp", "payment service provider", choices=("stripe", "paystack")),
        Filter("currency", "ISO currency code (repeatable)", max_length=3, multiple=True),
    ),
    sorts=("created_at", "amount_cents", "id"),
    livemode=True,
    subject=CUSTOMER,
    description="One row per payment attempt; retries of an intent share its id.",
)

RETRY_FIELDS = (
    Field("id", "Id", "integer", link="/payments/{id}"),
    Field("attempt", "Attempt", "integer"),
    Field("created_at", "Created", "date-time"),
    Field("status", "Status", show="badge"),
    Field("failure_code", "Failure code", nullable=True),
    Field("amount_cents", "Amount", "integer", currency="currency"),
    Field("currency", "Currency"),
    Field("card_brand", "Card brand", nullable=True, show="card_brand"),
    Field("card_last4", "Card (last 4)", nullable=True),
    Field("fraud_score", "Fraud score", "integer", nullable=True),
)
FRAUD_FIELDS = (
    Field("score", "Score", "integer", nullable=True),
    Field("risk_level", "Risk level", show="badge"),
    Field("flags", "Flags", "array"),
)


def risk_level(score: int | None, settings: ApiSettings) -> str:
    """Seed 004's bands: low below the medium score, high from the high score."""
    if score is None:
        return "unknown"
    if score >= settings.fraud_high_score:
        return "high"
    return "medium" if score >= settings.fraud_medium_score else "low"


def fraud_flags(
    payment: Mapping[str, Any],
    retries: Sequence[Mapping[str, Any]],
    pattern: tuple[Any, ...],
    settings: ApiSettings,
) -> list[str]:
    """Why the payment looks risky, from what the platform recorded around it."""
    flags = []
    score = payment["fraud_score"]
    if score is not None and score >= settings.fraud_high_score:
        flags.append(f"Fraud score {score} at or above {settings.fraud_high_score}")
    if payment["failure_code"] in FRAUD_DECLINES:
        flags.append(f"Declined as {payment['failure_code']}")
    failed = sum(1 for r in retries if r["status"] == "failed")
    if failed >= 2:
        flags.append(f"{failed} failed attempts on this payment intent")
    velocity, average, usual_country = pattern
    if velocity and velocity > settings.fraud_velocity_per_hour:
        flags.append(f"High transaction velocity: {velocity} payments by the customer in an hour")
    if average and payment["amount_cents"] > settings.fraud_amount_factor * float(average):
        flags.append(
            f"Amount {payment['amount_cents'] / float(average):.1f}x the customer's average"
        )
    country = payment["card_country"]
    if usual_country and country and country != usual_country:
        flags.append(f"Card country {country} differs from the customer's usual {usual_country}")
    return flags


async def load_payment(runtime: Runtime, payment_id: int) -> Mapping[str, Rows] | None:
    async with runtime.platform.connection() as conn:
        cursor = await conn.execute(sql.PAYMENT, {"id": payment_id})
        row = await cursor.fetchone()
        if row is None:
            return None
        names = [c.name for c in cursor.description or ()]
        payment = dict(zip(names, row, strict=True))
        history = await conn.execute(sql.RETRY_HISTORY, {"intent": payment["payment_intent_id"]})
        history_names = [c.name for c in history.description or ()]
        retries = await history.fetchall()
        refunds = await conn.execute(sql.REFUNDS, {"id": payment_id})
        refund_rows = await refunds.fetchall()
        chargebacks = await conn.execute(sql.CHARGEBACKS, {"id": payment_id})
        chargeback_rows = await chargebacks.fetchall()
        pattern_cursor = await conn.execute(
            sql.CUSTOMER_PATTERN,
            {"at": payment["created_at"], "id": payment_id, "customer": payment["customer_id"]},
        )
        pattern = await pattern_cursor.fetchone() or (0, None, None)
    retry_maps = [dict(zip(history_names, r, strict=True)) for r in retries]
    flags = fraud_flags(payment, retry_maps, tuple(pattern), runtime.api)
    score = payment["fraud_score"]
    return {
        "payment": (names, [row]),
        "fraud": (
            ["score", "risk_level", "flags"],
            [(score, risk_level(score, runtime.api), flags)],
        ),
        "retry_history": (history_names, retries),
        "refunds": (["id", "created_at", "amount_cents", "reason", "currency"], refund_rows),
        "chargebacks": (
            ["id", "created_at", "amount_cents", "reason", "status", "currency"],
            chargeback_rows,
        ),
    }


PAYMENT_DETAIL = DetailView(
    name="payment",
    title="Payment",
    permission="payments.read",
    path="/payments/{id}",
    key=Filter("id", "transaction id", "integer", minimum=1),
    sections=(
        Section(
            "payment",
            "Payment",
            (
                *PAYMENT_FIELDS,
                Field("customer_phone", "Customer phone", pii=PiiKind.PHONE, nullable=True),
                Field("failed_at", "Failed", "date-time", nullable=True),
                Field(
                    "psp_amount_cents", "PSP amount", "integer", nullable=True, currency="currency"
                ),
                Field("psp_status", "PSP status", nullable=True, show="badge"),
                Field("psp_received_at", "PSP reported", "date-time", nullable=True),
            ),
            subject=CUSTOMER,
        ),
        Section("fraud", "Fraud score", FRAUD_FIELDS),
        Section("retry_history", "Retry history of the payment intent", RETRY_FIELDS, many=True),
        Section(
            "refunds",
            "Refunds",
            (
                Field("id", "Id", "integer"),
                Field("created_at", "Created", "date-time"),
                Field("amount_cents", "Amount", "integer", currency="currency"),
                Field("reason", "Reason", nullable=True, pii=PiiKind.TEXT),
            ),
            many=True,
        ),
        Section(
            "chargebacks",
            "Chargebacks",
            (
                Field("id", "Id", "integer"),
                Field("created_at", "Opened", "date-time"),
                Field("amount_cents", "Amount", "integer", currency="currency"),
                Field("reason", "Reason", nullable=True),
                Field("status", "Status", show="badge"),
            ),
            many=True,
        ),
    ),
    load=load_payment,
    unmask=("customer", "payment", "customer_id"),
    mode=("payment", "livemode"),
)
