"""Bookings: the list with its filters, one booking, and its double bookings (another
booking of the same resource, both confirmed at some point, whose times overlap)."""

from __future__ import annotations

from api.queries.listing import Listing

# An overlapping booking of the same resource that was also confirmed at some point. The
# overlap is written as the KPI engine's GiST index on (resource_id, tstzrange(start_at,
# end_at)) has it, so each check is one index probe.
OVERLAP = (
    "o.resource_id = b.resource_id AND o.id <> b.id AND o.confirmed_at IS NOT NULL "
    "AND tstzrange(o.start_at, o.end_at) && tstzrange(b.start_at, b.end_at)"
)
BOOKING_COLUMNS = (
    "b.id, b.created_at, b.start_at, b.end_at, b.status, b.location_id, l.name AS location, "
    "b.staff_id, s.name AS staff, b.resource_id, r.name AS resource, b.customer_id, "
    "c.name AS customer_name, c.email AS customer_email, b.amount_cents, b.currency, "
    "b.confirmed_at, b.cancelled_at, "
    f"(b.confirmed_at IS NOT NULL AND EXISTS (SELECT FROM platform.bookings o WHERE {OVERLAP})) "
    "AS double_booked"
)
BOOKING_SOURCE = (
    "platform.bookings b JOIN platform.locations l ON l.id = b.location_id "
    "JOIN platform.resources r ON r.id = b.resource_id "
    "LEFT JOIN platform.staff s ON s.id = b.staff_id "
    "JOIN platform.customers c ON c.id = b.customer_id"
)

BOOKINGS = Listing(
    columns=BOOKING_COLUMNS,
    source=BOOKING_SOURCE,
    id_column="b.id",
    time_column="b.created_at",
    sorts={"created_at": "b.created_at", "start_at": "b.start_at", "id": "b.id"},
    time_columns={"start_at": "b.start_at"},
    conditions={
        "location_id": "b.location_id = %(location_id)s",
        "staff_id": "b.staff_id = %(staff_id)s",
        "resource_id": "b.resource_id = %(resource_id)s",
        "customer_id": "b.customer_id = %(customer_id)s",
        "status": "b.status = ANY(%(status)s)",
    },
    # Rare, and not indexable: answered by a bounded scan.
    post_conditions={"double_booked": "double_booked = %(double_booked)s"},
)

BOOKING = (
    f"SELECT {BOOKING_COLUMNS}, c.phone AS customer_phone, b.updated_at "
    f"FROM {BOOKING_SOURCE} WHERE b.id = %(id)s"
)
DOUBLE_BOOKINGS = (
    "SELECT o.id AS other_id, o.status AS other_status, o.customer_id, "
    "o.start_at AS other_start_at, o.end_at AS other_end_at, o.confirmed_at AS other_confirmed_at, "
    "greatest(o.start_at, b.start_at) AS overlap_start, least(o.end_at, b.end_at) AS overlap_end, "
    "extract(epoch FROM least(o.end_at, b.end_at) - greatest(o.start_at, b.start_at))::int / 60 "
    "AS overlap_minutes, "
    "CASE WHEN o.confirmed_at < b.confirmed_at THEN 'other' ELSE 'this' END AS confirmed_first, "
    "CASE WHEN b.status = 'confirmed' AND o.status = 'confirmed' THEN 'unresolved' "
    "ELSE 'resolved' END AS resolution "
    f"FROM platform.bookings b JOIN platform.bookings o ON {OVERLAP} "
    "WHERE b.id = %(id)s AND b.confirmed_at IS NOT NULL ORDER BY o.start_at, o.id"
)
