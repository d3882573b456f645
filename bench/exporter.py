"""Exporter benchmark: opsdeck against query-exporter, on the same data and the same KPIs.

For each scale (simulator history of 30 days) and each contender -- opsdeck's exporter,
query-exporter 5.0.2 with the plain SQL run on every scrape, and the same scheduled every
15 s -- it measures, with live traffic running: scrape latency p50/p99, freshness p50/p99
(a marker row inserted, /metrics polled every 50 ms until it counts), PostgreSQL CPU
seconds per minute of steady state (above the traffic's own; that of the contender's own
backends, found by application_name; and its reads: PostgreSQL 18's io workers above the
same load without it), and exporter RSS. Then it
stops the traffic and checks every opsdeck value against the plain SQL; any difference
fails the run. With ``--idle`` seconds (the default: 60), opsdeck and query-exporter every
15 s are measured again with no traffic at all (CPU above PostgreSQL's own with nothing
connected, then freshness of markers inserted into the idle platform), and each row says
how many times opsdeck's cost (own backends and reads) the contender's is under the same
load. A query-exporter that publishes nothing within ``--give-up`` seconds is measured while
its queries run, with freshness "never".

    python -m bench.exporter --scales medium,large

Uses DATABASE_URL's server when set (it must run on this machine: CPU is read from /proc),
else an embedded PostgreSQL. query-exporter is installed into .opsdeck/bench/qe on first use.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import psycopg
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.history import admin_url as bench_admin_url
from bench.history import history
from bench.pgcpu import CpuWindow, cpu_window, postmaster_pid, rss_mib
from bench.plain_sql import plain_values, query_exporter_config
from core.application_names import EXPORTER as EXPORTER_APPLICATION
from core.application_names import SIMULATOR as TRAFFIC_APPLICATION
from core.database import libpq_url
from core.settings import Settings
from exporters.families import NO_CURRENCY
from opsdeck.embedded import free_port
from opsdeck.supervisor import Supervisor

REPO = Path(__file__).resolve().parent.parent
QE_VERSION = "5.0.2"
MARKER_METRIC = "opsdeck_booked_revenue_cents_total"
QE_APPLICATION = "query-exporter"  # the application_name of query-exporter's connections


@dataclass
class Result:
    name: str
    load: str = "traffic"  # "traffic": live traffic running; "idle": nothing commits
    scrapes: list[float] = field(default_factory=list)
    freshness: list[float] = field(default_factory=list)
    cpu_per_minute: float = 0.0  # PostgreSQL's CPU s/min above the traffic's own
    own_cpu_per_minute: float = 0.0  # the CPU s/min of the contender's own backends
    reads_cpu_per_minute: float = 0.0  # the io workers' CPU s/min above the baseline's
    rss_mib: float = 0.0
    note: str = ""

    def measure_cpu(self, window: CpuWindow, baseline: CpuWindow) -> None:
        """Figures from ``window``, taken with the contender running, against ``baseline``,
        taken without it under the same load (the traffic alone, or nothing connected).

        PostgreSQL 18's io workers do every client's reads; what they spend above the
        baseline is the contender's reads, so they count in its cost."""
        self.cpu_per_minute = window.total - baseline.total
        self.own_cpu_per_minute = window.own
        self.reads_cpu_per_minute = max(0.0, window.io - baseline.io)

    @property
    def cost(self) -> float:
        """The contender's PostgreSQL CPU s/min: its own backends and its reads."""
        return self.own_cpu_per_minute + self.reads_cpu_per_minute


def cost_ratio(other: Result, opsdeck: Result) -> float:
    """How many times opsdeck's cost ``other``'s PostgreSQL cost is."""
    return other.cost / max(opsdeck.cost, 1e-3)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- data ------------------------------------------------------------------------------


def database(admin_url: str, scale: str, reuse: bool, keep_state: bool) -> str:
    url, reused = history(admin_url, scale, reuse)
    if reused and not keep_state:
        _reset_ops(url)
    return url


def _reset_ops(url: str) -> None:
    """Start the exporter from scratch on reused data (its state is not part of the data)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE ops.kpi_values, ops.kpi_cursors, ops.kpi_recon, ops.kpi_recon_minutes, "
            "ops.kpi_booking_conflicts"
        )


def opsdeck_env(url: str) -> dict[str, str]:
    """This environment without opsdeck's own settings: an opsdeck process on ``url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSDECK_")}
    env.update(DATABASE_URL=url, PYTHONPATH=str(REPO))
    env.pop("PLATFORM_DATABASE_URL", None)
    return env


