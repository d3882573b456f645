"""Stuck bookings (seed 001's "Unprocessed bookings"): the bookings the Stuck Bookings tile
counts, still pending longer than ``thresholds.unprocessed_after_seconds`` after they were
made, oldest booking the queue forgot included (the range starts at the epoch)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.drilldowns.bookings import CUSTOMER
from api.drilldowns.spec import Field, Filter, ListView
from api.pii import PiiKind
from api.queries import stuck_bookings as sql
from core.settings import Settings


def _threshold(settings: Settings) -> Mapping[str, Any]:
    return {"stuck_after": settings.thresholds.unprocessed_after_seconds}


STUCK_BOOKINGS = ListView(
    name="stuck-bookings",
    title="Stuck bookings",
    permission="bookings.read",
    export_permission="bookings.export",
    listing=sql.STUCK_BOOKINGS,
    fields=(
        Field("id", "Id", "integer", link="/bookings/{id}"),
        Field("created_at", "Created", "date-time"),
        Field("pending_seconds", "Pending for (s)", "number"),
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
        Field("updated_at", "Last change", "date-time"),
    ),
    filters=(
        Filter("location_id", "location id", "integer", minimum=1),
        Filter("resource_id", "resource id", "integer", minimum=1),
        Filter("customer_id", "customer id", "integer", minimum=1),
    ),
    sorts=("created_at", "id"),
    default_from="1970-01-01T00:00:00Z",
    subject=CUSTOMER,
    description=(
        "Bookings still pending longer than the unprocessed threshold after they were made: "
        "the rows opsdeck_bookings_unprocessed counts."
    ),
    settled=_threshold,
)
