"""The exporter process: collectors, engine, and the /metrics HTTP server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import partial

from core.settings import Settings
from exporters.collector import Collector
from exporters.collectors.activity import (
    ApiCollector,
    CalendarCollector,
    ServicesCollector,
    SupportCollector,
)
from exporters.collectors.bookings import BookingsCollector, SessionsCollector
from exporters.collectors.payments import PaymentsCollector
from exporters.collectors.reconciliation import ReconciliationCollector
from exporters.engine import Engine
from exporters.exposition import HealthExposition, KpiExposition, series_count
from exporters.families import kpi_families
from exporters.http import serve
from exporters.metrics_page import MetricsPage
from exporters.snapshot import Snapshot

log = logging.getLogger(__name__)
COLLECTORS: tuple[type[Collector], ...] = (
    BookingsCollector,
    SessionsCollector,
    PaymentsCollector,
    ReconciliationCollector,
    ApiCollector,
    CalendarCollector,
    ServicesCollector,
    SupportCollector,
)


def build_collectors(settings: Settings) -> list[Collector]:
    families = kpi_families(settings.exporter)
    collectors = [cls(settings, families) for cls in COLLECTORS]
    owned = [name for c in collectors for name in c.owned]
    missing = set(families) - set(owned)
    if missing or len(owned) != len(set(owned)):
        raise RuntimeError(f"every family needs exactly one collector; unowned: {sorted(missing)}")
    return collectors


def build_exposition(
    settings: Settings, collectors: Sequence[Collector], snapshot: Snapshot
) -> KpiExposition:
    families = kpi_families(settings.exporter)
    owners = {name: c.name for c in collectors for name in c.owned}
    return KpiExposition(families, owners, snapshot)


def report(kpis: KpiExposition, health: HealthExposition, budget: int) -> None:
    count = series_count(kpis, health)
    if count > budget:
        log.error("exposing %d series, over the budget of %d: check label values", count, budget)
    else:
        log.info("exposing %d series (budget %d)", count, budget)


def run_exporter(settings: Settings, host: str, port: int, stop: threading.Event) -> None:
    collectors = build_collectors(settings)
    snapshot = Snapshot(c.name for c in collectors)
    kpis, health = build_exposition(settings, collectors, snapshot), HealthExposition(snapshot)
    budget = settings.exporter.series_budget
    engine = Engine(settings, collectors, snapshot, partial(report, kpis, health, budget))
    page = MetricsPage(snapshot, kpis, health, role=engine.role)
    server, thread = serve(host, port, page)
    renderer = threading.Thread(target=page.run, args=(stop,), name="metrics-render")
    renderer.start()
    log.info("serving /metrics on http://%s:%d/metrics", host, port)
    try:
        engine.run(stop)
    finally:
        stop.set()
        snapshot.close()
        server.shutdown()
        server.server_close()
        thread.join()
        renderer.join()
