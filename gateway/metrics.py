"""The ``opsdeck_webhook_*`` families, on the worker's /metrics.

Counters are running totals kept in ``ops.webhook_counters``, bumped in the transaction that
records what they count (an attempt, a rejection), so they are exact across crashes and
restarts and never count an attempt twice. Gauges are read from the ops tables. Both are
served only by the worker that holds the gateway's advisory lock (``opsdeck_webhook_worker_
leader`` says which), so ``sum()`` over every scraped worker counts each value once; the
values are refreshed in the background, never while Prometheus scrapes.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector as PrometheusCollector

from gateway.queries.counters import SEPARATOR

QUEUE_DEPTH = "opsdeck_webhook_queue_depth"
ATTEMPTS = "opsdeck_webhook_delivery_attempts_total"
RETRIES = "opsdeck_webhook_retries_total"
RECOVERED = "opsdeck_webhook_retries_recovered_total"
DEAD_LETTERS = "opsdeck_webhook_dead_letters"
LATENCY = "opsdeck_webhook_delivery_latency_seconds"
REJECTED = "opsdeck_webhook_inbound_rejected_total"
DUPLICATES = "opsdeck_webhook_inbound_duplicates_total"
ENDPOINTS = "opsdeck_webhook_endpoints"
LEADER = "opsdeck_webhook_worker_leader"
IN_FLIGHT = "opsdeck_webhook_worker_in_flight"

DIRECTIONS = ("inbound", "outbound")
RESULTS = ("failed", "succeeded")
PROVIDERS = ("paystack", "stripe")
REJECTIONS = (
    "bad_signature",
    "forbidden_address",
    "malformed",
    "malformed_signature",
    "missing_signature",
    "oversize",
    "stale",
    "unconfigured",
)
ENDPOINT_STATES = ("circuit_open", "disabled", "enabled")


def le_label(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


@dataclass
class Increments:
    """Counter increments of one transaction, by (metric, label values)."""

    values: dict[tuple[str, tuple[str, ...]], float] = field(
        default_factory=lambda: defaultdict(float)
    )

    def add(self, metric: str, labels: Sequence[str], amount: float = 1.0) -> None:
        if amount:
            self.values[(metric, tuple(labels))] += amount

    def observe(
        self, metric: str, labels: Sequence[str], buckets: Sequence[float], seconds: float
    ) -> None:
        """One histogram observation; bucket rows hold cumulative counts."""
        for bound in (*buckets, math.inf):
            if seconds <= bound:
                self.add(f"{metric}_bucket", (*labels, le_label(bound)))
        self.add(f"{metric}_sum", labels, seconds if seconds else 1e-12)
        self.add(f"{metric}_count", labels)

    def params(self) -> dict[str, list[Any]]:
        keys = sorted(self.values)
        return {
            "metrics": [k[0] for k in keys],
            "labels": [SEPARATOR.join(k[1]) for k in keys],
            "values": [self.values[k] for k in keys],
        }

    def __bool__(self) -> bool:
        return bool(self.values)


@dataclass(frozen=True)
class GatewayReading:
    counters: Mapping[tuple[str, tuple[str, ...]], float]
    queue: Mapping[str, float]
    dead: Mapping[str, float]
    endpoints: Mapping[str, float]


class GatewayCollector(PrometheusCollector):
    """Builds fresh families from the last reading on every scrape."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self._lock = threading.Lock()
        self._snapshot: GatewayReading | None = None
        self.in_flight = 0

    def publish(self, snapshot: GatewayReading | None) -> None:
        """A new snapshot (None: this worker does not lead, so it serves no values)."""
        with self._lock:
            self._snapshot = snapshot

    def describe(self) -> Iterable[Metric]:
        return list(self._families(None))

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            snapshot = self._snapshot
        return list(self._families(snapshot))

    def _families(self, s: GatewayReading | None) -> Iterator[Metric]:
        leader = GaugeMetricFamily(LEADER, "1 on the worker that serves the webhook families.")
        leader.add_metric([], 1.0 if s is not None else 0.0)
        yield leader
        in_flight = GaugeMetricFamily(IN_FLIGHT, "Deliveries this worker is attempting now.")
        in_flight.add_metric([], float(self.in_flight))
        yield in_flight
        yield self._gauge(
            QUEUE_DEPTH,
            "Webhooks waiting to be delivered (outbound) or processed (inbound), retries included.",
            "direction",
            s.queue if s else None,
        )
        yield self._gauge(
            DEAD_LETTERS, "Dead letters not yet reprocessed.", "direction", s.dead if s else None
        )
        yield self._gauge(
            ENDPOINTS, "Outbound endpoints by state.", "state", s.endpoints if s else None
        )
        counters = s.counters if s else None
        yield self._counter(
            ATTEMPTS,
            "Delivery (outbound) and processing (inbound) attempts.",
            ("direction", "result"),
            counters,
        )
        yield self._counter(
            RETRIES, "Attempts that were retries of a failed one.", ("direction",), counters
        )
        yield self._counter(RECOVERED, "Retries that succeeded.", ("direction",), counters)
        yield self._counter(
            REJECTED,
            "Inbound requests refused before acceptance.",
            ("provider", "reason"),
            counters,
        )
        yield self._counter(
            DUPLICATES, "Inbound events received again and acknowledged.", ("provider",), counters
        )
        yield self._histogram(counters)

    @staticmethod
    def _gauge(
        name: str, doc: str, label: str, values: Mapping[str, float] | None
    ) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, doc, labels=[label])
        for key, value in sorted((values or {}).items()):
            family.add_metric([key], value)
        return family

    @staticmethod
    def _counter(
        name: str,
        doc: str,
        labels: Sequence[str],
        counters: Mapping[tuple[str, tuple[str, ...]], float] | None,
    ) -> CounterMetricFamily:
        family = CounterMetricFamily(name, doc, labels=list(labels))
        for (metric, values), value in sorted((counters or {}).items()):
            if metric == name:
                family.add_metric(list(values), value)
        return family

    def _histogram(
        self, counters: Mapping[tuple[str, tuple[str, ...]], float] | None
    ) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            LATENCY, "Time from a message's creation to its delivery.", labels=["direction"]
        )
        if counters is None:
            return family
        for direction in DIRECTIONS:
            buckets = [
                (le_label(b), counters.get((f"{LATENCY}_bucket", (direction, le_label(b))), 0.0))
                for b in (*self.buckets, math.inf)
            ]
            total = counters.get((f"{LATENCY}_sum", (direction,)), 0.0)
            family.add_metric([direction], buckets, total)
        return family


def zero_counters() -> dict[tuple[str, tuple[str, ...]], float]:
    """The series that exist from the start, at zero (rate() needs them)."""
    series: dict[tuple[str, tuple[str, ...]], float] = {}
    for direction in DIRECTIONS:
        for result in RESULTS:
            series[(ATTEMPTS, (direction, result))] = 0.0
        series[(RETRIES, (direction,))] = 0.0
        series[(RECOVERED, (direction,))] = 0.0
    for provider in PROVIDERS:
        series[(DUPLICATES, (provider,))] = 0.0
        for reason in REJECTIONS:
            series[(REJECTED, (provider, reason))] = 0.0
    return series
