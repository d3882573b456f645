"""The customer-facing components of the status page, each judged from the health checks
of the services behind it (``platform.service_checks``), and the alerts whose incidents
open a public notice on it.

A component is ``operational`` when the latest check of each of its services passed and
is fresher than ``thresholds.service_check_stale_seconds``, ``major_outage`` when one of
those fresh checks failed, and ``unknown`` when a check is missing or stale: a checker
that stopped writing must not leave its last ``ok`` standing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from api.status.queries import status as sql

Conn = psycopg.AsyncConnection[Any]
OPERATIONAL, OUTAGE, UNKNOWN = "operational", "major_outage", "unknown"
STATE_LABELS = {OPERATIONAL: "Operational", OUTAGE: "Major outage", UNKNOWN: "Status unknown"}


@dataclass(frozen=True)
class Component:
    id: str
    name: str  # public
    services: tuple[str, ...]  # platform.service_checks.service
    notice_title: str  # public: the title of a notice opened on it


COMPONENTS = (
    Component(
        "booking_api",
        "Booking API",
        ("booking_api",),
        "Bookings may fail or be delayed",
    ),
    Component(
        "payments",
        "Payments",
        ("payment_webhook_handler",),
        "Payments may fail or be confirmed late",
    ),
    Component(
        "calendar_sync",
        "Calendar sync",
        ("calendar_sync",),
        "Calendars may be out of date",
    ),
)
BY_ID = {c.id: c for c in COMPONENTS}
# Alerts on a customer-facing component: their incidents open a public notice.
ALERT_COMPONENTS = {
    "BookingApiDown": "booking_api",
    "PaymentWebhookHandlerDown": "payments",
    "PspOutage": "payments",
    "CalendarSyncDown": "calendar_sync",
}


def _state(checks: list[tuple[bool, bool] | None]) -> str:
    if any(c is None or c[1] for c in checks):
        return UNKNOWN
    return OPERATIONAL if all(c is not None and c[0] for c in checks) else OUTAGE


async def states(conn: Conn, stale_seconds: float) -> list[dict[str, Any]]:
    """Each component's id, public name, state and the time of its latest check."""
    services = sorted({s for c in COMPONENTS for s in c.services})
    params = {"services": services, "stale_seconds": stale_seconds}
    rows = await (await conn.execute(sql.LATEST_CHECKS, params)).fetchall()
    latest = {r[0]: (bool(r[1]), r[2], bool(r[3])) for r in rows}
    found = []
    for component in COMPONENTS:
        checks = [latest.get(s) for s in component.services]
        state = _state([(c[0], c[2]) if c else None for c in checks])
        times = [c[1] for c in checks if c is not None]
        found.append(
            {
                "id": component.id,
                "name": component.name,
                "status": state,
                "checked_at": max(times) if times else None,
            }
        )
    return found
