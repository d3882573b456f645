"""The KPI exporter at the platform's own rate: live traffic at each ``--rates`` payment
attempts a second over a history, opsdeck's exporter folding beside it.

Per rate it prints, with the traffic running:

- the rate reached: payment attempts (``platform.transactions`` rows) and all platform rows
  written per second, read from PostgreSQL's table statistics over the window;
- the machine's CPU: the share of all cores busy (``/proc/stat``) with the traffic alone,
  and PostgreSQL's CPU s/min with the traffic alone and with the exporter folding beside it;
- the exporter's own backends' CPU s/min, and CPU seconds per 1,000 platform rows written
  (every row written is folded by a collector or passed over by its cursor);
- the commit horizon's lag behind the clock, sampled every 0.5 s with the horizon's own
  query (``core/queries/horizon.py``): no event after the horizon can be folded, so it is the
  floor under freshness; with the share of samples in which the simulator's own open
  transactions held it back;
- freshness p50/p99: a marker booking inserted, ``/metrics`` polled every 50 ms until it
  counts (``bench/exporter.py``).

After each rate the traffic stops, the exporter folds the last of it, and every value is
checked against plain SQL ("all values equal plain SQL", or the run fails). With
``--qe-rates`` query-exporter scheduled every 15 s runs the same queries as in
``bench/exporter.py`` beside the same traffic: its own backends' CPU and its freshness.

    python -m bench.exporter_rates --scale large --reuse --keep-state --rates 600,2000

The traffic comes from ``--processes`` simulator processes sharing the rate (each with its
own seed and ``--writers`` writer threads), for when one process cannot hold it.
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.exporter import (
    QE_APPLICATION,
    Opsdeck,
    QueryExporter,
    check_values,
    database,
    freshness,
    pct,
    query_exporter_binary,
    traffic,
    wait_for,
)
from bench.history import admin_url as bench_admin_url
from bench.pgcpu import CpuWindow, cpu_window, machine_cpu, postmaster_pid
from core.application_names import EXPORTER, SIMULATOR
from core.horizon import ignored_applications
from core.settings import Settings
from opsdeck.supervisor import Supervisor

REPO = Path(__file__).resolve().parent.parent

# Rows written to the platform so far: payment attempts, and every row inserted or updated.
PLATFORM_WRITES = """
SELECT coalesce(sum(n_tup_ins) FILTER (WHERE relname = 'transactions'), 0),
       coalesce(sum(n_tup_ins + n_tup_upd), 0)
FROM pg_stat_user_tables WHERE schemaname = 'platform'
"""
# How far the commit horizon trails the clock, and whether the simulator's open
# transactions are what holds it (the horizon's own reading, with no margin).
HORIZON_LAG = """
SELECT extract(epoch FROM clock_timestamp() - least(statement_timestamp(), min(xact_start))),
       coalesce(min(xact_start) FILTER (WHERE application_name = %(simulator)s)
                <= min(xact_start), false)
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
  AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
  AND NOT (application_name = ANY(%(ignored)s::text[]))
"""


@dataclass
class Window:
    """One measured stretch of steady traffic."""

    seconds: float
    cpu: CpuWindow
    attempts: int  # payment attempts inserted
    rows: int  # platform rows inserted or updated
    busy: float  # share of all cores busy
    lags: list[float] = field(default_factory=list)
    held_by_traffic: int = 0  # lag samples where a simulator transaction was the oldest

    def per_second(self, count: int) -> float:
        return count / self.seconds

    def own_per_1000_rows(self) -> float:
        """The contender's own CPU seconds per 1,000 platform rows written."""
        return self.cpu.own * self.seconds / 60 / max(self.rows, 1) * 1000


@dataclass
class RateRow:
    name: str
    rate: float
    alone: Window
    beside: Window
    freshness: list[float]


