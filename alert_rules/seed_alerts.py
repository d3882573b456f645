"""Seed 001's alerts: every threshold it names.

Thresholds come from :class:`core.settings.Thresholds`, never from literals here, so the
rule files, the dashboards' colours, the runbooks and the simulator's injections agree.
"""

from __future__ import annotations

from alert_rules.alert import COUNT, DURATION, PERCENT, Alert, pct
from core import recording_rules as rec
from core.settings import Thresholds
from dashboards import command_center

# 5xx responses in the last 5 minutes: a ratio over a handful of requests is chance.
API_5XX_5M = 'sum(increase(opsdeck_api_requests_total{status_class="5xx"}[5m]))'


def service_down(service: str) -> str:
    """The exporter reads a service down when its latest check failed *or* is older than
    the staleness threshold (a checker that died with the service's host writes nothing).
    The value is the latest check's age, so the description can say which."""
    age = f'(time() - opsdeck_service_last_check_timestamp_seconds{{service="{service}"}})'
    return f'{age} and opsdeck_service_up{{service="{service}"}} == 0'


def service_down_description(t: Thresholds, name: str, down_seconds: float) -> str:
    """The description of :func:`service_down` for the service called ``name`` ("the booking
    API"): "Down" or "Silent" by the latest check's age, compared with a float literal
    because Go templates compare a float ``$value`` only with a float."""
    stale = float(t.service_check_stale_seconds)
    return (
        f"{{{{ if ge $value {stale!r} }}}}Silent: no health check of {name} has "
        f"arrived for {{value}} (checks older than {stale:g} s are stale); the checker, or "
        f"the host it runs on, is down.{{{{ else }}}}Down: {name}'s latest health check "
        f"failed, and its checks have failed for more than {down_seconds:g} s."
        "{{ end }}"
    )


