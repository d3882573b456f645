"""``opsdeck simulate --live``: realistic traffic from many concurrent writers.

Each writer owns a connection and, every tick, writes one transaction holding its share of
new rows plus the follow-ups that came due (captures, confirmations, cancellations, refunds,
late PSP reports, ticket resolutions). It holds the transaction open for a random moment
before committing, so sequence ids commit out of order, as they do on a busy platform.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg

from core.application_names import SIMULATOR
from core.database import connect
from simulator import vocabulary
from simulator.copy_loader import CopyLoader
from simulator.live_context import LiveOptions, PlatformShape, Scheduler, Stats
from simulator.live_model import Anomalies
from simulator.live_writer import Batch, Writer
from simulator.occupancy import Occupancy, Resource
from simulator.psp_sender import PspSender
from simulator.queries import live as q
from simulator.world import (
    CURRENCY_FACTOR,
    build_world,
    customers_table,
    locations_table,
    resources_table,
    staff_table,
)

log = logging.getLogger(__name__)


class LiveSimulator:
    """Runs the writers until ``stop`` is set; ``report`` is called every few seconds."""

    def __init__(self, platform_url: str, ops_url: str, options: LiveOptions) -> None:
        self.platform_url = platform_url
        self.ops_url = ops_url
        self.options = options
        self.scheduler = Scheduler(options.speedup)
        self.stats = Stats()
        self.anomalies = Anomalies()
        self.psp_sender = (
            PspSender(options.psp_webhooks, options.seed) if options.psp_webhooks else None
        )
        self.shape = self._prepare()
        self.occupancy = self._occupancy()
        self._serials = itertools.count(1)
        self._serial_lock = threading.Lock()
        self.run_tag = np.base_repr(int(time.time() * 1000), 36).lower()

    def next_serial(self) -> int:
        with self._serial_lock:
            return next(self._serials)

    def _prepare(self) -> PlatformShape:
        """Make sure the dimensions exist and tidy what a stopped run left half-done."""
        with connect(self.platform_url, application_name=SIMULATOR, autocommit=True) as conn:
            customers, resources = conn.execute(q.DIMENSIONS).fetchone() or (0, 0)
            if not resources:
                _load_dimensions(self.platform_url, self.options.seed)
            conn.execute(q.SWEEP_UNPAID_BOOKINGS)
            self._catch_up_psp(conn)
            customers, _ = conn.execute(q.DIMENSIONS).fetchone() or (0, 0)
            currencies = _location_currencies(conn, self.options.seed)
            resource_rows = conn.execute(q.RESOURCES).fetchall()
        rng = random.Random(self.options.seed)
        return PlatformShape(
            resources=[
                Resource(
                    rid,
                    loc,
                    staff,
                    currencies.get(loc, "USD"),
                    int(rng.randrange(25, 150) * 100 * CURRENCY_FACTOR[currencies.get(loc, "USD")]),
                )
                for rid, loc, staff in resource_rows
            ],
            customers=int(customers),
            accounts=200,
        )

    def _catch_up_psp(self, conn: psycopg.Connection[Any]) -> None:
        """The PSP reports what a stopped run left unreported, the way this run reports."""
        if self.psp_sender is None:
            conn.execute(q.PSP_CATCH_UP)
            return
        for row in conn.execute(q.UNREPORTED_CHARGES).fetchall():
            self.psp_sender.submit(tuple(row), 0.0)

    def _occupancy(self) -> Occupancy:
        with connect(self.platform_url, application_name=SIMULATOR, autocommit=True) as conn:
            taken = conn.execute(q.TAKEN_SLOTS).fetchall()
        return Occupancy(self.shape.resources, taken)

    def refresh_anomalies(self) -> None:
        with connect(self.ops_url, application_name=SIMULATOR, autocommit=True) as conn:
            active = dict(conn.execute(q.ACTIVE_ANOMALIES).fetchall())
        self.anomalies.refresh(active, time.monotonic())

    def run(
        self, stop: threading.Event, report: Callable[[Counter[str], float], None]
    ) -> Counter[str]:
        self._refresh_anomalies_safely()
        writers = [Writer(self, index) for index in range(self.options.writers)]
        threads = [
            threading.Thread(target=w.loop, args=(stop,), name=f"writer-{w.index}") for w in writers
        ]
        if self.psp_sender is not None:
            threads.append(threading.Thread(target=self.psp_sender.run, args=(stop,)))
        for thread in threads:
            thread.start()
        started = time.monotonic()
        last_anomaly_check = 0.0
        try:
            while not stop.wait(0.5):
                if time.monotonic() - last_anomaly_check >= 1.0:
                    last_anomaly_check = time.monotonic()
                    self._refresh_anomalies_safely()
                report(self.stats.snapshot(), time.monotonic() - started)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        return self.stats.snapshot()

    def _refresh_anomalies_safely(self) -> None:
        try:
            self.refresh_anomalies()
        except psycopg.OperationalError as exc:
            log.warning("cannot read injected anomalies: %s", exc)


def _load_dimensions(url: str, seed: int) -> None:
    world = build_world(vocabulary.SCALES["small"], seed)
    loader = CopyLoader(url, lambda table, rows: None)
    start = int(time.time() * 1e6)
    loader.load("locations", [locations_table(world, start)])
    loader.load("staff", [staff_table(world, seed, start)])
    loader.load("resources", [resources_table(world, start)])
    loader.load("customers", [customers_table(world, seed, start)])
    with connect(url, application_name=SIMULATOR, autocommit=True) as conn:
        for table in ("locations", "staff", "resources", "customers"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('platform.{table}', 'id'), "
                f"(SELECT max(id) FROM platform.{table}))"
            )


def _location_currencies(conn: psycopg.Connection[Any], seed: int) -> dict[int, str]:
    found = {int(loc): str(cur).strip() for loc, cur in conn.execute(q.LOCATION_CURRENCIES)}
    world = build_world(vocabulary.SCALES["small"], seed)
    for index, currency in enumerate(world.location_currency):
        found.setdefault(index + 1, currency)
    return found


__all__ = ["Batch", "LiveOptions", "LiveSimulator", "Scheduler", "Stats"]
