"""The live lists on the API's ``/metrics``: what the tails cost the databases and how many
viewers each list has, read from the hub when the page is rendered (no query)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# database -> (horizon readings, window queries); list -> viewers
Statements = Callable[[], Mapping[str, tuple[int, int]]]
Viewers = Callable[[], Mapping[str, int]]


class LiveCollector(Collector):
    def __init__(self, statements: Statements, viewers: Viewers) -> None:
        self._statements = statements
        self._viewers = viewers

    def collect(self) -> Iterator[Metric]:
        statements = CounterMetricFamily(
            "opsdeck_live_tail_statements",
            "Statements the live lists' tails ran: horizon readings and window queries, "
            "whatever the number of viewers.",
            labels=("database", "kind"),
        )
        for database, (horizon, windows) in sorted(self._statements().items()):
            statements.add_metric((database, "horizon"), horizon)
            statements.add_metric((database, "window"), windows)
        yield statements
        viewers = GaugeMetricFamily(
            "opsdeck_live_viewers", "Open live streams of each list.", labels=("list",)
        )
        for name, count in sorted(self._viewers().items()):
            viewers.add_metric((name,), count)
        yield viewers