def seed_alerts(t: Thresholds) -> list[Alert]:
    cc = command_center.UID
    return [
        Alert(
            "BookingConflictRateHigh",
            f"{rec.CONFLICT_RATE_24H} > {t.booking_conflict_rate}",
            "5m",
            "high",
            "bookings",
            f"Double bookings above {pct(t.booking_conflict_rate)} of confirmations over 24 h",
            "{value} of the bookings confirmed in the last 24 h overlap an earlier booking of "
            f"the same resource (threshold {pct(t.booking_conflict_rate)}).",
            PERCENT,
            "Investigate the booking locking mechanism; flip maintenance mode and notify "
            "partners if conflicts keep coming.",
            cc,
            "Booking Conflict Rate",
            ("acknowledge", "create-incident", "mute-1h", "notify-partners", "maintenance-on"),
            injection="double-booking",
        ),
        Alert(
            "ApiErrorRateHigh",
            f"{rec.API_5XX_RATIO} > {t.api_5xx_rate} and {API_5XX_5M} >= {t.api_5xx_min_errors}",
            "2m",
            "high",
            "platform",
            f"API 5xx responses above {pct(t.api_5xx_rate)} over 5 minutes",
            "{value} of API responses in the last 5 minutes were 5xx "
            f"(threshold {pct(t.api_5xx_rate)}, and at least {t.api_5xx_min_errors} of them).",
            PERCENT,
            "Page on-call and open an incident; find the failing routes in the API logs.",
            cc,
            "API 5xx Error Rate",
            injection="api-5xx-burst",
        ),
        Alert(
            "WebhookRetryQueueHigh",
            f"sum(opsdeck_webhook_queue_depth) > {t.webhook_queue_depth}",
            "5m",
            "medium",
            "platform",
            f"More than {t.webhook_queue_depth} webhooks waiting",
            "{value} webhooks are waiting to be processed or delivered "
            f"(threshold {t.webhook_queue_depth}).",
            COUNT,
            "Check the failing endpoints, then reprocess the dead-letter queue.",
            cc,
            "Webhook Queue Depth",
            ("acknowledge", "create-incident", "mute-1h", "reprocess-dead-letters"),
            injection="webhook-backlog",
        ),
        Alert(
            "PaymentReconciliationDriftHigh",
            'max(opsdeck_payment_reconciliation_drift_ratio{window="24h"}) > '
            f"{t.reconciliation_drift}",
            "5m",
            "high",
            "finance",
            f"Payment reconciliation drift above {pct(t.reconciliation_drift)} over 24 h",
            "PSP-reported amounts of settled charges differ from our ledger by {value} of the "
            "last 24 h's volume (a charge the PSP has not reported counts from "
            f"{t.reconciliation_grace_seconds:g} s after it was made; threshold "
            f"{pct(t.reconciliation_drift)}).",
            PERCENT,
            "Compare the PSP feed with the ledger, reprocess missing webhooks, open a finance "
            "ticket.",
            cc,
            "Payment Reconciliation Drift",
            ("acknowledge", "create-incident", "mute-1h", "open-finance-ticket", "notify-partners"),
            injection="psp-mismatch",
        ),
        Alert(
            "PaymentReconciliationDriftSuspendPayouts",
            'max(opsdeck_payment_reconciliation_drift_ratio{window="24h"}) > '
            f"{t.reconciliation_drift_suspend_payouts}",
            "5m",
            "high",
            "finance",
            "Payment reconciliation drift above "
            f"{pct(t.reconciliation_drift_suspend_payouts)}: suspend payouts",
            "PSP-reported amounts of settled charges differ from our ledger by {value} of the "
            "last 24 h's volume, above "
            f"{pct(t.reconciliation_drift_suspend_payouts)} (a charge the PSP has not reported "
            f"counts from {t.reconciliation_grace_seconds:g} s after it was made).",
            PERCENT,
            "Suspend payouts until the ledger and the PSP agree; open a finance ticket.",
            cc,
            "Payment Reconciliation Drift",
            (
                "acknowledge",
                "create-incident",
                "mute-1h",
                "suspend-payouts",
                "open-finance-ticket",
                "notify-partners",
            ),
            injection="psp-mismatch",
            inhibits=("PaymentReconciliationDriftHigh",),
        ),
        Alert(
            "ChargebackRateHigh",
            f"{rec.CHARGEBACK_RATE_30D} > {t.chargeback_rate}",
            "5m",
            "high",
            "finance",
            f"Chargebacks above {pct(t.chargeback_rate)} of live payments over 30 days",
            "Chargebacks are {value} of the live payments captured in the last 30 days "
            f"(threshold {pct(t.chargeback_rate)}).",
            PERCENT,
            "Tell finance; look for a fraud pattern (card country, BIN, fraud score).",
            cc,
            "Chargeback Rate",
            ("acknowledge", "create-incident", "mute-1h", "open-finance-ticket"),
            injection="chargeback-spike",
        ),
        Alert(
            "UnprocessedBookingsHigh",
            f"opsdeck_bookings_unprocessed > {t.unprocessed_bookings}",
            "5m",
            "medium",
            "bookings",
            f"More than {t.unprocessed_bookings} bookings stuck in pending",
            "{value} bookings are still pending more than "
            f"{t.unprocessed_after_seconds / 60:g} minutes after they were made "
            f"(threshold {t.unprocessed_bookings}).",
            COUNT,
            "Process the dead-letter queue; find what stopped the booking worker.",
            cc,
            "Stuck Bookings",
            ("acknowledge", "create-incident", "mute-1h", "reprocess-dead-letters"),
            injection="stuck-bookings",
        ),
        Alert(
            "BookingApiDown",
            service_down("booking_api"),
            f"{t.booking_api_down_seconds / 60:g}m",
            "critical",
            "platform",
            "Booking API down",
            service_down_description(t, "the booking API", t.booking_api_down_seconds),
            DURATION,
            "Page on-call, update the public status page, turn maintenance mode on.",
            cc,
            "Uptime",
            ("acknowledge", "create-incident", "mute-1h", "maintenance-on"),
            injection="service-down",
            inhibits=("ApiErrorRateHigh", "UnprocessedBookingsHigh"),
        ),
        Alert(
            "SupportTimeToResolveHigh",
            f"{rec.TIME_TO_RESOLVE_24H} > {t.support_time_to_resolve_seconds:g}",
            "5m",
            "medium",
            "support",
            "Support tickets take longer than the SLA to resolve",
            "Tickets resolved in the last 24 h took {value} on average "
            f"(SLA {t.support_time_to_resolve_seconds / 3600:g} h).",
            DURATION,
            "Tell the CS lead; look for a backlog by priority and an unstaffed queue.",
            cc,
            "Open Support Tickets",
            injection="slow-tickets",
        ),
    ]
