"""Chargebacks (seeds 001, 003): the disputes behind the Chargeback Rate, filterable by
status, reason, PSP, currency and mode; the detail shows the chargeback, the payment it
disputes and the booking that payment paid for, the customer masked by role."""

from __future__ import annotations

from collections.abc import Mapping

from api.drilldowns.spec import DetailView, Field, Filter, ListView, Rows, Section, Subject
from api.pii import PiiKind
from api.queries import chargebacks as sql
from api.runtime import Runtime

CUSTOMER = Subject("customer", "customer_id")
STATUSES = ("needs_response", "under_review", "won", "lost")

CHARGEBACK_FIELDS = (
    Field("id", "Chargeback", "integer", link="/chargebacks/{id}"),
    Field("created_at", "Opened", "date-time"),
    Field("status", "Status", show="badge"),
    Field("reason", "Reason", nullable=True),
    Field("amount_cents", "Disputed", "integer", currency="currency"),
    Field("currency", "Currency"),
    Field("transaction_id", "Payment", "integer", link="/payments/{transaction_id}"),
    Field("psp", "PSP"),
    Field("psp_id", "Charge / PSP id", nullable=True),
    Field("livemode", "Live", "boolean"),
    Field("charge_amount_cents", "Charged", "integer", currency="currency"),
    Field("customer_id", "Customer", "integer"),
    Field("customer_name", "Customer name", pii=PiiKind.NAME),
    Field("customer_email", "Customer email", pii=PiiKind.EMAIL),
    Field("booking_id", "Booking", "integer", nullable=True, link="/bookings/{booking_id}"),
)

CHARGEBACKS = ListView(
    name="chargebacks",
    title="Chargebacks",
    permission="payments.read",
    export_permission="payments.export",
    listing=sql.CHARGEBACKS,
    fields=CHARGEBACK_FIELDS,
    filters=(
        Filter("status", "chargeback status (repeatable)", choices=STATUSES, multiple=True),
        Filter(
            "reason", "dispute reason, e.g. fraudulent (repeatable)", max_length=60, multiple=True
        ),
        Filter("psp", "payment service provider", choices=("stripe", "paystack")),
        Filter("currency", "ISO currency code (repeatable)", max_length=3, multiple=True),
        Filter("transaction_id", "disputed transaction id", "integer", minimum=1),
        Filter("customer_id", "customer id", "integer", minimum=1),
    ),
    sorts=("created_at", "id"),
    livemode=True,
    subject=CUSTOMER,
    default_from="now-30d",
    time_label="opened",
    description="One row per chargeback, opened in the range; the Chargeback Rate counts "
    "live ones against captured live payments over 30 days.",
)

PAYMENT_FIELDS = (
    Field("id", "Payment", "integer", link="/payments/{id}"),
    Field("created_at", "Created", "date-time"),
    Field("status", "Status", show="badge"),
    Field("amount_cents", "Amount", "integer", currency="currency"),
    Field("currency", "Currency"),
    Field("refunded_cents", "Refunded", "integer", currency="currency"),
    Field("psp", "PSP"),
    Field("psp_id", "Charge / PSP id", nullable=True),
    Field("payment_intent_id", "Payment intent"),
    Field("attempt", "Attempt", "integer"),
    Field("card_brand", "Card brand", nullable=True, show="card_brand"),
    Field("card_last4", "Card (last 4)", nullable=True),
    Field("card_country", "Card country", nullable=True),
    Field("fraud_score", "Fraud score", "integer", nullable=True),
    Field("livemode", "Live", "boolean"),
    Field("captured_at", "Captured", "date-time", nullable=True),
)
BOOKING_FIELDS = (
    Field("id", "Booking", "integer", link="/bookings/{id}"),
    Field("created_at", "Created", "date-time"),
    Field("start_at", "Starts", "date-time"),
    Field("end_at", "Ends", "date-time"),
    Field("status", "Status", show="badge"),
    Field("location", "Location"),
    Field("resource", "Resource"),
    Field("customer_id", "Customer", "integer"),
    Field("customer_name", "Customer name", pii=PiiKind.NAME),
    Field("customer_email", "Customer email", pii=PiiKind.EMAIL),
    Field("amount_cents", "Amount", "integer", currency="currency"),
    Field("currency", "Currency"),
)


async def load_chargeback(runtime: Runtime, chargeback_id: int) -> Mapping[str, Rows] | None:
    async with runtime.platform.connection() as conn:
        cursor = await conn.execute(sql.CHARGEBACK, {"id": chargeback_id})
        row = await cursor.fetchone()
        if row is None:
            return None
        names = [c.name for c in cursor.description or ()]
        found = dict(zip(names, row, strict=True))
        payment = await conn.execute(sql.PAYMENT, {"id": found["transaction_id"]})
        payment_names = [c.name for c in payment.description or ()]
        payment_rows = await payment.fetchall()
        booking_names, booking_rows = [f.name for f in BOOKING_FIELDS], []
        if found["booking_id"] is not None:
            booking = await conn.execute(sql.BOOKING, {"id": found["booking_id"]})
            booking_names = [c.name for c in booking.description or ()]
            booking_rows = await booking.fetchall()
    return {
        "chargeback": (names, [row]),
        "payment": (payment_names, payment_rows),
        "booking": (booking_names, booking_rows),
    }


CHARGEBACK_DETAIL = DetailView(
    name="chargeback",
    title="Chargeback",
    permission="payments.read",
    path="/chargebacks/{id}",
    key=Filter("id", "chargeback id", "integer", minimum=1),
    sections=(
        Section(
            "chargeback",
            "Chargeback",
            (
                *CHARGEBACK_FIELDS,
                Field("customer_phone", "Customer phone", pii=PiiKind.PHONE, nullable=True),
                Field("updated_at", "Last change", "date-time"),
            ),
            subject=CUSTOMER,
        ),
        Section("payment", "Disputed payment", PAYMENT_FIELDS),
        Section("booking", "Booking the payment was for", BOOKING_FIELDS, subject=CUSTOMER),
    ),
    load=load_chargeback,
    unmask=("customer", "chargeback", "customer_id"),
    mode=("chargeback", "livemode"),
)
