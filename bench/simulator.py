"""Simulator throughput: backfill small and medium, then live traffic at 2,000 attempts/s.

Runnable by anyone: uses DATABASE_URL when set (each run creates and drops its own
databases there), otherwise starts an embedded PostgreSQL. Prints a table; the figures go
into docs/benchmarks.md.

    python -m bench.simulator [--scales small,medium] [--live-rate 2000] [--live-seconds 60]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from core.database import libpq_url
from core.migrate import migrate
from core.settings import SimulatorSettings
from opsdeck.embedded import EmbeddedPostgres, free_port
from opsdeck.supervisor import Supervisor
from simulator.backfill import BackfillPlan, run_backfill
from simulator.live import LiveOptions, LiveSimulator
from simulator.vocabulary import SCALES

WARM_UP_SECONDS = 10.0


def _database(admin_url: str) -> tuple[str, str]:
    name = f"opsdeck_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = libpq_url(admin_url).rpartition("/")[0] + "/" + name
    migrate(url, url)
    return name, url


def _drop(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def bench_backfill(admin_url: str, scale: str) -> None:
    name, url = _database(admin_url)
    try:
        plan = BackfillPlan(30, SCALES[scale], 1, datetime.now(UTC).replace(microsecond=0))
        started = time.perf_counter()
        stats = run_backfill(url, plan, SimulatorSettings(), lambda table, rows: None)
        total = time.perf_counter() - started
        print(f"\nbackfill --backfill 30 --scale {scale}: {total:.1f} s in all")
        print(f"{'table':<18}{'rows':>12}{'COPY s':>9}{'COPY rows/s':>13}")
        for s in sorted(stats, key=lambda s: -s.rows):
            print(
                f"{s.table:<18}{s.rows:>12,}{s.copy_seconds:>9.1f}{s.rows / s.copy_seconds:>13,.0f}"
            )
        index_seconds = max(s.index_seconds for s in stats)
        rows = sum(s.rows for s in stats)
        api = next(s for s in stats if s.table == "api_logs")
        print(
            f"index rebuild after the load: {index_seconds:.1f} s; "
            f"all tables {rows:,} rows, {rows / total:,.0f} rows/s end to end; "
            f"api_logs COPY {api.rows / api.copy_seconds:,.0f} rows/s"
        )
    finally:
        _drop(admin_url, name)


def bench_live(admin_url: str, rate: float, seconds: float, writers: int) -> None:
    name, url = _database(admin_url)
    try:
        simulator = LiveSimulator(url, url, LiveOptions(rate=rate, writers=writers, seasonal=False))
        stop = threading.Event()
        marks: list[tuple[float, Counter[str]]] = []

        def report(counts: Counter[str], elapsed: float) -> None:
            marks.append((elapsed, counts))

        threading.Timer(WARM_UP_SECONDS + seconds, stop.set).start()
        simulator.run(stop, report)
        start = next(m for m in marks if m[0] >= WARM_UP_SECONDS)
        end = marks[-1]
        span = end[0] - start[0]
        delta = end[1] - start[1]
        print(
            f"\nlive --rate {rate:g} --writers {writers} --flat, {span:.0f} s after a "
            f"{WARM_UP_SECONDS:.0f} s warm-up:"
        )
        for table in (
            "transactions",
            "bookings",
            "api_logs",
            "site_sessions",
            "psp_transactions",
            "captures",
            "confirmations",
        ):
            print(f"  {table:<18}{delta[table] / span:>10,.0f}/s")
        print(f"  {'commits':<18}{simulator.stats.commits / (end[0]):>10,.0f}/s")
    finally:
        _drop(admin_url, name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", default="small,medium")
    parser.add_argument("--live-rate", type=float, default=2000)
    parser.add_argument("--live-seconds", type=float, default=60)
    parser.add_argument("--writers", type=int, default=8)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}")
    supervisor = Supervisor()
    try:
        if os.environ.get("DATABASE_URL"):
            admin_url = libpq_url(os.environ["DATABASE_URL"]).rpartition("/")[0] + "/postgres"
        else:
            root = Path(tempfile.mkdtemp(prefix="opsdeck-bench-"))
            pg = EmbeddedPostgres(root, free_port(0))
            pg.initialize()
            supervisor.start(pg.service(root / "postgres.log"))
            admin_url = pg.url.rpartition("/")[0] + "/postgres"
        with psycopg.connect(admin_url) as conn:
            print("postgres:", conn.execute("SHOW server_version").fetchone())
        for scale in [s for s in args.scales.split(",") if s]:
            bench_backfill(admin_url, scale)
        if args.live_rate > 0:
            bench_live(admin_url, args.live_rate, args.live_seconds, args.writers)
    finally:
        supervisor.stop_all()


if __name__ == "__main__":
    main()
