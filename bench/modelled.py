"""Series of opsdeck's own processes over a history's span, modelled (no table records them).

Label sets are the processes' own (taken from the code that defines them); values are a
steady, healthy deployment of one replica each:

- exporter: ``opsdeck_collector_up`` 1, ``opsdeck_collector_duration_seconds``
  :data:`COLLECTOR_PASS_SECONDS` and ``opsdeck_collector_lag_seconds`` the fold interval
  plus the horizon margin (the lag of an exporter keeping up), per collector;
  ``opsdeck_exporter_leader`` 1.
- webhook worker: ``opsdeck_webhook_worker_leader`` 1; queue depth and dead letters 0 per
  direction; delivery attempts growing at :data:`WEBHOOK_RATES` per second (a retry per
  failed attempt, :data:`RECOVERED_SHARE` of them recovered), every delivery's latency in
  one bucket (:data:`WEBHOOK_LATENCY`).
- API: ``opsdeck_api_http_requests_total`` for every declared (route, method) at 2xx and
  5xx (what ``HttpMetrics.declare`` creates), of which only :data:`API_TRAFFIC` grows
  (probes and the scrape), at 2xx; their durations all under the first bucket.
- ``up`` 1 for every opsdeck scrape job.

Counters are ``floor(rate × seconds since the first sample)``: whole events, never going
backwards.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from api.app import route_specs
from api.http_metrics import BUCKETS as API_BUCKETS
from bench.replay import Grid, Key, Values
from core.settings import Settings
from exporters.collector import le_label
from exporters.server import COLLECTORS
from gateway import metrics as webhook

COLLECTOR_PASS_SECONDS = 0.01
# Per second, by (direction, result).
WEBHOOK_RATES = {
    ("inbound", "succeeded"): 2.0,
    ("inbound", "failed"): 0.0,
    ("outbound", "succeeded"): 0.5,
    ("outbound", "failed"): 0.005,
}
RECOVERED_SHARE = 0.99
WEBHOOK_LATENCY = {"inbound": 0.05, "outbound": 0.25}  # seconds, an exact bucket bound
# Requests per second by (route, method): liveness and readiness probes, the 15 s scrape.
API_TRAFFIC = {("/healthz", "GET"): 0.1, ("/readyz", "GET"): 0.1, ("/metrics", "GET"): 1 / 15}
API_LATENCY = 0.004  # seconds, under the first bucket

Modelled = Iterator[tuple[str, Key, Values]]  # (scrape job, series, values)


def _key(name: str, **labels: str) -> Key:
    return name, tuple(sorted(labels.items()))


def modelled(settings: Settings, grid: Grid) -> Modelled:
    """Every modelled series, by the scrape job that collects it."""
    yield from _exporter(settings, grid)
    yield from _worker(settings, grid)
    yield from _api(grid)


def up(grid: Grid, jobs: list[str]) -> Modelled:
    for job in jobs:
        yield job, _key("up"), np.ones(grid.count)


def _counter(grid: Grid, rate: float) -> Values:
    return np.asarray(np.floor(rate * np.arange(grid.count) * grid.step), dtype=np.float64)


def _exporter(settings: Settings, grid: Grid) -> Modelled:
    ex = settings.exporter
    lag = ex.fold_interval_seconds + ex.horizon_margin_seconds
    ones = np.ones(grid.count)
    for name in sorted(c.name for c in COLLECTORS):
        yield "opsdeck-exporter", _key("opsdeck_collector_up", collector=name), ones
        yield (
            "opsdeck-exporter",
            _key("opsdeck_collector_duration_seconds", collector=name),
            ones * COLLECTOR_PASS_SECONDS,
        )
        yield "opsdeck-exporter", _key("opsdeck_collector_lag_seconds", collector=name), ones * lag
    yield "opsdeck-exporter", _key("opsdeck_exporter_leader"), ones


def _worker(settings: Settings, grid: Grid) -> Modelled:
    job = "opsdeck-worker"
    zeros = np.zeros(grid.count)
    yield job, _key(webhook.LEADER), np.ones(grid.count)
    for direction in webhook.DIRECTIONS:
        yield job, _key(webhook.QUEUE_DEPTH, direction=direction), zeros
        yield job, _key(webhook.DEAD_LETTERS, direction=direction), zeros
        attempts = zeros
        for result in webhook.RESULTS:
            count = _counter(grid, WEBHOOK_RATES[(direction, result)])
            attempts = attempts + count
            yield job, _key(webhook.ATTEMPTS, direction=direction, result=result), count
        failed_rate = WEBHOOK_RATES[(direction, "failed")]
        retries = _counter(grid, failed_rate)
        yield job, _key(webhook.RETRIES, direction=direction), retries
        recovered = _counter(grid, failed_rate * RECOVERED_SHARE)
        yield job, _key(webhook.RECOVERED, direction=direction), recovered
        yield from _histogram(
            job,
            webhook.LATENCY,
            {"direction": direction},
            settings.webhooks.latency_buckets_seconds,
            attempts,
            WEBHOOK_LATENCY[direction],
        )


def _api(grid: Grid) -> Modelled:
    job = "opsdeck-api"
    zeros = np.zeros(grid.count)
    for spec in route_specs():
        for method in spec.methods:
            rate = API_TRAFFIC.get((spec.path, method), 0.0)
            labels = {"route": spec.path, "method": method}
            count = _counter(grid, rate) if rate else zeros
            yield job, _key("opsdeck_api_http_requests_total", status_class="2xx", **labels), count
            yield job, _key("opsdeck_api_http_requests_total", status_class="5xx", **labels), zeros
            if rate:
                yield from _histogram(
                    job,
                    "opsdeck_api_http_request_duration_seconds",
                    {"route": spec.path},
                    API_BUCKETS,
                    count,
                    API_LATENCY,
                )


def _histogram(
    job: str,
    name: str,
    labels: dict[str, str],
    bounds: tuple[float, ...],
    count: Values,
    seconds: float,
) -> Modelled:
    """Every observation in the first bucket at or above ``seconds``."""
    for bound in (*bounds, math.inf):
        values = count if seconds <= bound else np.zeros_like(count)
        yield job, _key(f"{name}_bucket", le=le_label(bound), **labels), values
    yield job, _key(f"{name}_count", **labels), count
    yield job, _key(f"{name}_sum", **labels), count * seconds