@contextmanager
def traffic(
    url: str, rate: float, log: Path, processes: int = 1, writers: int = 8
) -> Iterator[None]:
    """Live traffic from its own processes (``processes`` of them sharing ``rate``, each
    with its own seed): their writer threads share no GIL with the client that times the
    scrapes."""
    running = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "opsdeck",
                "simulate",
                "--live",
                "--flat",
                "--rate",
                str(rate / processes),
                "--writers",
                str(writers),
                "--seed",
                str(1 + index),
            ],
            env=opsdeck_env(url),
            cwd=REPO,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        for index in range(processes)
    ]
    try:
        yield
    finally:
        for process in running:
            process.send_signal(signal.SIGINT)
        for process in running:
            process.wait(timeout=120)


# No simulated booking is in "no currency", so marker rows land in revenue{currency="other"}
# and nowhere else.
MARKER_CURRENCY = NO_CURRENCY


def insert_marker(url: str, serial: int) -> None:
    """A confirmed booking in a currency no traffic uses: it moves revenue{currency="other"}."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO platform.bookings (resource_id, customer_id, location_id, start_at, end_at,
                   status, amount_cents, currency, confirmed_at)
               SELECT r.id, 1, r.location_id, now() + (400 * 24 + %s) * interval '1 hour',
                      now() + (400 * 24 + %s) * interval '1 hour' + interval '30 minutes',
                      'confirmed', 1, %s, now()
               FROM platform.resources r ORDER BY r.id LIMIT 1""",
            (serial, serial, MARKER_CURRENCY),
        )


# -- contenders ------------------------------------------------------------------------


class Contender:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    client: httpx.Client  # one kept-alive connection, as Prometheus scrapes

    def scrape(self, timeout: float = 900) -> str:
        response = self.client.get(f"http://127.0.0.1:{self.port}/metrics", timeout=timeout)
        response.raise_for_status()
        return response.text

    def marker_value(self, text: str) -> float:
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == MARKER_METRIC and sample.labels.get("currency") == "other":
                    total += sample.value
        return total

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Opsdeck(Contender):
    name = "opsdeck"

    def __init__(self, url: str, log: Path) -> None:
        self.port = free_port(0)
        self.client = httpx.Client()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "opsdeck", "exporter", "--port", str(self.port)],
            env=opsdeck_env(url),
            cwd=REPO,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def caught_up(self, since: float) -> bool:
        try:
            text = self.scrape(timeout=5)
        except httpx.HTTPError:
            return False
        lags = [
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "opsdeck_collector_lag_seconds"
        ]
        ups = [
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "opsdeck_collector_up"
        ]
        return bool(lags) and all(ups) and all(time.time() - lag > since for lag in lags)


class QueryExporter(Contender):
    def __init__(
        self, binary: Path, url: str, interval: int | None, settings: Settings, log: Path
    ) -> None:
        self.name = "query-exporter, every 15 s" if interval else "query-exporter, on scrape"
        self.port = free_port(0)
        self.client = httpx.Client()
        dsn = "postgresql+psycopg2://" + libpq_url(url).partition("://")[2]
        dsn += ("&" if "?" in dsn else "?") + f"application_name={QE_APPLICATION}"
        config = Path(tempfile.mkdtemp(prefix="qe-")) / "config.yaml"
        config.write_text(yaml.safe_dump(query_exporter_config(settings, dsn, interval)))
        self.process = subprocess.Popen(
            [
                str(binary),
                "--config",
                str(config),
                "-H",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-L",
                "warning",
            ],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            env=without_pythonpath(),
        )

    def has_values(self) -> bool:
        if self.process.poll() is not None:
            raise SystemExit(f"{self.name} exited with status {self.process.returncode}")
        try:
            return "opsdeck_bookings_confirmed_total{" in self.scrape(timeout=900)
        except httpx.HTTPError:
            return False


def without_pythonpath() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


def query_exporter_binary() -> Path:
    venv = REPO / ".opsdeck" / "bench" / "qe"
    binary = venv / "bin" / "query-exporter"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(venv / "bin" / "pip"),
                "install",
                "--quiet",
                f"query-exporter=={QE_VERSION}",
                "psycopg2-binary",
            ],
            check=True,
            env=without_pythonpath(),  # its resolver would weigh the checkout's own package
        )
    return binary


