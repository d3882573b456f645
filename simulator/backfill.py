"""``opsdeck simulate --backfill``: deterministic history, loaded with COPY.

The same seed, scale, days and end time always give the same rows. History is only
written into an empty platform schema: its event times lie in the past, and an exporter
that has already folded past them would never count them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime

import pyarrow as pa

from core.application_names import SIMULATOR_BACKFILL
from core.database import connect
from core.settings import SimulatorSettings
from simulator import vocabulary
from simulator.activity_history import (
    api_log_slices,
    calendar_syncs_table,
    service_checks_table,
    sessions_table,
    support_tickets_table,
)
from simulator.bookings_history import build_bookings
from simulator.clock import DAY, SECOND
from simulator.copy_loader import (
    CopyLoader,
    LoadStats,
    Progress,
    defer_indexes,
    rebuild_indexes,
)
from simulator.payments_history import (
    build_transactions,
    chargebacks_table,
    payouts_table,
    plan_intents,
    psp_feed_table,
    refunds_table,
)
from simulator.seasonality import to_micros
from simulator.world import (
    build_world,
    customers_table,
    locations_table,
    resources_table,
    staff_table,
)

PLATFORM_TABLES = (
    "locations",
    "staff",
    "resources",
    "customers",
    "site_sessions",
    "bookings",
    "transactions",
    "refunds",
    "chargebacks",
    "psp_transactions",
    "payouts",
    "api_logs",
    "calendar_syncs",
    "service_checks",
    "support_tickets",
)
LOADER_THREADS = 3


class BackfillRefused(Exception):
    """The platform schema already holds data."""


@dataclass(frozen=True)
class BackfillPlan:
    days: float
    scale: vocabulary.Scale
    seed: int
    until: datetime

    @property
    def window(self) -> tuple[int, int]:
        end = to_micros(self.until)
        return end - int(self.days * DAY), end

    def rows(self, per_day: float) -> int:
        return round(per_day * self.days)

    def expected_rows(self) -> dict[str, int]:
        """Approximate row counts, for the progress bars."""
        s = self.scale
        return {
            "bookings": self.rows(s.bookings_per_day),
            "transactions": self.rows(s.transactions_per_day),
            "api_logs": self.rows(s.api_logs_per_day),
            "site_sessions": self.rows(s.sessions_per_day),
        }


def scale_at_rate(base: vocabulary.Scale, rate: float) -> vocabulary.Scale:
    """``base`` with every daily volume scaled to an average of ``rate`` payment attempts a
    second, the unit of the live stream's ``--rate``: a history at the rate of the traffic
    that follows it. The live stream derives its other volumes from the small scale's ratios,
    which scaling keeps; the world (locations, resources, customers) stays ``base``'s."""
    factor = rate * (DAY / SECOND) / base.transactions_per_day
    return replace(
        base,
        name=f"{base.name} at {rate:g}/s",
        bookings_per_day=base.bookings_per_day * factor,
        transactions_per_day=base.transactions_per_day * factor,
        api_logs_per_day=base.api_logs_per_day * factor,
        sessions_per_day=base.sessions_per_day * factor,
        tickets_per_day=base.tickets_per_day * factor,
        calendar_syncs_per_day=base.calendar_syncs_per_day * factor,
    )


def ensure_empty(url: str) -> None:
    with connect(url, application_name=SIMULATOR_BACKFILL) as conn:
        for table in PLATFORM_TABLES:
            if conn.execute(f"SELECT EXISTS (SELECT FROM platform.{table})").fetchone() == (True,):
                raise BackfillRefused(
                    f"platform.{table} already has rows; backfill writes history only into an "
                    "empty platform schema (use a fresh database)"
                )


def run_backfill(
    url: str, plan: BackfillPlan, simulator: SimulatorSettings, progress: Progress
) -> list[LoadStats]:
    """Generate and load the whole history; return per-table load figures."""
    ensure_empty(url)
    deferred = defer_indexes(url, PLATFORM_TABLES)
    loader = CopyLoader(url, progress)
    start_us, end_us = plan.window
    world = build_world(plan.scale, plan.seed)
    with ThreadPoolExecutor(LOADER_THREADS, thread_name_prefix="copy") as pool:
        jobs: list[Future[LoadStats]] = []

        def submit(table: str, parts: Callable[[], Iterable[pa.Table]], streams: int = 1) -> None:
            jobs.append(pool.submit(lambda: loader.load(table, parts(), streams)))

        dimensions = {
            "locations": locations_table(world, start_us),
            "staff": staff_table(world, plan.seed, start_us),
            "resources": resources_table(world, start_us),
            "customers": customers_table(world, plan.seed, start_us),
        }
        for table, rows in dimensions.items():
            loader.load(table, [rows])
        bookings = build_bookings(world, plan.seed, start_us, end_us, plan.days)
        submit("bookings", lambda: [bookings.table])
        intents = plan_intents(
            bookings,
            plan.rows(plan.scale.transactions_per_day),
            world.customers,
            (start_us, end_us),
            plan.seed,
            simulator.test_mode_share,
        )
        payments = build_transactions(intents, plan.seed, end_us)
        submit("transactions", lambda: [payments.table])
        submit(
            "psp_transactions",
            lambda: [
                psp_feed_table(
                    payments.table,
                    plan.seed,
                    end_us,
                    simulator.psp_missing_share,
                    simulator.psp_different_share,
                )
            ],
        )
        submit("refunds", lambda: [refunds_table(payments, plan.seed)])
        submit("chargebacks", lambda: [chargebacks_table(payments, plan.seed, end_us)])
        submit(
            "payouts", lambda: [payouts_table(world.location_currency, plan.seed, start_us, end_us)]
        )
        submit(
            "site_sessions",
            lambda: [
                sessions_table(
                    plan.scale, plan.seed, start_us, end_us, plan.rows(plan.scale.sessions_per_day)
                )
            ],
        )
        submit(
            "calendar_syncs",
            lambda: [
                calendar_syncs_table(
                    plan.scale,
                    plan.seed,
                    start_us,
                    end_us,
                    plan.rows(plan.scale.calendar_syncs_per_day),
                )
            ],
        )
        submit("service_checks", lambda: [service_checks_table(plan.seed, start_us, end_us)])
        submit(
            "support_tickets",
            lambda: [
                support_tickets_table(
                    plan.scale, plan.seed, start_us, end_us, plan.rows(plan.scale.tickets_per_day)
                )
            ],
        )
        for job in jobs:
            job.result()
    # The biggest table loads alone, on every core, so its figure is its own.
    loader.load(
        "api_logs",
        api_log_slices(
            plan.scale,
            plan.seed,
            start_us,
            end_us,
            plan.rows(plan.scale.api_logs_per_day),
            simulator.test_mode_share,
        ),
        streams=2,
    )
    rebuild_indexes(url, deferred, loader.stats)
    _finish(url)
    return [loader.stats[t] for t in PLATFORM_TABLES if t in loader.stats]


def _finish(url: str) -> None:
    """Move identity sequences past the loaded ids and refresh planner statistics."""
    with connect(url, application_name=SIMULATOR_BACKFILL, autocommit=True) as conn:
        for table in PLATFORM_TABLES:
            if table == "psp_transactions":
                continue
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('platform.{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM platform.{table}), false)"
            )
        conn.execute("ANALYZE " + ", ".join(f"platform.{t}" for t in PLATFORM_TABLES))