def _writes(url: str) -> tuple[int, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        row = conn.execute(PLATFORM_WRITES).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@contextmanager
def horizon_lags(url: str, ignored: list[str]) -> Iterator[tuple[list[float], list[bool]]]:
    """The horizon's lag, sampled every 0.5 s in a thread while the block runs."""
    lags: list[float] = []
    held: list[bool] = []
    stop = threading.Event()
    conn = psycopg.connect(url, autocommit=True, application_name=EXPORTER)

    def sample() -> None:
        while not stop.wait(0.5):
            row = conn.execute(HORIZON_LAG, {"simulator": SIMULATOR, "ignored": ignored}).fetchone()
            if row is not None and row[0] is not None:
                lags.append(float(row[0]))
                held.append(bool(row[1]))

    thread = threading.Thread(target=sample, name="horizon-lag", daemon=True)
    thread.start()
    try:
        yield lags, held
    finally:
        stop.set()
        thread.join()
        conn.close()


def measure(url: str, admin: str, application: str, seconds: float, ignored: list[str]) -> Window:
    """A CPU window of ``seconds`` with the platform's writes, the machine's CPU and the
    horizon's lag over the same stretch."""
    attempts, rows = _writes(url)
    busy, total = machine_cpu()
    started = time.monotonic()
    with horizon_lags(url, ignored) as (lags, held):
        cpu = cpu_window(postmaster_pid(admin), seconds, admin, application)
    elapsed = time.monotonic() - started
    end_busy, end_total = machine_cpu()
    end_attempts, end_rows = _writes(url)
    return Window(
        elapsed,
        cpu,
        end_attempts - attempts,
        end_rows - rows,
        (end_busy - busy) / max(end_total - total, 1e-9),
        lags,
        sum(held),
    )


HEADER = (
    f"{'exporter':<28}{'--rate':>7}{'attempts/s':>11}{'rows/s':>9}{'cores busy':>11}"
    f"{'PG alone':>9}{'PG with':>9}{'own s/min':>10}{'own s/1k rows':>14}"
    f"{'horizon lag p50/p99 s':>22}{'held by traffic':>16}{'fresh p50/p99 s':>17}"
)


def row(r: RateRow) -> str:
    lags = r.beside.lags
    held = r.beside.held_by_traffic / max(len(lags), 1)
    return (
        f"{r.name:<28}{r.rate:>7.0f}{r.alone.per_second(r.alone.attempts):>11,.0f}"
        f"{r.alone.per_second(r.alone.rows):>9,.0f}{r.alone.busy:>11.0%}"
        f"{r.alone.cpu.total:>9.2f}{r.beside.cpu.total:>9.2f}{r.beside.cpu.own:>10.2f}"
        f"{r.beside.own_per_1000_rows():>14.3f}"
        f"{f'{pct(lags, 0.5):.2f} / {pct(lags, 0.99):.2f}':>22}{held:>16.0%}"
        f"{f'{pct(r.freshness, 0.5):.2f} / {pct(r.freshness, 0.99):.2f}':>17}"
    )


@dataclass
class RateRun:
    """One history's run: where it lives and the command line."""

    admin: str
    url: str
    args: argparse.Namespace
    logs: Path
    ignored: list[str]
    serial: list[int]

    def window(self, application: str) -> Window:
        return measure(self.url, self.admin, application, self.args.steady, self.ignored)

    @contextmanager
    def traffic(self, rate: float, tag: str) -> Iterator[None]:
        log = self.logs / f"traffic-rate-{rate:g}{tag}.log"
        with traffic(self.url, rate, log, self.args.processes, self.args.writers):
            time.sleep(self.args.warmup)
            yield


def opsdeck_at(run: RateRun, rate: float, settings: Settings) -> RateRow:
    """The traffic alone first, then opsdeck started beside it (from its saved state);
    after the traffic stops, every value against plain SQL."""
    opsdeck: Opsdeck | None = None
    try:
        with run.traffic(rate, ""):
            alone = run.window(SIMULATOR)
            opsdeck = Opsdeck(run.url, run.logs / f"exporter-rate-{rate:g}.log")
            result = _opsdeck_beside(run, rate, opsdeck, alone)
        stopped = time.time()
        wait_for(lambda: opsdeck.caught_up(stopped + 1), 900, "opsdeck to fold the last traffic")
        time.sleep(2)
        check_values(opsdeck, run.url, settings, f"rate {rate:g}")
        return result
    finally:
        if opsdeck is not None:
            opsdeck.stop()


def _opsdeck_beside(run: RateRun, rate: float, opsdeck: Opsdeck, alone: Window) -> RateRow:
    args = run.args
    within = args.caught_up_within
    wait_for(lambda: opsdeck.caught_up(time.time() - within), 3600, "opsdeck to catch up")
    beside = run.window(EXPORTER)
    fresh = freshness(opsdeck, run.url, args.markers, run.serial, args.give_up)
    return RateRow("opsdeck", rate, alone, beside, fresh)


def query_exporter_at(run: RateRun, rate: float, settings: Settings) -> RateRow:
    binary = query_exporter_binary()
    log = run.logs / f"qe-rate-{rate:g}.log"
    with run.traffic(rate, "-qe"):
        alone = run.window(SIMULATOR)
        qe = QueryExporter(binary, run.url, 15, settings, log)
        try:
            wait_for(qe.has_values, 3600, f"{qe.name} to publish")
            beside = run.window(QE_APPLICATION)
            fresh = freshness(qe, run.url, run.args.qe_markers, run.serial, run.args.give_up)
        finally:
            qe.stop()
    return RateRow(qe.name, rate, alone, beside, fresh)


def rates(text: str) -> list[float]:
    values = [float(v) for v in text.split(",") if v]
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"rates must be positive numbers, got {text!r}")
    return values


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--scale", default="large")
    p.add_argument("--rates", type=rates, default=[600.0, 2000.0])
    p.add_argument("--qe-rates", type=rates, default=[600.0])
    p.add_argument("--processes", type=int, default=1, help="simulator processes")
    p.add_argument("--writers", type=int, default=8, help="writer threads per process")
    p.add_argument("--steady", type=float, default=60.0, help="seconds of each window")
    p.add_argument("--warmup", type=float, default=15.0, help="seconds of traffic first")
    p.add_argument("--markers", type=int, default=40)
    p.add_argument("--qe-markers", type=int, default=2)
    p.add_argument("--give-up", type=float, default=600.0)
    p.add_argument(
        "--caught-up-within",
        type=float,
        default=30.0,
        help="seconds behind the clock at which opsdeck counts as caught up with the history",
    )
    p.add_argument("--reuse", action="store_true", help="reuse an earlier run's history")
    p.add_argument(
        "--keep-state", action="store_true", help="with --reuse: keep opsdeck's folded state"
    )
    return p


def main() -> None:
    args = parser().parse_args()
    print(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}, "
        f"Python {platform.python_version()}"
    )
    settings = Settings()
    logs = REPO / ".opsdeck" / "bench" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor()
    rows: list[RateRow] = []
    try:
        admin = bench_admin_url(supervisor)
        with psycopg.connect(admin) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        print(f"PostgreSQL {version[0] if version else '?'}", flush=True)
        url = database(admin, args.scale, args.reuse, args.keep_state)
        ignored = ignored_applications(settings.exporter)
        run = RateRun(admin, url, args, logs, ignored, [int(time.time()) % 100_000])
        print(HEADER, flush=True)
        for rate in args.rates:
            rows.append(opsdeck_at(run, rate, settings))
            print(row(rows[-1]), flush=True)
            if rate in args.qe_rates:
                rows.append(query_exporter_at(run, rate, settings))
                print(row(rows[-1]), flush=True)
    finally:
        supervisor.stop_all()
    print(f"\n{args.scale}: the exporter at the platform's rate")
    print(HEADER)
    for r in rows:
        print(row(r))


if __name__ == "__main__":
    main()