# -- measurements ----------------------------------------------------------------------


def within(condition: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until ``condition`` came true, asked every 0.5 s; None if not in ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    took = within(condition, timeout)
    if took is None:
        raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
    return took


def time_scrapes(
    contender: Contender, count: int, budget: float, pace: float = 0.0, minimum: int = 3
) -> list[float]:
    timings: list[float] = []
    deadline = time.monotonic() + budget
    while len(timings) < count and (time.monotonic() < deadline or len(timings) < minimum):
        started = time.perf_counter()
        contender.scrape()
        timings.append(time.perf_counter() - started)
        time.sleep(max(0.0, pace - timings[-1]))
    return timings


def freshness(
    contender: Contender, url: str, markers: int, serial: list[int], give_up: float
) -> list[float]:
    """Seconds from inserting a marker row to the first scrape that counts it. A marker
    not counted within ``give_up`` seconds is recorded as infinite (printed ``inf``) and
    ends the measurement: the contender does not keep up, and more markers would only
    take as long."""
    delays: list[float] = []
    for _ in range(markers):
        before = contender.marker_value(contender.scrape())
        serial[0] += 1
        insert_marker(url, serial[0])
        inserted = time.monotonic()
        while contender.marker_value(contender.scrape()) <= before:
            if time.monotonic() - inserted > give_up:
                print(f"  {contender.name}: a marker was not counted within {give_up:.0f} s")
                return [*delays, math.inf]
            time.sleep(0.05)
        delays.append(time.monotonic() - inserted)
    return delays


# -- the run ---------------------------------------------------------------------------


@dataclass
class Run:
    """One scale's run: its servers, arguments and marker serials."""

    admin_url: str
    url: str
    postmaster: int
    args: argparse.Namespace
    serial: list[int]

    def cpu(
        self, application: str, seconds: float, load: Callable[[], object] | None = None
    ) -> CpuWindow:
        return cpu_window(self.postmaster, seconds, self.admin_url, application, load)


def run_scale(admin_url: str, scale: str, args: argparse.Namespace, logs: Path) -> list[Result]:
    settings = Settings()
    url = database(admin_url, scale, args.reuse, args.keep_state)
    print(HEADER, flush=True)
    postmaster = postmaster_pid(admin_url)
    serial = [int(time.time()) % 100_000]
    run = Run(admin_url, url, postmaster, args, serial)
    results: list[Result] = []
    quiet = CpuWindow(0.0, 0.0)
    if args.idle:
        quiet = run.cpu(TRAFFIC_APPLICATION, args.idle)
        print(
            f"[{scale}] nothing connected: {quiet.total:.2f} PostgreSQL CPU s/min "
            f"(io workers {quiet.io:.2f})",
            flush=True,
        )
    with traffic(url, args.rate, logs / f"traffic-{scale}.log"):
        alone = run.cpu(TRAFFIC_APPLICATION, args.steady)
        print(
            f"[{scale}] traffic alone: {alone.total:.2f} PostgreSQL CPU s/min "
            f"({alone.own:.2f} in the traffic's own backends, io workers {alone.io:.2f})",
            flush=True,
        )

        opsdeck = Opsdeck(url, logs / f"opsdeck-{scale}.log")
        results.append(opsdeck_under_traffic(opsdeck, run, alone, scale))

    try:
        stopped = time.time()
        wait_for(lambda: opsdeck.caught_up(stopped + 1), 600, "opsdeck to fold the last traffic")
        time.sleep(2)
        check_values(opsdeck, url, settings, scale)
        if args.idle:
            results.append(idle(opsdeck, EXPORTER_APPLICATION, run, quiet))
    finally:
        opsdeck.stop()

    binary = query_exporter_binary()
    with traffic(url, args.rate, logs / f"traffic-{scale}-qe.log"):
        for interval in (15, None) if args.on_scrape else (15,):
            qe = QueryExporter(binary, url, interval, settings, logs / f"qe-{scale}-{interval}.log")
            try:
                published = publishes(qe.name, qe.has_values, args.give_up)
                results.append(under_traffic(qe, interval, run, alone, published))
            finally:
                qe.stop()
    if args.idle:
        qe = QueryExporter(binary, url, 15, settings, logs / f"qe-{scale}-idle.log")
        try:
            published = publishes(qe.name, qe.has_values, args.give_up)
            results.append(idle(qe, QE_APPLICATION, run, quiet, published))
        finally:
            qe.stop()
    return results


def opsdeck_under_traffic(opsdeck: Opsdeck, run: Run, baseline: CpuWindow, scale: str) -> Result:
    args = run.args
    catch_up = wait_for(lambda: opsdeck.caught_up(time.time() - 2), 3600, "opsdeck to catch up")
    start = "from its saved state" if args.keep_state else "from nothing"
    print(f"[{scale}] opsdeck caught up {start} in {catch_up:.0f} s", flush=True)
    result = Result("opsdeck", note=f"caught up with the history {start} in {catch_up:.0f} s")
    result.measure_cpu(run.cpu(EXPORTER_APPLICATION, args.steady), baseline)
    result.scrapes = time_scrapes(opsdeck, args.scrapes, budget=600)
    result.freshness = freshness(opsdeck, run.url, args.markers, run.serial, args.give_up)
    result.rss_mib = rss_mib(opsdeck.process.pid)
    print(row(result), flush=True)
    return result


def freshness_if(published: bool, contender: Contender, run: Run, markers: int) -> list[float]:
    """:func:`freshness` of ``markers`` markers; "never" for one that never ``published``."""
    if not published:
        return [math.inf]
    return freshness(contender, run.url, markers, run.serial, run.args.give_up)


def publishes(name: str, has_values: Callable[[], bool], give_up: float) -> bool:
    """Whether a query-exporter publishes its first values within ``give_up`` seconds. One
    that does not (its first cycle outlasting its queries' timeout at ``large``) is still
    measured, while its queries run."""
    if within(has_values, give_up) is not None:
        return True
    print(f"  {name}: no value published within {give_up:.0f} s", flush=True)
    return False


def under_traffic(
    qe: QueryExporter, interval: int | None, run: Run, baseline: CpuWindow, published: bool
) -> Result:
    """``qe`` under traffic. One that never published is measured while its queries run:
    its CPU, its scrapes (of no values), and freshness "never"."""
    args = run.args
    result = Result(qe.name)
    if interval:
        result.measure_cpu(run.cpu(QE_APPLICATION, args.steady), baseline)
        result.scrapes = time_scrapes(qe, args.scrapes, budget=600)
        result.freshness = freshness_if(published, qe, run, args.qe_markers)
    else:
        # Prometheus scrapes every 15 s; each scrape runs every query.
        load = partial(time_scrapes, qe, 1, 0, pace=15.0)
        result.measure_cpu(run.cpu(QE_APPLICATION, max(args.steady, 60), load), baseline)
        result.scrapes = time_scrapes(
            qe, args.scrapes, args.on_scrape_budget, minimum=args.on_scrape_minimum
        )
        result.freshness = freshness(qe, run.url, args.on_scrape_markers, run.serial, args.give_up)
    result.rss_mib = rss_mib(qe.process.pid)
    print(row(result), flush=True)
    return result


def idle(
    contender: Contender, application: str, run: Run, quiet: CpuWindow, published: bool = True
) -> Result:
    """``contender`` with no traffic: the CPU window first (after the settling of what the
    traffic left, autovacuum included), then markers into the idle platform (freshness
    "never" for one that has not ``published`` a value)."""
    args = run.args
    time.sleep(args.settle)
    result = Result(contender.name, load="idle")
    result.measure_cpu(run.cpu(application, args.idle), quiet)
    result.scrapes = time_scrapes(contender, args.scrapes, budget=60)
    markers = args.markers if isinstance(contender, Opsdeck) else args.qe_markers
    result.freshness = freshness_if(published, contender, run, markers)
    result.rss_mib = rss_mib(contender.process.pid)
    print(row(result), flush=True)
    return result


def check_values(opsdeck: Opsdeck, url: str, settings: Settings, scale: str) -> None:
    served: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(opsdeck.scrape()):
        for sample in family.samples:
            if sample.name.startswith("opsdeck_") and not sample.name.startswith(
                ("opsdeck_collector", "opsdeck_exporter", "opsdeck_build_info")
            ):
                served[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    with psycopg.connect(url) as conn:
        expected = plain_values(conn, settings)
    wrong = [
        (k, served.get(k, 0.0), v)
        for k, v in sorted(expected.items())
        if abs(served.get(k, 0.0) - v) > 1e-6 * max(1.0, abs(v))
    ]
    extra = [k for k, v in served.items() if k not in expected and v != 0]
    if wrong or extra:
        for k, got, want in wrong[:20]:
            print(f"  DIFFERS {k}: opsdeck {got} != plain SQL {want}")
        for k in extra[:20]:
            print(f"  ONLY IN OPSDECK {k}: {served[k]}")
        raise SystemExit(f"[{scale}] opsdeck values differ from plain SQL")
    print(f"[{scale}] all values equal plain SQL ({len(expected)} series checked)", flush=True)


HEADER = (
    f"{'exporter':<30}{'load':<9}{'scrapes':>8}{'p50 ms':>10}{'p99 ms':>10}{'fresh p50 s':>12}"
    f"{'fresh p99 s':>12}{'PG CPU s/min':>14}{'own s/min':>11}{'reads s/min':>13}{'x opsdeck':>11}"
    f"{'RSS MiB':>9}"
)


def row(r: Result, opsdeck: Result | None = None) -> str:
    """One line of the table; the ratio column against ``opsdeck`` under the same load."""
    ratio = f"{cost_ratio(r, opsdeck):,.1f}x" if opsdeck is not None and opsdeck is not r else ""
    return (
        f"{r.name:<30}{r.load:<9}{len(r.scrapes):>8}{pct(r.scrapes, 0.5) * 1000:>10.1f}"
        f"{pct(r.scrapes, 0.99) * 1000:>10.1f}{pct(r.freshness, 0.5):>12.2f}"
        f"{pct(r.freshness, 0.99):>12.2f}{r.cpu_per_minute:>14.2f}"
        f"{r.own_cpu_per_minute:>11.2f}{r.reads_cpu_per_minute:>13.2f}{ratio:>11}{r.rss_mib:>9.0f}"
    )


def table(results: list[Result]) -> list[str]:
    """The rows, those with traffic first, each with its ratio to opsdeck's row of the
    same load."""
    opsdeck = {r.load: r for r in results if r.name == "opsdeck"}
    ordered = sorted(results, key=lambda r: r.load != "traffic")
    return [row(r, opsdeck.get(r.load)) for r in ordered]


def report(scale: str, results: list[Result]) -> None:
    print(f"\n{scale}: scrape latency, freshness and PostgreSQL cost, with live traffic and idle")
    print(
        "(PG CPU: all of PostgreSQL above the traffic alone, or idle above nothing connected;"
        " own: the contender's backends; reads: the io workers above the same load without it;"
        " x opsdeck: own + reads against opsdeck's, same load)"
    )
    print(HEADER)
    for line in table(results):
        print(line)
    opsdeck = results[0]
    print(
        f"  {opsdeck.note}; freshness p50 over {len(opsdeck.freshness)} markers "
        f"(mean {statistics.mean(opsdeck.freshness):.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", default="medium,large")
    parser.add_argument(
        "--rate", type=float, default=100.0, help="live payment attempts per second"
    )
    parser.add_argument("--steady", type=float, default=60.0, help="seconds of each CPU window")
    parser.add_argument(
        "--idle",
        type=float,
        default=60.0,
        help="seconds of each CPU window with no traffic (0: no idle rows)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=15.0,
        help="seconds between stopping the traffic and an idle CPU window",
    )
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--markers", type=int, default=40)
    parser.add_argument("--qe-markers", type=int, default=8)
    parser.add_argument("--on-scrape-budget", type=float, default=300.0)
    parser.add_argument("--reuse", action="store_true", help="reuse an earlier run's history")
    parser.add_argument(
        "--keep-state",
        action="store_true",
        help="with --reuse: keep opsdeck's folded state (the initial fold is not measured)",
    )
    parser.add_argument("--on-scrape-markers", type=int, default=3)
    parser.add_argument(
        "--on-scrape",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure query-exporter running every query on each scrape",
    )
    parser.add_argument(
        "--give-up",
        type=float,
        default=1800.0,
        help="seconds after which a marker not yet counted is recorded as never (inf)",
    )
    parser.add_argument(
        "--on-scrape-minimum", type=int, default=3, help="scrapes on scrape, whatever the budget"
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}"
    )
    logs = REPO / ".opsdeck" / "bench" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor()
    try:
        admin_url = bench_admin_url(supervisor)
        with psycopg.connect(admin_url) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        print(f"PostgreSQL {version[0] if version else '?'}", flush=True)
        for scale in [s for s in args.scales.split(",") if s]:
            report(scale, run_scale(admin_url, scale, args, logs))
    finally:
        supervisor.stop_all()


if __name__ == "__main__":
    main()
