"""opsdeck itself: are the collectors folding, how long and how far behind; the API's RED;
whether Prometheus finds every process, which replicas lead, and whether the alerting path
delivers."""

from __future__ import annotations

from typing import Any

from core import recording_rules as rec
from dashboards.links import Link, drilldown
from dashboards.panels import GREEN, ORANGE, RED, chart, query, size, steps, tile
from dashboards.render import frame
from dashboards.sdk import dash

UID = "opsdeck-self"
TITLE = "opsdeck / opsdeck itself"
FIVE_XX = '{status_class="5xx"}'
NOTIFICATIONS_FAILED = "alertmanager_notifications_failed_total"


def build(*, api_url: str) -> Any:
    incidents = drilldown("Incidents", "/incidents")
    up = tile(
        "Collectors Up",
        "1 when the collector's last pass succeeded; red when any failed.",
        [query("min by (collector) (opsdeck_collector_up)", "{{collector}}", instant=True)],
        unit="none",
        decimals=0,
        thresholds=steps((None, RED), (1, GREEN)),
        links=[incidents],
    )
    scrape = tile(
        "Scrape Targets Up",
        "Whether Prometheus reaches opsdeck's exporter, webhook worker and API.",
        [query('up{job=~"opsdeck-.*"}', "{{job}}", instant=True)],
        unit="none",
        decimals=0,
        thresholds=steps((None, RED), (1, GREEN)),
        links=[incidents],
    )
    duration = chart(
        "Collector Pass Duration",
        "How long each collector's latest pass took.",
        [query("max by (collector) (opsdeck_collector_duration_seconds)", "{{collector}}")],
        unit="s",
        links=[incidents],
    )
    lag = chart(
        "Collector Lag",
        "Age of the newest platform fact each collector has folded in.",
        [query("max by (collector) (opsdeck_collector_lag_seconds)", "{{collector}}")],
        unit="s",
        links=[incidents],
    )
    rate = chart(
        "API Request Rate",
        "Requests per second to opsdeck's own API, by route (the 5-minute rate, averaged "
        "over each point's interval).",
        [query(f"sum by (route) ({_rate()})", "{{route}}")],
        unit="reqps",
        links=[incidents],
    )
    errors = chart(
        "API Errors",
        "Share of opsdeck API requests answered with 5xx, by route.",
        [
            query(
                f"sum by (route) ({_rate(FIVE_XX)}) / sum by (route) ({_rate()})",
                "{{route}}",
            )
        ],
        unit="percentunit",
        links=[incidents],
    )
    latency = chart(
        "API Duration p95",
        "95th percentile duration of opsdeck API requests, by route.",
        [
            query(
                "histogram_quantile(0.95, sum by (route, le) "
                f"(avg_over_time({rec.API_HTTP_DURATION_BUCKETS}[$__rate_interval])))",
                "{{route}}",
            )
        ],
        unit="s",
        links=[incidents],
    )
    board = frame(
        UID,
        TITLE,
        "The exporter's collectors and opsdeck's API, watched like any service.",
        api_url=api_url,
    )
    board = board.with_row(dash.Row("Exporter"))
    for panel in (size(up, 6, 6), size(scrape, 6, 6), size(duration, 6, 6), size(lag, 6, 6)):
        board = board.with_panel(panel)
    board = board.with_row(dash.Row("API"))
    for panel in (size(rate, 8, 8), size(errors, 8, 8), size(latency, 8, 8)):
        board = board.with_panel(panel)
    board = board.with_row(dash.Row("Scraping and alerting"))
    for panel in _self_watch(incidents):
        board = board.with_panel(panel)
    return board


def _rate(selector: str = "") -> str:
    """The API's recorded request rate, averaged over the panel's point."""
    return f"avg_over_time({rec.API_HTTP_RATE}{selector}[$__rate_interval])"


def _self_watch(incidents: Link) -> list[Any]:
    """Panels after every other, so the ids runbooks link to stay put."""
    discovered = tile(
        "Targets Discovered",
        "Targets Prometheus discovers for each opsdeck job, and how many it scrapes; a job "
        "with none scraped is absent.",
        [
            query(
                'sum by (config) (prometheus_sd_discovered_targets{name="scrape",'
                'config=~"opsdeck-.*"})',
                "{{config}} discovered",
                instant=True,
            ),
            query('count by (job) (up{job=~"opsdeck-.*"})', "{{job}} scraped", "B", instant=True),
        ],
        unit="none",
        decimals=0,
        thresholds=steps((None, RED), (1, GREEN)),
        links=[incidents],
    )
    leaders = tile(
        "Leaders",
        "Replicas leading: the exporter replica serving the KPIs, the worker serving the "
        "webhook metrics. Exactly one each.",
        [
            query("sum(opsdeck_exporter_leader)", "exporter", instant=True),
            query("sum(opsdeck_webhook_worker_leader)", "webhook worker", "B", instant=True),
        ],
        unit="none",
        decimals=0,
        thresholds=steps((None, RED), (1, GREEN), (2, ORANGE)),
        links=[incidents],
    )
    failed = chart(
        "Notifications Failed",
        "Alertmanager's failed notification attempts per second, by integration.",
        [
            query(
                f'sum by (integration) (rate({NOTIFICATIONS_FAILED}{{job="alertmanager"}}'
                "[$__rate_interval]))",
                "{{integration}}",
            )
        ],
        unit="ops",
        links=[incidents],
    )
    watchdog = tile(
        "Watchdog",
        "1 while the always-firing Watchdog alert fires: Prometheus evaluates the rules. "
        "The dead man's switch hears it through Alertmanager.",
        [
            query(
                'max(ALERTS{alertname="Watchdog",alertstate="firing"}) or on () vector(0)',
                "Watchdog",
                instant=True,
            )
        ],
        unit="none",
        decimals=0,
        thresholds=steps((None, RED), (1, GREEN)),
        links=[incidents],
    )
    return [size(discovered, 6, 6), size(leaders, 6, 6), size(failed, 6, 6), size(watchdog, 6, 6)]
