"""The platform's health checks (``platform.service_checks``), newest first; the index
``service_checks_latest`` (service, checked_at) answers a service's checks in a range."""

from __future__ import annotations

from api.queries.listing import Listing

SERVICE_CHECKS = Listing(
    columns="c.id, c.service, c.checked_at, c.ok, c.latency_ms",
    source="platform.service_checks c",
    id_column="c.id",
    time_column="c.checked_at",
    sorts={"checked_at": "c.checked_at", "id": "c.id"},
    conditions={
        "service": "c.service = %(service)s",
        "ok": "c.ok = %(ok)s",
    },
)
