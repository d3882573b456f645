"""Calendar sync failures per calendar (the Calendar Sync Failures chart's drilldown): which
calendars failed in the range, how often, the latest error, and whether each has synced
since; every row opens that calendar's failed syncs."""

from __future__ import annotations

from api.drilldowns.spec import Field, Filter, ListView
from api.pii import PiiKind
from api.queries import calendar_syncs as sql

PROVIDERS = ("google", "outlook", "ical")

CALENDAR_SYNC_FAILURES = ListView(
    name="calendar-sync-failures",
    title="Calendar sync failures per calendar",
    permission="operations.read",
    export_permission="operations.export",
    fields=(
        Field(
            "calendar_id",
            "Calendar",
            link="/calendar-syncs?result=failed&calendar_id={calendar_id}"
            "&from={range_from}&to={range_to}",
            pii=PiiKind.TEXT,
        ),
        Field("providers", "Providers", "array"),
        Field("resource_id", "Resource", "integer", nullable=True),
        Field("failures", "Failed syncs", "integer"),
        Field("first_failed_at", "First failure", "date-time"),
        Field("last_failed_at", "Latest failure", "date-time"),
        Field("last_error", "Latest error", nullable=True, pii=PiiKind.TEXT),
        Field("last_ok_at", "Latest good sync", "date-time", nullable=True),
        Field("recovered", "Synced since", "boolean"),
    ),
    filters=(
        Filter("provider", "calendar provider (repeatable)", choices=PROVIDERS, multiple=True),
        Filter("resource_id", "resource id", "integer", minimum=1),
        Filter("calendar_id", "calendar id", max_length=200),
    ),
    sorts=("last_failed_at",),
    time_label="started",
    description=(
        "Failed syncs started in the range, grouped by calendar; 'synced since' is whether "
        "the calendar's latest good sync is newer than its latest failure."
    ),
    page_sql=sql.page,
    export_sql=sql.export,
    key_types=("date-time", "string"),
)
