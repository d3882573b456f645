"""Every dashboard loaded as Grafana loads it, over 30 days of opsdeck's series, timed.

    python -m bench.dashboards --scale large --reuse [--ranges 24h,7d,30d] [--loads 20]
        [--width 1600] [--boards opsdeck-payments,...] [--rebuild-tsdb]

The history is :mod:`bench.history`'s database; the Prometheus TSDB holding its series at
the 15 s scrape interval is built from it by :mod:`bench.prometheus_history` once per
scale (``.opsdeck/bench/tsdb-<scale>``, kept until ``--rebuild-tsdb``) and served by a real
Prometheus. Each committed dashboard is loaded over each range ending at the history's end
(:mod:`bench.dashboard_load`: variables, then every drawn panel, six at a time, PromQL to
Prometheus and SQL to PostgreSQL as Grafana's read-only role): one cold load, then
``--loads`` more. The table gives p50/p99 of the load time (until the last panel answered)
and the slowest panel; a board and range over the 2 s target also lists its five slowest
queries, expanded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.dashboard_load import Grafana, Load, grafana_pool, load
from bench.history import DATA, HISTORY_DAYS, REPO, admin_url, history
from bench.prometheus_history import build
from bench.prometheus_server import serve
from dashboards.catalog import BOARDS
from dashboards.grafana_time import SCREEN_WIDTH, Window, datasources, duration_ms
from opsdeck.supervisor import Supervisor
from simulator.vocabulary import SCALES

TARGET_SECONDS = 2.0
SCRAPE_STEP = 15.0
SLOWEST_QUERIES = 5


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Series:
    """Every load of one board over one range."""

    board: str
    length: str
    cold: Load | None = None
    warm: list[Load] = field(default_factory=list)

    def seconds(self) -> list[float]:
        return [w.seconds for w in self.warm]

    def panels(self) -> dict[str, list[float]]:
        found: dict[str, list[float]] = defaultdict(list)
        for run in self.warm:
            for panel in run.panels:
                found[panel.name].append(panel.seconds)
        return found

    def queries(self) -> dict[tuple[str, str, str], list[float]]:
        """(panel, ref + kind, expanded text) → seconds of each warm load."""
        found: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        for run in self.warm:
            for panel in run.panels:
                for q in panel.queries:
                    key = (panel.name, f"{q.query.ref} {q.query.kind}", q.query.text)
                    found[key].append(q.seconds)
        return found


def row(series: Series) -> str:
    times = series.seconds()
    panels = series.panels()
    slowest = max(panels, key=lambda name: pct(panels[name], 99))
    cold = series.cold.seconds if series.cold else math.nan
    p99 = pct(times, 99)
    verdict = "ok" if p99 < TARGET_SECONDS else "OVER"
    return (
        f"{series.board:<26} {series.length:>4} {len(times):>5} {cold:>7.3f} "
        f"{pct(times, 50):>7.3f} {p99:>7.3f}  {verdict:<4}  "
        f"{slowest[:44]:<44} {pct(panels[slowest], 99):>7.3f}"
    )


def report(results: list[Series]) -> None:
    print(
        f"\n{'board':<26} {'range':>4} {'loads':>5} {'cold s':>7} {'p50 s':>7} {'p99 s':>7}  "
        f"{'<2 s':<4}  {'slowest panel':<44} {'p99 s':>7}"
    )
    for series in results:
        print(row(series))
    for series in results:
        if pct(series.seconds(), 99) < TARGET_SECONDS:
            continue
        print(f"\n{series.board} over {series.length}: the {SLOWEST_QUERIES} slowest queries")
        queries = series.queries()
        ranked = sorted(queries, key=lambda k: -pct(queries[k], 99))[:SLOWEST_QUERIES]
        for panel, what, text in ranked:
            print(f"  p99 {pct(queries[(panel, what, text)], 99):.3f} s  {panel} {what}")
            print("    " + text.replace("\n", "\n    "))


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return (
        f"{cpu}, {os.cpu_count()} cores, {int(mem) / 1048576:.1f} GiB, Linux {platform.release()}"
    )


def tsdb_counts(data_dir: Path, prometheus: str) -> str:
    """Samples and series of the persisted blocks (their meta.json) and of the head block
    (Prometheus' TSDB status)."""
    stats = [json.loads(meta.read_text())["stats"] for meta in sorted(data_dir.glob("*/meta.json"))]
    samples = sum(int(s.get("numSamples", 0)) for s in stats)
    series = max((int(s.get("numSeries", 0)) for s in stats), default=0)
    head = httpx.get(f"{prometheus}/api/v1/status/tsdb", timeout=60).json()["data"]["headStats"]
    return (
        f"{len(stats)} blocks holding {samples:,} samples ({series:,} series in the largest); "
        f"head: {int(head['numSeries']):,} series, {int(head['chunkCount']):,} chunks"
    )


SETTLED_SECONDS = 150.0  # unchanged blocks for this long: past two compaction cycles (1/min)


def _blocks_loaded(prometheus: str) -> int:
    for line in httpx.get(f"{prometheus}/metrics", timeout=60).text.splitlines():
        if line.startswith("prometheus_tsdb_blocks_loaded "):
            return int(float(line.split()[1]))
    raise SystemExit("Prometheus reports no prometheus_tsdb_blocks_loaded")


def wait_compacted(prometheus: str, timeout: float = 3600.0) -> None:
    """Until Prometheus has compacted what a backfill left (thousands of 2 h blocks, which
    a running Prometheus would long since have merged): the number of blocks loaded has
    not changed for SETTLED_SECONDS."""
    started = time.monotonic()
    first = last = _blocks_loaded(prometheus)
    since = time.monotonic()
    while time.monotonic() - since < SETTLED_SECONDS:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"Prometheus still compacting after {timeout:.0f} s")
        time.sleep(10)
        now = _blocks_loaded(prometheus)
        if now != last:
            last, since = now, time.monotonic()
    print(
        f"compacted: {first} blocks to {last} in {time.monotonic() - started - SETTLED_SECONDS:.0f} s",
        flush=True,
    )


