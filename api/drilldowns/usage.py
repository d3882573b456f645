"""Usage report (seed 000): API calls per account, key and route, per day or month, from
the roll-up of the platform's API logs (kept beyond the logs' 30-day retention)."""

from __future__ import annotations

from api.drilldowns.spec import Field, Filter, ListView
from api.queries import usage as sql

USAGE = ListView(
    name="usage",
    title="API usage",
    permission="usage.read",
    export_permission="usage.export",
    fields=(
        Field("period", "Period", "date"),
        Field("account_id", "Account", nullable=True),
        Field("api_key_id", "API key", nullable=True),
        Field("route", "Route", nullable=True),
        Field("calls", "Calls", "integer"),
        Field("client_errors", "4xx", "integer"),
        Field("server_errors", "5xx", "integer"),
        Field("avg_duration_ms", "Avg ms", "number", nullable=True),
    ),
    filters=(
        Filter("period", "day (default) or month", choices=("day", "month")),
        Filter(
            "group",
            "down to: account, key, or route (default)",
            choices=("account", "key", "route"),
        ),
        Filter("account_id", "account id", max_length=100),
        Filter("api_key_id", "API key id", max_length=100),
        Filter("route", "route template, e.g. /v1/bookings/{id}", max_length=200),
    ),
    sorts=("period",),
    database="ops",
    default_from="now-30d/d",
    livemode=True,
    time_label="period",
    description="Calls per period; rolled up from the API logs a few seconds behind real time.",
    page_sql=sql.page,
    export_sql=sql.export,
    key_types=("date", "string", "string", "string"),
)
