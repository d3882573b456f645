"""opsdeck watching itself: its exporter, collectors and API."""

from __future__ import annotations

from alert_rules.alert import DURATION, PERCENT, Alert, pct
from dashboards import opsdeck_health

# opsdeck's own health: not business thresholds, so they live with their rules.
COLLECTOR_LAG_SECONDS = 900
OPSDECK_API_5XX_RATE = 0.05


def opsdeck_alerts() -> list[Alert]:
    me = opsdeck_health.UID
    api = "opsdeck_api_http_requests_total"
    return [
        Alert(
            "OpsdeckExporterDown",
            'up{job="opsdeck-exporter"} == 0',
            "5m",
            "high",
            "opsdeck",
            "Prometheus cannot scrape opsdeck's exporter",
            "{{ $labels.instance }} has not answered scrapes for 5 minutes (up = {value}); "
            "every KPI alert is blind meanwhile.",
            "{{ $value }}",
            "Restart the exporter; check its log and the database it reads.",
            me,
            "Scrape Targets Up",
            seed=False,
            inhibits=("OpsdeckCollectorFailing", "OpsdeckCollectorLagging"),
        ),
        Alert(
            "OpsdeckCollectorFailing",
            "opsdeck_collector_up == 0",
            "5m",
            "high",
            "opsdeck",
            "An opsdeck collector keeps failing",
            "Collector {{ $labels.collector }} has failed its passes for 5 minutes "
            "(up = {value}); its KPIs are frozen.",
            "{{ $value }}",
            "Read the exporter's log for the collector's error; check the platform database.",
            me,
            "Collectors Up",
            seed=False,
        ),
        Alert(
            "OpsdeckCollectorLagging",
            f"opsdeck_collector_lag_seconds > {COLLECTOR_LAG_SECONDS}",
            "15m",
            "medium",
            "opsdeck",
            "An opsdeck collector is falling behind",
            "Collector {{ $labels.collector }}'s newest fact is {value} old "
            f"(threshold {COLLECTOR_LAG_SECONDS // 60} min).",
            DURATION,
            "Check the collector's pass duration and the database load.",
            me,
            "Collector Lag",
            seed=False,
        ),
        Alert(
            "OpsdeckApiDown",
            'up{job="opsdeck-api"} == 0',
            "5m",
            "high",
            "opsdeck",
            "Prometheus cannot scrape opsdeck's API",
            "{{ $labels.instance }} has not answered scrapes for 5 minutes (up = {value}); "
            "drilldowns, actions and the alert receiver are down.",
            "{{ $value }}",
            "Restart the API; check its log.",
            me,
            "API Request Rate",
            seed=False,
        ),
        Alert(
            "OpsdeckApiErrorRateHigh",
            f'sum(rate({api}{{status_class="5xx"}}[5m])) / sum(rate({api}[5m])) '
            f"> {OPSDECK_API_5XX_RATE}",
            "10m",
            "medium",
            "opsdeck",
            f"opsdeck's API answers more than {pct(OPSDECK_API_5XX_RATE)} with 5xx",
            "{value} of opsdeck API requests in the last 5 minutes were 5xx "
            f"(threshold {pct(OPSDECK_API_5XX_RATE)}).",
            PERCENT,
            "Read the API's log for the failing route.",
            me,
            "API Errors",
            seed=False,
        ),
    ]
