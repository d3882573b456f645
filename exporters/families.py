"""DESIGN.md's metric contract as data: every family opsdeck's exporter serves.

Names, types and label names are fixed (dashboards, alerts and outside checks depend on
them). Label values are bounded enums taken from settings; nothing here is an id, an email
or a raw path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.settings import ExporterSettings

Kind = Literal["counter", "gauge", "histogram"]
LIVEMODES = ("false", "true")
OUTCOMES = ("failed", "succeeded")
PAYMENT_EVENTS = ("charge.dispute.created", "charge.failed", "charge.refunded", "charge.succeeded")
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
RESULTS = ("failed", "ok")
OTHER = "other"
# ISO 4217's code for "no currency", where a row has none (never one of the currencies).
NO_CURRENCY = "XXX"


@dataclass(frozen=True)
class Family:
    """One metric family. Counter names end in ``_total``; histogram buckets are in the
    family's base unit (seconds)."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


def _f(
    name: str, kind: Kind, help_text: str, *labels: str, buckets: tuple[float, ...] = ()
) -> Family:
    return Family(name, kind, help_text, labels, buckets)


def kpi_families(settings: ExporterSettings) -> dict[str, Family]:
    """The contract's KPI families, by name."""
    families = [
        _f(
            "opsdeck_bookings_confirmed_total",
            "counter",
            "Bookings with confirmed_at set, counted at confirmed_at.",
        ),
        _f(
            "opsdeck_booked_revenue_cents_total",
            "counter",
            "amount_cents of confirmed bookings, in minor units of the currency.",
            "currency",
        ),
        _f(
            "opsdeck_site_sessions_total",
            "counter",
            "Site sessions started (conversion denominator).",
        ),
        _f(
            "opsdeck_booking_conflicts_total",
            "counter",
            "Confirmed bookings that overlap an earlier-confirmed booking of the same resource, "
            "counted once when confirmed.",
        ),
        _f(
            "opsdeck_bookings_unprocessed",
            "gauge",
            "Bookings still pending longer than the unprocessed threshold after creation.",
        ),
        _f(
            "opsdeck_payment_attempts_total",
            "counter",
            "Payment attempts that succeeded (captured) or failed.",
            "outcome",
            "failure_code",
            "livemode",
        ),
        _f(
            "opsdeck_psp_payment_attempts_total",
            "counter",
            "Payment attempts that succeeded (captured) or failed, by the PSP that handled them.",
            "psp",
            "outcome",
            "livemode",
        ),
        _f(
            "opsdeck_payment_volume_cents_total",
            "counter",
            "amount_cents of succeeded and failed payment attempts.",
            "outcome",
            "currency",
            "livemode",
        ),
        _f(
            "opsdeck_payment_events_total",
            "counter",
            "The live payment event feed.",
            "type",
            "livemode",
        ),
        _f(
            "opsdeck_refunds_cents_total",
            "counter",
            "Refunded amount in minor units.",
            "currency",
            "livemode",
        ),
        _f("opsdeck_chargebacks_total", "counter", "Chargebacks opened.", "livemode"),
        _f(
            "opsdeck_payment_retries_total",
            "counter",
            "Payment attempts with attempt > 1.",
            "livemode",
        ),
        _f(
            "opsdeck_payment_retries_recovered_total",
            "counter",
            "Payment attempts with attempt > 1 that succeeded.",
            "livemode",
        ),
        _f(
            "opsdeck_payment_reconciliation_drift_ratio",
            "gauge",
            "Sum of |internal - PSP amount| over sum of internal amounts, transactions created "
            "in the window (PSP 0 when missing), leaving out those with no PSP report yet "
            "younger than the reconciliation grace period (pending, not drift).",
            "window",
        ),
        _f(
            "opsdeck_payment_reconciliation_mismatches",
            "gauge",
            "Transactions created in the window whose PSP amount differs, or is missing past "
            "the reconciliation grace period.",
            "window",
        ),
        _f(
            "opsdeck_api_requests_total",
            "counter",
            "API requests from api_logs.",
            "route",
            "method",
            "status_class",
            "livemode",
        ),
        _f(
            "opsdeck_api_request_duration_seconds",
            "histogram",
            "API request duration from api_logs.duration_ms.",
            "route",
            buckets=settings.api_duration_buckets_seconds,
        ),
        _f("opsdeck_calendar_syncs_total", "counter", "Calendar sync runs.", "provider", "result"),
        _f(
            "opsdeck_service_up",
            "gauge",
            "1 if the latest health check of the service passed and is newer than the "
            "staleness threshold; a silent checker reads 0.",
            "service",
        ),
        _f(
            "opsdeck_service_last_check_timestamp_seconds",
            "gauge",
            "When the latest health check of the service ran (unix seconds, any result).",
            "service",
        ),
        _f(
            "opsdeck_service_checks_total", "counter", "Service health checks.", "service", "result"
        ),
        _f("opsdeck_support_tickets_open", "gauge", "Support tickets not resolved."),
        _f(
            "opsdeck_support_ticket_resolution_seconds",
            "histogram",
            "resolved_at - opened_at of resolved support tickets.",
            buckets=settings.resolution_buckets_seconds,
        ),
    ]
    return {f.name: f for f in families}


HEALTH_FAMILIES = {
    f.name: f
    for f in (
        _f(
            "opsdeck_collector_up",
            "gauge",
            "1 if the collector's last pass succeeded.",
            "collector",
        ),
        _f(
            "opsdeck_collector_duration_seconds",
            "gauge",
            "How long the collector's last pass took.",
            "collector",
        ),
        _f(
            "opsdeck_collector_lag_seconds",
            "gauge",
            "Age of the newest facts folded in: every event before now - lag is counted.",
            "collector",
        ),
        _f(
            "opsdeck_exporter_leader",
            "gauge",
            "1 on the replica that folds and serves the KPIs; 0 on a standby (it serves none).",
        ),
    )
}


def bounded(value: str, allowed: tuple[str, ...]) -> str:
    """A label value from a bounded set; anything else is "other"."""
    return value if value in allowed else OTHER
