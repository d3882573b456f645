"""Operational listings: calendar syncs and support tickets (the Command Center's
"Calendar syncs" and "Open tickets" links)."""

from __future__ import annotations

from api.queries.listing import Listing

CALENDAR_SYNCS = Listing(
    columns=(
        "c.id, c.started_at, c.finished_at, c.provider, c.calendar_id, c.resource_id, "
        "c.status AS result, c.error, "
        "extract(epoch FROM c.finished_at - c.started_at)::float8 AS duration_seconds"
    ),
    source="platform.calendar_syncs c",
    id_column="c.id",
    time_column="c.started_at",
    sorts={"started_at": "c.started_at", "id": "c.id"},
    conditions={
        "result": "c.status = %(result)s",
        "provider": "c.provider = ANY(%(provider)s)",
        "resource_id": "c.resource_id = %(resource_id)s",
        "calendar_id": "c.calendar_id = %(calendar_id)s",
    },
)

SUPPORT_TICKETS = Listing(
    columns=(
        "t.id, t.opened_at, t.resolved_at, t.status, t.priority, t.subject, t.customer_id, "
        "extract(epoch FROM coalesce(t.resolved_at, now()) - t.opened_at)::float8 "
        "AS age_seconds"
    ),
    source="platform.support_tickets t",
    id_column="t.id",
    time_column="t.opened_at",
    sorts={"opened_at": "t.opened_at", "id": "t.id"},
    conditions={
        "status": "t.status = ANY(%(status)s)",
        "priority": "t.priority = ANY(%(priority)s)",
        "customer_id": "t.customer_id = %(customer_id)s",
    },
)
