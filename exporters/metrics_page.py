"""The /metrics body: what the leader serves, what a standby serves, rendered off the
scrape path.

**Only the leader serves the KPI families.** Prometheus scrapes every replica, and the
dashboards and rules add series up (``sum(rate(opsdeck_bookings_confirmed_total[5m]))``):
if two replicas served the same counters, every rate, ratio and tile would double. So the
KPI families of the metric contract, and ``opsdeck_collector_*`` (how the folding goes:
only the leader folds, and a standby's copy would raise a second alert for one fault), are
on the page of the replica that leads and has loaded the values of its epoch, and on no
other. Every page carries what describes the replica itself: ``opsdeck_exporter_leader``
(1 on the leader, 0 on a standby standing by), ``opsdeck_build_info`` and the process's
own families (``process_*``, ``python_info``: read from memory and /proc, never the
database). So ``sum()`` over the scraped replicas counts each KPI once, and
``sum(opsdeck_exporter_leader)`` says how many replicas fold (1 when all is well).

Which page a scrape gets is decided at the scrape, from ``role`` (the engine's
:meth:`~exporters.engine.Engine.role`, which reads the leader lock's epoch), so a replica
stops serving the leader's page the moment it knows it lost the lock rather than at the
next tick of some loop. A replica that was just elected serves KPIs only once it has loaded
the committed values from ops, and its first such page is rendered from that load or later,
never from older values still in memory. A replica whose lock session died without it
noticing yet can overlap a new leader for at most the lock's validity (``core/
leadership.py``); a replica that crashed or stopped cannot.

**Stranded.** A leader that lost the lock because it cannot reach ops (the database is
down, or the network to it) cannot tell whether another replica leads; most often none
can, for the lock lives in that database. Until it reads ops again it serves its last
values with every ``opsdeck_collector_up`` at 0 and ``opsdeck_exporter_leader`` at 0: the
outage is an alert (a replica that went silent would raise none) and the frozen counters
add nothing to a rate. Once it reads ops again it is a standby, or leads again.

Rendering several hundred KPI series and compressing them costs milliseconds of Python per
scrape, which a busy exporter (eight fold threads) turns into tens. The KPI families only
change when a fold commits, so a renderer thread renders them once per change of the
snapshot, as text and as the start of a gzip stream; a leader's scrape appends the few
health series (their lag is measured at scrape time) and the replica's own families and
sends bytes.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector as PrometheusCollector

from core.build_info import register_process_metrics
from exporters.exposition import HealthExposition, LeaderFlag
from exporters.snapshot import Snapshot

GZIP = 16 + zlib.MAX_WBITS  # zlib's gzip container: header, deflate, CRC-32 and size
WAKE_SECONDS = 1.0  # the renderer's check for stop if nobody closes the snapshot
Role = Literal["leader", "stranded", "standby"]
ROLES: tuple[Role, ...] = ("leader", "stranded", "standby")


@dataclass(frozen=True)
class Rendered:
    version: int
    text: bytes
    gzip_head: bytes  # the gzip stream's bytes so far
    gzip_state: zlib._Compress  # the compressor after ``text``, copied to finish a response


class MetricsPage:
    def __init__(
        self,
        snapshot: Snapshot,
        kpis: PrometheusCollector,
        health: PrometheusCollector,
        role: Callable[[], Role],
    ) -> None:
        """``role`` says, at each scrape, which page this replica serves: the leader's
        (``kpis``, ``health``), a stranded leader's, or a standby's."""
        self._snapshot = snapshot
        self._role = role
        self._kpis = _registry(kpis)
        self._leader_tail = _registry(health, LeaderFlag(leading=True), own=True)
        stranded = HealthExposition(snapshot, folding=False)
        self._stranded_tail = _registry(stranded, LeaderFlag(leading=False), own=True)
        self._standby_page = _registry(LeaderFlag(leading=False), own=True)
        self._lock = threading.Lock()
        self._rendered: Rendered | None = None

    def render(self) -> Rendered:
        """Render the KPI families as they are now (one render at a time)."""
        with self._lock:
            version = self._snapshot.version  # read first: a change meanwhile renders again
            text = generate_latest(self._kpis)
            compressor = zlib.compressobj(6, zlib.DEFLATED, GZIP)
            self._rendered = Rendered(version, text, compressor.compress(text), compressor)
            return self._rendered

    def run(self, stop: threading.Event) -> None:
        """Render after every change of the values until ``stop``."""
        seen = self.render().version
        while not stop.is_set():
            version = self._snapshot.wait_changed(seen, WAKE_SECONDS)
            if version != seen:
                seen = self.render().version

    def body(self, gzip: bool) -> bytes:
        role = self._role()
        if role not in ROLES:
            raise ValueError(f"unknown replica role {role!r}: expected one of {ROLES}")
        if role == "standby":
            return _standby_body(generate_latest(self._standby_page), gzip)
        rendered = self._rendered
        if rendered is None or rendered.version < self._snapshot.loaded_version:
            # Just elected: the renderer may not have woken since the load yet.
            rendered = self.render()
        tail = generate_latest(self._leader_tail if role == "leader" else self._stranded_tail)
        if not gzip:
            return rendered.text + tail
        finish = rendered.gzip_state.copy()
        return rendered.gzip_head + finish.compress(tail) + finish.flush()

    @property
    def ready(self) -> bool:
        """/metrics serves what this replica should: a standby's page at once, a leader's
        once the snapshot holds the committed values (loaded from ops at least once; a
        fold only ever follows a load), so it never serves zeros for KPIs."""
        return self._role() == "standby" or self._snapshot.loaded_version > 0


def _standby_body(text: bytes, gzip: bool) -> bytes:
    if not gzip:
        return text
    compressor = zlib.compressobj(6, zlib.DEFLATED, GZIP)
    return compressor.compress(text) + compressor.flush()


def _registry(*collectors: PrometheusCollector, own: bool = False) -> CollectorRegistry:
    """A registry of ``collectors``; with ``own``, also the replica's own families (build
    information and the process)."""
    registry = CollectorRegistry(auto_describe=True)
    for collector in collectors:
        registry.register(collector)
    if own:
        register_process_metrics(registry)
    return registry
