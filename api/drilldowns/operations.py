"""Operations (seed 001's Command Center): calendar syncs with their errors, and support
tickets with their age, for the "Calendar syncs" and "Open tickets" links."""

from __future__ import annotations

from api.drilldowns.spec import Field, Filter, ListView
from api.pii import PiiKind
from api.queries import operations as sql

CALENDAR_SYNCS = ListView(
    name="calendar-syncs",
    title="Calendar syncs",
    permission="operations.read",
    export_permission="operations.export",
    listing=sql.CALENDAR_SYNCS,
    fields=(
        Field("id", "Sync", "integer"),
        Field("started_at", "Started", "date-time"),
        Field("finished_at", "Finished", "date-time", nullable=True),
        Field("provider", "Provider"),
        Field("calendar_id", "Calendar", pii=PiiKind.TEXT),
        Field("resource_id", "Resource", "integer", nullable=True),
        Field("result", "Result", show="badge"),
        Field("error", "Error", nullable=True, pii=PiiKind.TEXT),
        Field("duration_seconds", "Duration (s)", "number", nullable=True),
    ),
    filters=(
        Filter("result", "ok or failed", choices=("ok", "failed")),
        Filter(
            "provider",
            "calendar provider (repeatable)",
            choices=("google", "outlook", "ical"),
            multiple=True,
        ),
        Filter("resource_id", "resource id", "integer", minimum=1),
        Filter("calendar_id", "calendar id", max_length=200),
    ),
    sorts=("started_at", "id"),
    time_label="started",
)

SUPPORT_TICKETS = ListView(
    name="support-tickets",
    title="Support tickets",
    permission="operations.read",
    export_permission="operations.export",
    listing=sql.SUPPORT_TICKETS,
    fields=(
        Field("id", "Ticket", "integer"),
        Field("opened_at", "Opened", "date-time"),
        Field("resolved_at", "Resolved", "date-time", nullable=True),
        Field("status", "Status", show="badge"),
        Field("priority", "Priority", show="badge"),
        Field("subject", "Subject", pii=PiiKind.TEXT),
        Field("customer_id", "Customer", "integer", nullable=True),
        Field("age_seconds", "Age or time to resolve (s)", "number"),
    ),
    filters=(
        Filter(
            "status",
            "ticket status (repeatable)",
            choices=("open", "pending", "resolved"),
            multiple=True,
        ),
        Filter(
            "priority",
            "ticket priority (repeatable)",
            choices=("low", "normal", "high", "urgent"),
            multiple=True,
        ),
        Filter("customer_id", "customer id", "integer", minimum=1),
    ),
    sorts=("opened_at", "id"),
    default_from="now-7d",
    time_label="opened",
)