def versions(url: str, prometheus: str, data_dir: Path) -> None:
    with psycopg.connect(url) as conn:
        pg = conn.execute("SELECT version()").fetchone()
    build_info = httpx.get(f"{prometheus}/api/v1/status/buildinfo", timeout=30).json()["data"]
    print(f"machine: {machine()}")
    print(f"PostgreSQL: {pg[0] if pg else '?'}")
    print(f"Prometheus: {build_info['version']} (revision {build_info['revision']})")
    print(f"TSDB {data_dir}: {tsdb_counts(data_dir, prometheus)}")


def data_end(data_dir: Path) -> float:
    """The served data's last moment (its newest block's end): a dashboard opened then
    shows ranges ending there, and the history's rows reach it too."""
    ends = [json.loads(meta.read_text())["maxTime"] for meta in data_dir.glob("*/meta.json")]
    if not ends:
        raise SystemExit(f"{data_dir} holds no Prometheus blocks")
    return float(max(ends)) / 1000


def tsdb(url: str, scale: str, rebuild: bool) -> Path:
    """The scale's TSDB data directory, built from the history unless kept from a last run."""
    root = DATA / f"tsdb-{scale}"
    if rebuild and root.exists():
        shutil.rmtree(root)
    data_dir = root / "data"
    if data_dir.exists():
        print(f"[{scale}] reusing {data_dir}", flush=True)
        return data_dir
    print(f"[{scale}] building {HISTORY_DAYS} days of series into {root}", flush=True)
    return build(url, root, days=HISTORY_DAYS, step=SCRAPE_STEP)


async def measure(
    url: str, prometheus: str, args: argparse.Namespace, boards: list[dict[str, Any]]
) -> list[Series]:
    end = data_end(args.data_dir)
    print(f"ranges end at the data's end, {datetime.fromtimestamp(end, UTC):%Y-%m-%d %H:%M:%S} UTC")
    sources = datasources()
    results = []
    async with grafana_pool(url) as pool, httpx.AsyncClient(timeout=300) as http:
        grafana = Grafana(http, prometheus, pool)
        for board in boards:
            for length in args.ranges:
                series = Series(board["uid"], length)
                window = Window.ending(end, length)
                series.cold = await load(board, window, sources, grafana, args.width)
                for _ in range(args.loads):
                    series.warm.append(await load(board, window, sources, grafana, args.width))
                print(row(series), flush=True)
                results.append(series)
    return results


def _ranges(text: str) -> list[str]:
    ranges = [r.strip() for r in text.split(",") if r.strip()]
    for length in ranges:
        try:
            duration_ms(length)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc
    return ranges


def _data_dir(text: str) -> Path:
    path = Path(text)
    if not any(path.glob("*/meta.json")):
        raise argparse.ArgumentTypeError(f"{text}: no Prometheus blocks (*/meta.json) in it")
    return path


def _boards(text: str) -> list[str]:
    known = [b.uid for b in BOARDS]
    wanted = [b.strip() for b in text.split(",") if b.strip()]
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown boards {unknown}; known: {known}")
    return wanted


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboards", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="large")
    parser.add_argument("--reuse", action="store_true", help="keep the history database")
    parser.add_argument("--rebuild-tsdb", action="store_true", help="build the TSDB again")
    parser.add_argument(
        "--tsdb",
        type=_data_dir,
        help="serve this Prometheus data directory (python -m bench.prometheus_history) "
        "instead of the scale's own",
    )
    parser.add_argument("--ranges", type=_ranges, default=_ranges("24h,7d,30d"))
    parser.add_argument("--loads", type=int, default=20, help="warm loads after the cold one")
    parser.add_argument("--width", type=int, default=SCREEN_WIDTH, help="screen width, px")
    parser.add_argument("--boards", type=_boards, default=[b.uid for b in BOARDS])
    args = parser.parse_args(argv)
    if args.loads < 1 or args.width < 1:
        parser.error("--loads and --width must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    boards = [
        json.loads((REPO / b.path).read_text(encoding="utf-8"))
        for b in BOARDS
        if b.uid in args.boards
    ]
    supervisor = Supervisor()
    try:
        admin = admin_url(supervisor)
        url, reused = history(admin, args.scale, args.reuse)
        if args.tsdb is not None:
            data_dir = args.tsdb
            print(f"[{args.scale}] Prometheus data from {data_dir} (--tsdb)", flush=True)
        else:
            # A history built afresh has new series: the kept TSDB would be another history's.
            data_dir = tsdb(url, args.scale, args.rebuild_tsdb or not reused)
        args.data_dir = data_dir
        with serve(data_dir) as prometheus:
            wait_compacted(prometheus)
            versions(url, prometheus, data_dir)
            report(asyncio.run(measure(url, prometheus, args, boards)))
    finally:
        supervisor.stop_all()


if __name__ == "__main__":
    main()
