"""Service checks (seed 001's uptime tiles): every health check of the booking API, the
payment webhook handler and calendar sync. A service whose newest check is older than
``thresholds.service_check_stale_seconds`` is stale: the home page links here to it."""

from __future__ import annotations

from api.drilldowns.spec import Field, Filter, ListView
from api.queries import service_checks as sql

SERVICES = ("booking_api", "payment_webhook_handler", "calendar_sync")

SERVICE_CHECKS = ListView(
    name="service-checks",
    title="Service checks",
    permission="operations.read",
    export_permission="operations.export",
    listing=sql.SERVICE_CHECKS,
    fields=(
        Field("id", "Check", "integer"),
        Field("service", "Service"),
        Field("checked_at", "Checked", "date-time"),
        Field("ok", "Passed", "boolean"),
        Field("latency_ms", "Latency (ms)", "number", nullable=True),
    ),
    filters=(
        Filter("service", "the service checked", choices=SERVICES),
        Filter("ok", "true: passed; false: failed", "boolean"),
    ),
    sorts=("checked_at", "id"),
    default_from="now-1h",
    time_label="checked",
    description="Health checks of the platform's services, newest first.",
)
