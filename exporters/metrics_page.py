"""The /metrics body, rendered off the scrape path.

Rendering several hundred KPI series and compressing them costs milliseconds of Python per
scrape, which a busy exporter (eight fold threads) turns into tens. The KPI families only
change when a fold commits, so a renderer thread renders them once per change of the
snapshot, as text and as the start of a gzip stream; a scrape appends the few health series
(their lag is measured at scrape time) and the process's own families (``opsdeck_build_info``,
``process_*``, ``python_info``: read from memory and /proc, never the database) and sends
bytes.
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector as PrometheusCollector

from core.build_info import register_process_metrics
from exporters.snapshot import Snapshot

GZIP = 16 + zlib.MAX_WBITS  # zlib's gzip container: header, deflate, CRC-32 and size
WAKE_SECONDS = 1.0  # the renderer's check for stop if nobody closes the snapshot


@dataclass(frozen=True)
class Rendered:
    version: int
    text: bytes
    gzip_head: bytes  # the gzip stream's bytes so far
    gzip_state: zlib._Compress  # the compressor after ``text``, copied to finish a response


class MetricsPage:
    def __init__(
        self, snapshot: Snapshot, kpis: PrometheusCollector, health: PrometheusCollector
    ) -> None:
        self._snapshot = snapshot
        self._kpis = _registry(kpis)
        self._per_scrape = _registry(health)
        register_process_metrics(self._per_scrape)
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
        rendered = self._rendered or self.render()
        tail = generate_latest(self._per_scrape)
        if not gzip:
            return rendered.text + tail
        finish = rendered.gzip_state.copy()
        return rendered.gzip_head + finish.compress(tail) + finish.flush()

    @property
    def loaded(self) -> bool:
        """The snapshot holds the committed values: it was loaded from ops at least once
        (a fold only ever follows a load), so /metrics serves state rather than nothing."""
        return self._snapshot.version > 0


def _registry(collector: PrometheusCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    return registry
