"""promtool unit tests for every alert, rendered to ``alert_rules/tests/alerts.test.yaml``.

Each case feeds synthetic series that break the alert's threshold from minute 0 and checks
that the alert is *not* firing one minute before its ``for`` has passed since the condition
first held (``onset``), and that it fires once ``for`` has passed (one evaluation later
for alerts on recorded series, whose group may run first) with its exact labels and
annotations, the live value rendered into the description.

The inputs here are hand-written facts about each alert; only the expected annotations
are taken from the rule definitions (what is tested is that Prometheus renders them),
except where a description's template branches: there the case writes out the text a
person must read. :data:`MORE_CASES` adds, for some alerts, the other branches and inputs
on which the alert must stay quiet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alert_rules.alert import Alert
from alert_rules.alerts import all_alerts
from alert_rules.rule_files import ALERTS_FILE, RECORDING_FILE, annotations_by_alert, labels
from core.settings import Settings

TEST_FILE = Path("alert_rules") / "tests" / "alerts.test.yaml"
API = 'route="/v1/bookings",method="POST",livemode="true"'
HOOK = 'opsdeck_api_http_requests_total{route="/hooks/alertmanager",method="POST"'
SUCCEEDED_LIVE = (
    'opsdeck_payment_attempts_total{outcome="succeeded",failure_code="none",livemode="true"}'
)


@dataclass(frozen=True)
class Case:
    series: dict[str, str]  # promtool input series → values notation (one sample a minute)
    value: str  # $value as the alert's description renders it
    onset: int = 0  # minutes until the condition first holds (rates need two samples)
    # Alerts on recorded series see them one evaluation late when their group happens to
    # run before the recording group (Prometheus runs groups independently).
    recorded: bool = False
    extra_labels: dict[str, str] = field(default_factory=dict)
    # The rendered description, for a template that branches (else the rule's own text
    # with ``value`` filled in).
    description: str | None = None
    fires: bool = True  # False: the alert must not fire on these series at all


BOOKING_API_UP = 'opsdeck_service_up{service="booking_api"}'
BOOKING_API_LAST_CHECK = 'opsdeck_service_last_check_timestamp_seconds{service="booking_api"}'


CASES: dict[str, Case] = {
    "BookingConflictRateHigh": Case(
        {
            "opsdeck_bookings_confirmed_total": "0+100x90",
            "opsdeck_booking_conflicts_total": "0+1x90",
        },
        "1%",
        onset=1,
        recorded=True,
    ),
    "ApiErrorRateHigh": Case(
        {
            f'opsdeck_api_requests_total{{{API},status_class="5xx"}}': "0+5x90",
            f'opsdeck_api_requests_total{{{API},status_class="2xx"}}': "0+95x90",
        },
        "5%",
        onset=1,
        recorded=True,
    ),
    "WebhookRetryQueueHigh": Case(
        {'opsdeck_webhook_queue_depth{direction="outbound"}': "120x90"}, "120"
    ),
    "PaymentReconciliationDriftHigh": Case(
        {'opsdeck_payment_reconciliation_drift_ratio{window="24h"}': "0.007x90"}, "0.7%"
    ),
    "PaymentReconciliationDriftSuspendPayouts": Case(
        {'opsdeck_payment_reconciliation_drift_ratio{window="24h"}': "0.02x90"}, "2%"
    ),
    "ChargebackRateHigh": Case(
        {
            'opsdeck_chargebacks_total{livemode="true"}': "0+10x90",
            SUCCEEDED_LIVE: "0+500x90",
        },
        "2%",
        onset=1,
        recorded=True,
    ),
    "UnprocessedBookingsHigh": Case({"opsdeck_bookings_unprocessed": "25x90"}, "25"),
    # Checks keep arriving (the latest one ran this very minute) and fail.
    "BookingApiDown": Case(
        {BOOKING_API_UP: "0x90", BOOKING_API_LAST_CHECK: "0+60x90"},
        "0s",
        extra_labels={"service": "booking_api"},
        description="Down: the booking API's latest health check failed, and its checks "
        "have failed for more than 60 s.",
    ),
    "SupportTimeToResolveHigh": Case(
        {
            "opsdeck_support_ticket_resolution_seconds_sum": "0+200000x90",
            "opsdeck_support_ticket_resolution_seconds_count": "0+1x90",
        },
        "2d 7h 33m 20s",
        onset=1,
        recorded=True,
    ),
    "OpsdeckExporterDown": Case(
        {'up{job="opsdeck-exporter",instance="exporter:9464"}': "0x90"},
        "0",
        extra_labels={"job": "opsdeck-exporter", "instance": "exporter:9464"},
    ),
    "OpsdeckCollectorFailing": Case(
        {'opsdeck_collector_up{collector="bookings"}': "0x90"},
        "0",
        extra_labels={"collector": "bookings"},
    ),
    "OpsdeckCollectorLagging": Case(
        {'opsdeck_collector_lag_seconds{collector="payments"}': "1800x90"},
        "30m 0s",
        extra_labels={"collector": "payments"},
    ),
    "OpsdeckApiDown": Case(
        {'up{job="opsdeck-api",instance="api:8000"}': "0x90"},
        "0",
        extra_labels={"job": "opsdeck-api", "instance": "api:8000"},
    ),
    "OpsdeckApiErrorRateHigh": Case(
        {
            f'{HOOK},status_class="5xx"}}': "0+10x90",
            f'{HOOK},status_class="2xx"}}': "0+90x90",
        },
        "10%",
        onset=1,
    ),
}


# Beyond the case that shows an alert firing: its other branches, and inputs that must
# leave it quiet. Group names are "<alert> (<key>)".
MORE_CASES: dict[str, dict[str, Case]] = {
    "BookingApiDown": {
        # The last check (minute 2) passed, then none came: the exporter reads the API down
        # once that check is older than the staleness threshold (minute 4).
        "silent": Case(
            {BOOKING_API_UP: "1x3 0x87", BOOKING_API_LAST_CHECK: "0+60x2 120x88"},
            "3m 0s",
            onset=4,
            extra_labels={"service": "booking_api"},
            description="Silent: no health check of the booking API has arrived for 3m 0s "
            "(checks older than 90 s are stale); the checker, or the host it runs on, is "
            "down.",
        ),
        "checks ok": Case(
            {BOOKING_API_UP: "1x90", BOOKING_API_LAST_CHECK: "0+60x90"},
            "0s",
            fires=False,
        ),
    },
}
QUIET_UNTIL = "90m"  # a case that must not fire is watched to the end of its series


def minutes(duration: str) -> int:
    match = re.fullmatch(r"(\d+)([mh])", duration)
    if not match:
        raise ValueError(f"unsupported for: {duration!r}")
    return int(match[1]) * (60 if match[2] == "h" else 1)


def _expected(alert: Alert, case: Case, notes: dict[str, str]) -> dict[str, Any]:
    description = case.description or alert.description.replace("{value}", case.value)
    for name, value in case.extra_labels.items():
        description = description.replace("{{ $labels." + name + " }}", value)
    expected = {**notes, "description": description}
    return {"exp_labels": {**labels(alert), **case.extra_labels}, "exp_annotations": expected}


def test_group(
    alert: Alert, case: Case, notes: dict[str, str], variant: str | None
) -> dict[str, Any]:
    fires_at = case.onset + minutes(alert.for_)
    late = 1 if case.recorded else 0
    after = [_expected(alert, case, notes)] if case.fires else []
    return {
        "name": alert.name if variant is None else f"{alert.name} ({variant})",
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in case.series.items()],
        "alert_rule_test": [
            {"alertname": alert.name, "eval_time": f"{fires_at - 1}m", "exp_alerts": []},
            {
                "alertname": alert.name,
                "eval_time": f"{fires_at + late}m" if case.fires else QUIET_UNTIL,
                "exp_alerts": after,
            },
        ],
    }


def test_file(settings: Settings) -> dict[str, Any]:
    notes = annotations_by_alert(settings)
    alerts = all_alerts(settings.thresholds)
    names = {a.name for a in alerts}
    missing = sorted(names - set(CASES))
    if missing:
        raise KeyError(f"alerts without a promtool case: {', '.join(missing)}")
    unknown = sorted(set(MORE_CASES) - names)
    if unknown:
        raise KeyError(f"promtool cases for unknown alerts: {', '.join(unknown)}")
    tests = []
    for alert in alerts:
        tests.append(test_group(alert, CASES[alert.name], notes[alert.name], None))
        for variant, case in MORE_CASES.get(alert.name, {}).items():
            tests.append(test_group(alert, case, notes[alert.name], variant))
    return {
        "rule_files": [f"../{RECORDING_FILE.name}", f"../{ALERTS_FILE.name}"],
        "evaluation_interval": "1m",
        "tests": tests,
    }
