"""``opsdeck_incidents_open{severity}`` on the API's /metrics, served from a cache.

A scrape never waits on PostgreSQL: the count is the last one :class:`OpenIncidents`
read, so a database outage leaves the API's page (its request metrics, the last counts)
answering rather than failing exactly when it is needed.

- A background refresh (:func:`running`) recounts every
  ``incidents.open_counts_refresh_seconds``, and at once after each request of this
  process that may have changed incidents (a non-GET incident route answered below 400):
  what another replica changed shows up within the interval, what this one changed by its
  next scrape.
- A failed refresh keeps the last counts and is reported through :class:`FailureReporter`
  (once per streak, once on recovery).
- The severities of seed 001 read 0 when none is open; any other severity Alertmanager
  sent appears while it has open incidents. Until the first refresh succeeds the family
  has no samples: an unknown count is not reported as 0.
- A scrape waits at most :data:`SETTLE_SECONDS` for a refresh asked for by this process
  (its start, or a change) and still under way, so it reads its own changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress

import psycopg
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as PrometheusCollector
from psycopg_pool import AsyncConnectionPool

from api.incidents import store
from api.routing import RouteSpec
from api.runtime import Runtime
from core.background import cancelled_on_exit
from core.failures import FailureReporter

log = logging.getLogger(__name__)
NAME = "opsdeck_incidents_open"
DOC = "Incidents not resolved yet, per severity."
SEVERITIES = ("critical", "high", "medium")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Long enough for one indexed count on a healthy database, short against any scrape
# timeout: a scrape after a local change reads it, and never waits out an outage.
SETTLE_SECONDS = 1.0


class OpenIncidents(PrometheusCollector):
    """The open-incident gauge from the last counts read; :meth:`run` keeps them fresh."""

    def __init__(
        self, pool: AsyncConnectionPool, interval: float, changes: Iterable[tuple[str, str]]
    ) -> None:
        self.pool = pool
        self.interval = interval
        self.changes = frozenset(changes)
        self.failures = FailureReporter("open incident counts", log)
        self._counts: dict[str, int] | None = None
        self._wanted = 1  # the first count is wanted from the start
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(NAME, DOC, labels=["severity"])]

    def collect(self) -> Iterable[Metric]:
        counts = self._counts
        family = GaugeMetricFamily(NAME, DOC, labels=["severity"])
        if counts is not None:
            for severity in sorted({*SEVERITIES, *counts}):
                family.add_metric([severity], float(counts.get(severity, 0)))
        return [family]

    def observed(self, route: str, method: str, status: int) -> None:
        """A request ended (``HttpMetrics`` listener): recount if it may have changed
        incidents."""
        if status < 400 and (route, method) in self.changes:
            self.changed()

    def changed(self) -> None:
        self._wanted += 1
        self._settled.clear()
        self._wake.set()

    async def settled(self, timeout: float = SETTLE_SECONDS) -> None:
        """Returns once no refresh this process asked for is outstanding, or after
        ``timeout``: the counts are then the freshest this process can offer."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), timeout)

    async def refresh(self) -> bool:
        """One recount; True when it succeeded. A failure keeps the last counts."""
        try:
            async with self.pool.connection(timeout=self.interval) as conn:
                self._counts = await store.open_counts(conn)
        except Exception as exc:  # noqa: BLE001 - the loop must outlive any one recount
            # An outage is expected and reported as such; anything else is a bug.
            self.failures.failed(exc, traceback=not isinstance(exc, psycopg.Error))
            return False
        self.failures.recovered()
        return True

    async def run(self) -> None:
        """Recounts forever: every ``interval``, and at once after :meth:`changed`."""
        while True:
            target = self._wanted
            self._wake.clear()
            await self.refresh()
            if self._wanted == target:
                self._settled.set()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)


def changing_routes(specs: Iterable[RouteSpec]) -> set[tuple[str, str]]:
    """The (route template, method) pairs of ``specs`` that may change incidents."""
    return {(s.path, m) for s in specs for m in s.methods if m not in SAFE_METHODS}


@asynccontextmanager
async def running(runtime: Runtime, specs: Iterable[RouteSpec]) -> AsyncIterator[OpenIncidents]:
    """The collector registered on the API's metrics and refreshed in the background for
    the block; ``specs`` are the incident routes whose requests trigger a recount."""
    collector = OpenIncidents(
        runtime.ops, runtime.settings.incidents.open_counts_refresh_seconds, changing_routes(specs)
    )
    registry: CollectorRegistry = runtime.metrics.registry
    registry.register(collector)
    runtime.metrics.listeners.append(collector.observed)
    task = asyncio.create_task(collector.run(), name="open-incident-counts")
    try:
        async with cancelled_on_exit([task]):
            yield collector
    finally:
        runtime.metrics.listeners.remove(collector.observed)
        registry.unregister(collector)
