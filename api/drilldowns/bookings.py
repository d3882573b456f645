"""Bookings (seed 001): search by date range, location, staff, resource and status; the
detail shows the booking and any double booking: both bookings, the overlap, whether it
is resolved (one of the two no longer confirmed)."""

from __future__ import annotations

from collections.abc import Mapping

from api.drilldowns.spec import DetailView, Field, Filter, ListView, Rows, Section, Subject
from api.pii import PiiKind
from api.queries import bookings as sql
from api.runtime import Runtime

CUSTOMER = Subject("customer", "customer_id")
STATUSES = ("pending", "confirmed", "cancelled", "failed")

BOOKING_FIELDS = (
    Field("id", "Id", "integer", link="/bookings/{id}"),
    Field("created_at", "Created", "date-time"),
    Field("start_at", "Starts", "date-time"),
    Field("end_at", "Ends", "date-time"),
    Field("status", "Status", show="badge"),
    Field("location_id", "Location id", "integer"),
    Field("location", "Location"),
    Field("staff_id", "Staff id", "integer", nullable=True),
    Field("staff", "Staff", nullable=True),
    Field("resource_id", "Resource id", "integer"),
    Field("resource", "Resource"),
    Field("customer_id", "Customer", "integer"),
    Field("customer_name", "Customer name", pii=PiiKind.NAME),
    Field("customer_email", "Customer email", pii=PiiKind.EMAIL),
    Field("amount_cents", "Amount", "integer", currency="currency"),
    Field("currency", "Currency"),
    Field("confirmed_at", "Confirmed", "date-time", nullable=True),
    Field("cancelled_at", "Cancelled", "date-time", nullable=True),
    Field("double_booked", "Double-booked", "boolean"),
)

BOOKINGS = ListView(
    name="bookings",
    title="Bookings",
    permission="bookings.read",
    export_permission="bookings.export",
    listing=sql.BOOKINGS,
    fields=BOOKING_FIELDS,
    filters=(
        Filter("location_id", "location id", "integer", minimum=1),
        Filter("staff_id", "staff member id", "integer", minimum=1),
        Filter("resource_id", "resource id", "integer", minimum=1),
        Filter("customer_id", "customer id", "integer", minimum=1),
        Filter("status", "booking status (repeatable)", choices=STATUSES, multiple=True),
        Filter("double_booked", "only double bookings (true) or none (false)", "boolean"),
    ),
    sorts=("created_at", "start_at", "id"),
    subject=CUSTOMER,
)

DOUBLE_BOOKING_FIELDS = (
    Field("other_id", "Other booking", "integer", link="/bookings/{other_id}"),
    Field("other_status", "Its status"),
    Field("customer_id", "Its customer", "integer"),
    Field("other_start_at", "Its start", "date-time"),
    Field("other_end_at", "Its end", "date-time"),
    Field("other_confirmed_at", "It was confirmed", "date-time", nullable=True),
    Field("overlap_start", "Overlap from", "date-time"),
    Field("overlap_end", "Overlap to", "date-time"),
    Field("overlap_minutes", "Overlap (min)", "integer"),
    Field("confirmed_first", "Confirmed first"),
    Field("resolution", "Resolution"),
)


async def load_booking(runtime: Runtime, booking_id: int) -> Mapping[str, Rows] | None:
    async with runtime.platform.connection() as conn:
        cursor = await conn.execute(sql.BOOKING, {"id": booking_id})
        row = await cursor.fetchone()
        if row is None:
            return None
        names = [c.name for c in cursor.description or ()]
        conflicts = await conn.execute(sql.DOUBLE_BOOKINGS, {"id": booking_id})
        conflict_names = [c.name for c in conflicts.description or ()]
        return {
            "booking": (names, [row]),
            "double_bookings": (conflict_names, await conflicts.fetchall()),
        }


BOOKING_DETAIL = DetailView(
    name="booking",
    title="Booking",
    permission="bookings.read",
    path="/bookings/{id}",
    key=Filter("id", "booking id", "integer", minimum=1),
    sections=(
        Section(
            "booking",
            "Booking",
            (
                *BOOKING_FIELDS,
                Field("customer_phone", "Customer phone", pii=PiiKind.PHONE, nullable=True),
            ),
            subject=CUSTOMER,
        ),
        Section(
            "double_bookings",
            "Double bookings (overlapping confirmed bookings of the resource)",
            DOUBLE_BOOKING_FIELDS,
            many=True,
        ),
    ),
    load=load_booking,
    unmask=("customer", "booking", "customer_id"),
)

# Grafana's "Recent Double-bookings" table links here: the same record, conflicts first.
DOUBLE_BOOKING_DETAIL = DetailView(
    name="double_booking",
    title="Double booking",
    permission="bookings.read",
    path="/double-bookings/{id}",
    key=BOOKING_DETAIL.key,
    sections=(BOOKING_DETAIL.sections[1], BOOKING_DETAIL.sections[0]),
    load=load_booking,
    unmask=BOOKING_DETAIL.unmask,
)
