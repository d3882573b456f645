"""Webhooks & integrations: queues, deliveries, retries and dead letters, in and out."""

from __future__ import annotations

from typing import Any

from core.settings import Thresholds
from dashboards.links import action, drilldown
from dashboards.panels import above, chart, query, size, steps, tile
from dashboards.render import frame
from dashboards.sdk import dash

UID = "opsdeck-webhooks"
TITLE = "opsdeck / Webhooks & Integrations"
ATTEMPTS = "opsdeck_webhook_delivery_attempts_total"


def build(thresholds: Thresholds, *, api_url: str) -> Any:
    deliveries = drilldown("Webhook deliveries", "/webhooks")
    reprocess = action("reprocess-dead-letters", alertname="WebhookRetryQueueHigh")
    queue = chart(
        "Queue Depth",
        "Webhooks waiting to be processed (inbound) or delivered (outbound); the line is "
        "the alert threshold.",
        [query("sum by (direction) (opsdeck_webhook_queue_depth)", "{{direction}}")],
        unit="short",
        thresholds=above(thresholds.webhook_queue_depth),
        links=[deliveries, reprocess],
    )
    success = chart(
        "Delivery Success",
        "Share of delivery attempts that succeeded, by direction.",
        [
            query(
                f'sum by (direction) (rate({ATTEMPTS}{{result="succeeded"}}[$__rate_interval]))'
                f" / sum by (direction) (rate({ATTEMPTS}[$__rate_interval]))",
                "{{direction}}",
            )
        ],
        unit="percentunit",
        links=[deliveries],
    )
    retries = chart(
        "Retry Success",
        "Share of retried deliveries that eventually succeeded.",
        [
            query(
                "sum(rate(opsdeck_webhook_retries_recovered_total[$__rate_interval]))"
                " / sum(rate(opsdeck_webhook_retries_total[$__rate_interval]))",
                "Recovered",
            )
        ],
        unit="percentunit",
        links=[deliveries],
    )
    dead = tile(
        "Dead Letters",
        "Messages parked after their last retry, by direction; each can be reprocessed.",
        [query("sum by (direction) (opsdeck_webhook_dead_letters)", "{{direction}}", instant=True)],
        unit="short",
        decimals=0,
        thresholds=steps((None, "green"), (1, "orange")),
        links=[drilldown("Dead letters", "/webhooks", status="dead"), reprocess],
    )
    latency = chart(
        "Delivery Latency p95",
        "95th percentile time from receipt to successful delivery.",
        [
            query(
                "histogram_quantile(0.95, sum by (le) "
                "(rate(opsdeck_webhook_delivery_latency_seconds_bucket[$__rate_interval])))",
                "p95",
            )
        ],
        unit="s",
        links=[deliveries],
    )
    board = frame(
        UID, TITLE, "Webhook gateway health: queues, deliveries, retries.", api_url=api_url
    )
    board = board.with_row(dash.Row("Webhooks"))
    for panel in (
        size(queue, 12, 8),
        size(success, 12, 8),
        size(retries, 8, 8),
        size(dead, 8, 8),
        size(latency, 8, 8),
    ):
        board = board.with_panel(panel)
    return board
