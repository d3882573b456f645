"""Prometheus collectors over the snapshot: the KPI families, the folding's health, and
the replica's leader flag.

``describe()`` yields the families without samples, so registering never touches the
database; ``collect()`` builds new metric families from the in-memory snapshot, never
querying. :mod:`exporters.metrics_page` renders the KPIs when they change and the health
on every scrape (its lag is measured at scrape time), and decides which of them a replica
serves.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from itertools import accumulate

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector as PrometheusCollector

from exporters.collector import SeriesKey, le_label
from exporters.families import HEALTH_FAMILIES, Family
from exporters.snapshot import Snapshot, View

COLLECTOR_HEALTH = (
    "opsdeck_collector_up",
    "opsdeck_collector_duration_seconds",
    "opsdeck_collector_lag_seconds",
)


class KpiExposition(PrometheusCollector):
    def __init__(
        self, families: Mapping[str, Family], owners: Mapping[str, str], snapshot: Snapshot
    ) -> None:
        self._families = families
        self._owners = owners  # family name -> collector name
        self._snapshot = snapshot

    def describe(self) -> Iterator[Metric]:
        for family in self._families.values():
            yield _histogram(family) if family.kind == "histogram" else _simple(family)

    def collect(self) -> Iterator[Metric]:
        view = self._snapshot.view()
        for family in self._families.values():
            yield self._build(family, view.values.get(self._owners[family.name], {}))

    def _build(self, family: Family, values: Mapping[SeriesKey, float]) -> Metric:
        if family.kind == "histogram":
            histogram = _histogram(family)
            _fill_histogram(histogram, family, values)
            return histogram
        metric = _simple(family)
        for (name, labels), value in sorted(values.items()):
            if name == family.name:
                metric.add_metric(list(labels), value)
        return metric


def _simple(family: Family) -> CounterMetricFamily | GaugeMetricFamily:
    labels = list(family.labels)
    if family.kind == "counter":
        return CounterMetricFamily(family.name.removesuffix("_total"), family.help, labels=labels)
    return GaugeMetricFamily(family.name, family.help, labels=labels)


def _histogram(family: Family) -> HistogramMetricFamily:
    return HistogramMetricFamily(family.name, family.help, labels=list(family.labels))


def _fill_histogram(
    metric: HistogramMetricFamily, family: Family, values: Mapping[SeriesKey, float]
) -> None:
    """Per-bucket counts (as stored) become cumulative ``le`` buckets; ``_count`` is the
    +Inf bucket."""
    buckets: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
    sums: dict[tuple[str, ...], float] = {}
    for (name, labels), value in values.items():
        if name == family.name + "_bucket":
            buckets[labels[:-1]][labels[-1]] = value
        elif name == family.name + "_sum":
            sums[labels] = value
    order = [le_label(b) for b in (*family.buckets, math.inf)]
    for labels in sorted(buckets):
        counts = buckets[labels]
        cumulative = list(zip(order, accumulate(counts.get(le, 0.0) for le in order), strict=True))
        metric.add_metric(list(labels), cumulative, sums.get(labels, 0.0))


class HealthExposition(PrometheusCollector):
    """``opsdeck_collector_*``: how the folding goes, which only the leader does."""

    def __init__(self, snapshot: Snapshot, *, folding: bool = True) -> None:
        """``folding`` off: every collector reads down (a replica that no longer folds)."""
        self._snapshot = snapshot
        self._folding = folding

    def describe(self) -> Iterator[Metric]:
        yield from (_simple(HEALTH_FAMILIES[name]) for name in COLLECTOR_HEALTH)

    def collect(self) -> Iterator[Metric]:
        return _health(self._snapshot.health_view(), self._folding)


class LeaderFlag(PrometheusCollector):
    """``opsdeck_exporter_leader``: a constant, 1 on a leader's page and 0 on a standby's."""

    def __init__(self, leading: bool) -> None:
        self._value = 1.0 if leading else 0.0

    def describe(self) -> Iterator[Metric]:
        yield _simple(HEALTH_FAMILIES["opsdeck_exporter_leader"])

    def collect(self) -> Iterator[Metric]:
        flag = _simple(HEALTH_FAMILIES["opsdeck_exporter_leader"])
        flag.add_metric([], self._value)
        yield flag


def series_count(*collectors: PrometheusCollector) -> int:
    return sum(len(metric.samples) for c in collectors for metric in c.collect())


def _health(view: View, folding: bool) -> Iterator[Metric]:
    now = time.time()
    up = _simple(HEALTH_FAMILIES["opsdeck_collector_up"])
    duration = _simple(HEALTH_FAMILIES["opsdeck_collector_duration_seconds"])
    lag = _simple(HEALTH_FAMILIES["opsdeck_collector_lag_seconds"])
    for name, health in sorted(view.health.items()):
        up.add_metric([name], 1.0 if health.up and folding else 0.0)
        duration.add_metric([name], health.duration)
        if health.horizon is not None:
            lag.add_metric([name], max(0.0, now - health.horizon.timestamp()))
    yield from (up, duration, lag)
