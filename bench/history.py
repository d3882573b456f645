"""The benchmarks' shared data: one PostgreSQL server and one simulator history per scale.

``bench/exporter.py`` and ``bench/drilldown_api.py`` read the same ``opsdeck_bench_<scale>``
database, so building the large history (tens of millions of rows) is paid once; ``--reuse``
keeps it between runs.
"""

from __future__ import annotations

import os
import time
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
from simulator.vocabulary import SCALES

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / ".opsdeck" / "bench"
HISTORY_DAYS = 30


def admin_url(supervisor: Supervisor) -> str:
    """DATABASE_URL's server when set (it must run on this machine: CPU is read from
    /proc), else the benchmarks' embedded PostgreSQL under .opsdeck/bench/."""
    if os.environ.get("DATABASE_URL"):
        return libpq_url(os.environ["DATABASE_URL"]).rpartition("/")[0] + "/postgres"
    (DATA / "logs").mkdir(parents=True, exist_ok=True)
    pg = EmbeddedPostgres(DATA / "postgres", free_port(55433))
    pg.initialize()
    supervisor.start(pg.service(DATA / "logs" / "postgres.log"))
    return pg.url.rpartition("/")[0] + "/postgres"


def history(admin: str, scale: str, reuse: bool) -> tuple[str, bool]:
    """The URL of ``opsdeck_bench_<scale>`` holding 30 days of history at ``scale``, and
    whether it was reused. Without ``reuse`` it is dropped and built again."""
    name = f"opsdeck_bench_{scale}"
    url = libpq_url(admin).rpartition("/")[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and reuse:
            print(f"[{scale}] reusing database {name}", flush=True)
            migrate(url, url)  # the history outlives code changes; the schema follows them
            return url, True
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    migrate(url, url)
    started = time.perf_counter()
    plan = BackfillPlan(HISTORY_DAYS, SCALES[scale], 1, datetime.now(UTC).replace(microsecond=0))
    stats = run_backfill(url, plan, SimulatorSettings(), lambda table, rows: None)
    rows = {s.table: s.rows for s in stats}
    print(
        f"[{scale}] history: {rows['bookings']:,} bookings, {rows['transactions']:,} "
        f"transactions, {rows['api_logs']:,} api_logs, loaded and indexed in "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return url, False
