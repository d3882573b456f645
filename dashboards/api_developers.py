"""API & developers (seed 000): volume, errors by route, latency, failing routes, log search.

Like the payments board, one mode at a time: ``livemode`` is a single choice.
"""

from __future__ import annotations

from typing import Any

from dashboards.links import drilldown
from dashboards.panels import (
    chart,
    heatmap_of_buckets,
    prom_table,
    query,
    size,
    transform,
)
from dashboards.render import choice, frame
from dashboards.sdk import dash

UID = "opsdeck-api-developers"
TITLE = "opsdeck / API & Developers"
REQUESTS = 'opsdeck_api_requests_total{livemode="$livemode"}'
ERRORS = 'opsdeck_api_requests_total{livemode="$livemode",status_class="5xx"}'


def _logs(title: str, **params: str) -> Any:
    return drilldown(title, "/api-logs", livemode="$livemode", **params)


def build(*, api_url: str) -> Any:
    volume = chart(
        "Request Volume",
        "API requests per second by status class.",
        [query(f"sum by (status_class) (rate({REQUESTS}[$__rate_interval]))", "{{status_class}}")],
        unit="reqps",
        links=[_logs("API logs"), drilldown("Usage", "/usage", livemode="$livemode")],
    )
    errors = chart(
        "Error Rate by Route",
        "Share of each route's requests answered with 5xx.",
        [
            query(
                f"sum by (route) (rate({ERRORS}[$__rate_interval]))"
                f" / sum by (route) (rate({REQUESTS}[$__rate_interval]))",
                "{{route}}",
            )
        ],
        unit="percentunit",
        links=[_logs("5xx requests", status_class="5xx")],
    )
    latency = heatmap_of_buckets(
        "Latency Distribution",
        "How long API requests took, from the request-duration histogram (all modes).",
        query(
            "sum by (le) (increase(opsdeck_api_request_duration_seconds_bucket[$__rate_interval]))",
            "{{le}}",
        ),
        unit="s",
        links=[drilldown("Slowest requests", "/api-logs", sort="duration_ms", livemode="all")],
    )
    failing = prom_table(
        "Top Failing Routes",
        "Routes with the most 4xx and 5xx answers over the selected range; a row opens "
        "the API-log search for it.",
        [
            query(
                "topk(10, sum by (route, status_class) (increase(opsdeck_api_requests_total"
                '{livemode="$livemode",status_class=~"4xx|5xx"}[$__range])))',
                "",
                table=True,
            )
        ],
        unit="short",
        transformations=[
            transform(
                "organize",
                excludeByName={"Time": True},
                renameByName={"Value": "Requests"},
            ),
            transform("sortBy", sort=[{"field": "Requests", "desc": True}]),
        ],
        links=[
            _logs(
                "Search these requests",
                route="${__data.fields.route}",
                status_class="${__data.fields.status_class}",
            )
        ],
    )
    board = frame(
        UID,
        TITLE,
        "Seed 000's developer view: API traffic, errors and latency, into the API logs.",
        api_url=api_url,
        variables=[choice("livemode", "Mode (live / test)", ["true", "false"], "true")],
    )
    board = board.with_row(dash.Row("API (livemode=$livemode)"))
    for panel in (
        size(volume, 12, 8),
        size(errors, 12, 8),
        size(latency, 12, 9),
        size(failing, 12, 9),
    ):
        board = board.with_panel(panel)
    return board
