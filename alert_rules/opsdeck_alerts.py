"""opsdeck watching itself: its exporter, collectors, worker and API, the alerting path
(Alertmanager's deliveries), and the Watchdog that proves the path end to end."""

from __future__ import annotations

from alert_rules.alert import DURATION, PERCENT, Alert, pct
from dashboards import opsdeck_health

# opsdeck's own health: not business thresholds, so they live with their rules.
COLLECTOR_LAG_SECONDS = 900
OPSDECK_API_5XX_RATE = 0.05
NOTIFICATION_FAILURE_RATE = 0.01  # kube-prometheus's AlertmanagerFailedToSendAlerts
EXPORTER, WORKER, API = "opsdeck-exporter", "opsdeck-worker", "opsdeck-api"
WATCHDOG = "Watchdog"
ME = opsdeck_health.UID


def absent_expr(job: str) -> str:
    """No ``up`` series for ``job`` although this Prometheus is configured to scrape it.

    ``absent(up{job=...})`` alone would also fire wherever the job is not configured at all
    (a stack that legitimately runs no API); Prometheus's own discovery gauge exists exactly
    for the jobs its config names, at 0 when service discovery finds no target. So this
    fires when discovery finds nothing or relabelling drops every target, and stays quiet
    where the job is not part of the deployment (and where Prometheus does not scrape
    itself: its ``prometheus`` job is part of every config opsdeck ships). Discovery is read
    as of a minute ago: a Prometheus that just started discovers its targets before its
    first scrape of them, and must not raise the alert, even pending, meanwhile.
    """
    discovered = f'prometheus_sd_discovered_targets{{config="{job}",name="scrape"}} offset 1m'
    return f'absent(up{{job="{job}"}}) and on () {discovered}'


def _absent(name: str, job: str, what: str, blind: str, action: str) -> Alert:
    return Alert(
        name,
        absent_expr(job),
        "5m",
        "high",
        "opsdeck",
        f"Prometheus scrapes no {what}",
        f"Prometheus is configured to scrape job {job} but has scraped no target of it for "
        f"5 minutes (absent = {{value}}); {blind}",
        "{{ $value }}",
        action,
        ME,
        "Targets Discovered",
        seed=False,
    )


def _no_leader(name: str, metric: str, what: str, severity: str, blind: str) -> Alert:
    return Alert(
        name,
        f"sum({metric}) < 1",
        "5m",
        severity,
        "opsdeck",
        f"No {what} leads",
        f"{what.capitalize()} replicas answer scrapes but none has led for 5 minutes "
        f"(leaders = {{value}}); {blind}",
        '{{ $value | printf "%.0f" }}',
        "Read the replicas' logs for the leader lock; check the ops database they lock in.",
        ME,
        "Leaders",
        seed=False,
    )


def exporter_alerts() -> list[Alert]:
    return [
        Alert(
            "OpsdeckExporterDown",
            f'up{{job="{EXPORTER}"}} == 0',
            "5m",
            "high",
            "opsdeck",
            "Prometheus cannot scrape opsdeck's exporter",
            "{{ $labels.instance }} has not answered scrapes for 5 minutes (up = {value}); "
            "every KPI alert is blind meanwhile.",
            "{{ $value }}",
            "Restart the exporter; check its log and the database it reads.",
            ME,
            "Scrape Targets Up",
            seed=False,
            inhibits=("OpsdeckCollectorFailing", "OpsdeckCollectorLagging"),
        ),
        _absent(
            "OpsdeckExporterAbsent",
            EXPORTER,
            "opsdeck exporter",
            "every KPI alert is blind meanwhile.",
            "Check the exporter's deployment and Prometheus's service discovery.",
        ),
        _no_leader(
            "OpsdeckExporterNoLeader",
            "opsdeck_exporter_leader",
            "opsdeck exporter",
            "high",
            "no KPI is served and every KPI alert is blind.",
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
            ME,
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
            ME,
            "Collector Lag",
            seed=False,
        ),
    ]


def worker_alerts() -> list[Alert]:
    return [
        Alert(
            "OpsdeckWorkerDown",
            f'up{{job="{WORKER}"}} == 0',
            "5m",
            "high",
            "opsdeck",
            "Prometheus cannot scrape opsdeck's webhook worker",
            "{{ $labels.instance }} has not answered scrapes for 5 minutes (up = {value}); "
            "webhooks may not be delivered and the webhook alerts are blind.",
            "{{ $value }}",
            "Restart the worker; check its log and the database it reads.",
            ME,
            "Scrape Targets Up",
            seed=False,
        ),
        _absent(
            "OpsdeckWorkerAbsent",
            WORKER,
            "opsdeck webhook worker",
            "webhooks may not be delivered and the webhook alerts are blind.",
            "Check the worker's deployment and Prometheus's service discovery.",
        ),
        _no_leader(
            "OpsdeckWorkerNoLeader",
            "opsdeck_webhook_worker_leader",
            "opsdeck webhook worker",
            "medium",
            "no worker serves the opsdeck_webhook_* metrics, so the webhook alerts are blind.",
        ),
    ]


def api_alerts() -> list[Alert]:
    api = "opsdeck_api_http_requests_total"
    return [
        Alert(
            "OpsdeckApiDown",
            f'up{{job="{API}"}} == 0',
            "5m",
            "high",
            "opsdeck",
            "Prometheus cannot scrape opsdeck's API",
            "{{ $labels.instance }} has not answered scrapes for 5 minutes (up = {value}); "
            "drilldowns, actions and the alert receiver are down.",
            "{{ $value }}",
            "Restart the API; check its log.",
            ME,
            "Scrape Targets Up",
            seed=False,
        ),
        _absent(
            "OpsdeckApiAbsent",
            API,
            "opsdeck API",
            "drilldowns, actions and the alert receiver may be down.",
            "Check the API's deployment and Prometheus's service discovery.",
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
            ME,
            "API Errors",
            seed=False,
        ),
    ]


def alerting_alerts() -> list[Alert]:
    failed = 'rate(alertmanager_notifications_failed_total{job="alertmanager"}[5m])'
    total = 'rate(alertmanager_notifications_total{job="alertmanager"}[5m])'
    return [
        Alert(
            "AlertmanagerFailedToSendAlerts",
            # Alertmanager 0.26 adds a `reason` label to the failures only.
            f"{failed} / ignoring (reason) group_left {total} > {NOTIFICATION_FAILURE_RATE}",
            "5m",
            "high",
            "opsdeck",
            "Alertmanager fails to send notifications",
            "{{ $labels.instance }} failed {value} of its {{ $labels.integration }} "
            f"notifications in the last 5 minutes (threshold {pct(NOTIFICATION_FAILURE_RATE)}); "
            "alerts may reach nobody.",
            PERCENT,
            "Read Alertmanager's log for the failing receiver; check its URL and secrets.",
            ME,
            "Notifications Failed",
            seed=False,
        ),
        Alert(
            WATCHDOG,
            "vector(1)",
            "1m",
            "none",
            "opsdeck",
            "The alerting path works: this alert always fires",
            "Always firing (value {value}): Prometheus evaluates the rules and Alertmanager "
            "routes it to the dead man's switch, which alerts when the heartbeat stops.",
            "{{ $value }}",
            "Nothing to do while it fires; if the dead man's switch says it stopped, check "
            "Prometheus, Alertmanager and the route between them.",
            ME,
            "Watchdog",
            actions=(),  # silencing it would set off the dead man's switch
            seed=False,
        ),
    ]


def opsdeck_alerts() -> list[Alert]:
    return exporter_alerts() + worker_alerts() + api_alerts() + alerting_alerts()
