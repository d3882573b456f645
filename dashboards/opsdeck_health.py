"""opsdeck itself: are the collectors folding, how long and how far behind; the API's RED."""

from __future__ import annotations

from typing import Any

from dashboards.links import drilldown
from dashboards.panels import GREEN, RED, chart, query, size, steps, tile
from dashboards.render import frame
from dashboards.sdk import dash

UID = "opsdeck-self"
TITLE = "opsdeck / opsdeck itself"
API = "opsdeck_api_http_requests_total"


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
        "Whether Prometheus reaches opsdeck's exporter and API.",
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
        "Requests per second to opsdeck's own API, by route.",
        [query(f"sum by (route) (rate({API}[$__rate_interval]))", "{{route}}")],
        unit="reqps",
        links=[incidents],
    )
    errors = chart(
        "API Errors",
        "Share of opsdeck API requests answered with 5xx, by route.",
        [
            query(
                f'sum by (route) (rate({API}{{status_class="5xx"}}[$__rate_interval]))'
                f" / sum by (route) (rate({API}[$__rate_interval]))",
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
                "(rate(opsdeck_api_http_request_duration_seconds_bucket[$__rate_interval])))",
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
    return board
