"""Stuck bookings: bookings still ``pending`` longer than the unprocessed threshold after
they were made, exactly the rows ``opsdeck_bookings_unprocessed`` counts (the exporter's
condition, ``exporters/queries/bookings.py``, word for word)."""

from __future__ import annotations

from api.queries.bookings import BOOKING_SOURCE
from api.queries.listing import Listing

STUCK = "b.status = 'pending' AND b.created_at < now() - %(stuck_after)s * interval '1 second'"

STUCK_BOOKINGS = Listing(
    columns=(
        "b.id, b.created_at, "
        "extract(epoch FROM now() - b.created_at)::float8 AS pending_seconds, "
        "b.start_at, b.end_at, b.status, b.location_id, l.name AS location, b.staff_id, "
        "s.name AS staff, b.resource_id, r.name AS resource, b.customer_id, "
        "c.name AS customer_name, c.email AS customer_email, b.amount_cents, b.currency, "
        "b.updated_at"
    ),
    source=BOOKING_SOURCE,
    id_column="b.id",
    time_column="b.created_at",
    sorts={"created_at": "b.created_at", "id": "b.id"},
    conditions={
        # Always bound (from thresholds.unprocessed_after_seconds), never a request's filter.
        "stuck_after": STUCK,
        "location_id": "b.location_id = %(location_id)s",
        "resource_id": "b.resource_id = %(resource_id)s",
        "customer_id": "b.customer_id = %(customer_id)s",
    },
)
