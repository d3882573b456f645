"""A real Prometheus holding ``days`` of opsdeck's series at the 15 s scrape interval, built
from a simulator history (an ``opsdeck_bench_<scale>`` database, :mod:`bench.history`).

Replayed from the history's rows (:mod:`bench.replay`): every KPI family of the exporter
(``exporters/families.py``) with the exporter's label sets and zero series — counters and
histograms as running totals by the collectors' event times; the gauges
``opsdeck_bookings_unprocessed`` and ``opsdeck_support_tickets_open`` from each row's
transition times; ``opsdeck_service_up`` and ``opsdeck_service_last_check_timestamp_seconds``
from the latest check at each instant and the staleness threshold; the 24 h reconciliation
gauges from each transaction's creation, the PSP report's arrival and the grace period.
Modelled (:mod:`bench.modelled`, which says how): the exporter's own health
(``opsdeck_collector_*``, ``opsdeck_exporter_leader``), the webhook worker's families, the
API's ``opsdeck_api_http_*`` and ``up``. Each series carries the ``job`` and ``instance``
that ``provisioning/prometheus/prometheus.yml`` scrapes its process under. Then the
recording rules of ``alert_rules/recording.rules.yaml`` are back-filled over the same span
(:mod:`bench.rules_backfill`), so the ``opsdeck:...`` series exist too.

Samples are written as OpenMetrics, one file per 2 h TSDB block, loaded by
``promtool tsdb create-blocks-from openmetrics`` (two at a time, while the next file is
written) and deleted once loaded.
Before anything is loaded, the last sample of every replayed counter is checked against
:func:`bench.plain_sql.plain_values`; any difference fails the build.

    python -m bench.prometheus_history --scale small [--days 30] [--out DIR] [--replace]

Uses DATABASE_URL's server when set, else the benchmarks' embedded PostgreSQL; an existing
history database is reused. Serve the result with :func:`bench.prometheus_server.serve`.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import yaml

from bench import replay_queries
from bench.history import DATA, admin_url, history
from bench.modelled import modelled, up
from bench.plain_sql import plain_values
from bench.prometheus_server import PROMTOOL, binary
from bench.replay import Grid, Key, Replay, Values, replay
from bench.rules_backfill import backfill
from core import assets
from core.settings import Settings
from opsdeck.supervisor import Supervisor
from simulator.vocabulary import SCALES

BLOCK_SECONDS = 7_200  # promtool's block length: one file per block, parsed twice
LOADERS = 2  # promtool runs at once: parsing, not writing the text, is the slow part
EXPORTER_JOB = "opsdeck-exporter"
COUNTER_SUFFIXES = ("_total", "_bucket", "_count", "_sum")
# State gauges whose plain SQL does not read the clock: also equal at the end.
TIMELESS_GAUGES = ("opsdeck_support_tickets_open",)


@dataclass(frozen=True)
class Written:
    """One series ready to write: its exposition prefix and its values per sample."""

    prefix: str  # 'name{label="value",...} '
    values: Values
    integral: bool


def scrape_targets() -> dict[str, str]:
    """job → instance, as prometheus.yml scrapes each job's first target."""
    config = yaml.safe_load(assets.prometheus_config().read_text(encoding="utf-8"))
    return {
        job["job_name"]: job["static_configs"][0]["targets"][0] for job in config["scrape_configs"]
    }


def history_end(conn: psycopg.Connection[Any]) -> datetime:
    row = conn.execute(replay_queries.HISTORY_END).fetchone()
    if row is None or row[0] is None:
        raise ValueError("the history holds no rows")
    end: datetime = row[0]
    return end


def prove(conn: psycopg.Connection[Any], settings: Settings, replayed: Replay) -> int:
    """Check the last sample of every counter (and of :data:`TIMELESS_GAUGES`) against
    the plain SQL over all rows; returns how many series were compared, raises
    AssertionError listing the differences."""

    def proven(name: str) -> bool:
        return name.endswith(COUNTER_SUFFIXES) or name in TIMELESS_GAUGES

    last = {key: float(values[-1]) for key, values in replayed.series() if proven(key[0])}
    expected = {k: v for k, v in plain_values(conn, settings).items() if proven(k[0])}
    wrong = [
        f"{key}: replayed {last.get(key, 0.0)} != plain SQL {want}"
        for key, want in sorted(expected.items())
        if abs(last.get(key, 0.0) - want) > 1e-6 * max(1.0, abs(want))
    ]
    wrong += [
        f"{key}: replayed {v}, no plain SQL row"
        for key, v in last.items()
        if key not in expected and v != 0
    ]
    if wrong:
        raise AssertionError("replayed series differ from plain SQL:\n  " + "\n  ".join(wrong))
    return len(expected)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _written(key: Key, job: str, instance: str, values: Values) -> Written:
    name, labels = key
    pairs = sorted({"job": job, "instance": instance, **dict(labels)}.items())
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    finite = values[np.isfinite(values)]
    return Written(f"{name}{{{body}}} ", values, bool(np.all(finite == np.floor(finite))))


def all_series(settings: Settings, replayed: Replay) -> list[Written]:
    targets = scrape_targets()
    grid = replayed.grid
    out = [_written(k, EXPORTER_JOB, targets[EXPORTER_JOB], v) for k, v in replayed.series()]
    jobs = sorted(job for job in targets if job.startswith("opsdeck-"))
    for job, key, values in (*modelled(settings, grid), *up(grid, jobs)):
        out.append(_written(key, job, targets[job], values))
    return out


def chunks(grid: Grid) -> Iterator[tuple[int, int]]:
    """Sample index ranges, one per promtool block (aligned as promtool aligns them)."""
    times = grid.seconds()
    blocks = np.floor(times / BLOCK_SECONDS)
    edges = [0, *np.flatnonzero(np.diff(blocks)) + 1, grid.count]
    yield from itertools.pairwise(edges)


def openmetrics(series: Iterable[Written], grid: Grid, lo: int, hi: int) -> Iterator[str]:
    """The OpenMetrics text of samples ``lo:hi`` of every series (no metadata: promtool
    stores none), ending with ``# EOF``."""
    stamps = grid.seconds()[lo:hi]
    suffixes = [f" {t:.0f}\n" if float(t).is_integer() else f" {t!r}\n" for t in stamps]
    for s in series:
        part = s.values[lo:hi]
        keep = np.isfinite(part)
        ends = suffixes
        if not keep.all():
            part = part[keep]
            ends = [e for e, k in zip(suffixes, keep, strict=True) if k]
        texts = (part.astype(np.int64) if s.integral else part).astype(str).tolist()
        yield "".join([s.prefix + t + e for t, e in zip(texts, ends, strict=True)])
    yield "# EOF\n"


def load(series: list[Written], grid: Grid, data: Path, work: Path) -> int:
    """Write and load every block, :data:`LOADERS` promtool runs at a time while the next
    file is written; returns the number of samples loaded."""
    samples = 0
    running: deque[tuple[subprocess.Popen[bytes], Path]] = deque()
    try:
        for n, (lo, hi) in enumerate(chunks(grid)):
            path = work / f"block-{n:05d}.om"
            with path.open("w", encoding="utf-8") as out:
                out.writelines(openmetrics(series, grid, lo, hi))
            samples += sum(int(np.isfinite(s.values[lo:hi]).sum()) for s in series)
            if len(running) >= LOADERS:
                _finish(*running.popleft())
            running.append((_promtool(path, data), path))
        while running:
            _finish(*running.popleft())
    finally:
        for process, _ in running:
            process.kill()
            process.wait()
    return samples


def _promtool(path: Path, data: Path) -> subprocess.Popen[bytes]:
    argv = [binary(PROMTOOL), "tsdb", "create-blocks-from", "openmetrics", "--quiet"]
    return subprocess.Popen(
        [*argv, str(path), str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _finish(process: subprocess.Popen[bytes], path: Path) -> None:
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"promtool failed on {path}: {stderr.decode()[-2000:]}")
    path.unlink()


def build(
    platform_url: str,
    out: Path,
    *,
    days: float = 30,
    step: float = 15.0,
    end: datetime | None = None,
    settings: Settings | None = None,
) -> Path:
    """Build ``out/data``, a Prometheus data directory with ``days`` of opsdeck's series
    every ``step`` seconds up to ``end`` (default: the history's last event), replayed
    from ``platform_url`` and modelled as the module says, with the recording rules
    back-filled. ``out/data`` must not exist yet. The replayed counters are proven against
    plain SQL when the span reaches the history's end (AssertionError otherwise)."""
    settings = settings or Settings()
    data = out / "data"
    if data.exists() and any(data.iterdir()):
        raise FileExistsError(f"{data} already holds data")
    work = out / "openmetrics"
    data.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    with psycopg.connect(platform_url) as conn:
        last_event = history_end(conn)
        grid = Grid.ending(end or last_event, days, step)
        replayed = replay(conn, settings, grid)
        _phase("replayed the history's rows", began)
        if grid.end >= last_event:
            checked = prove(conn, settings, replayed)
            print(f"replayed series equal plain SQL at the end ({checked} series)", flush=True)
        else:
            print(f"no proof: the span ends at {grid.end}, before the last row", flush=True)
    began = time.perf_counter()
    series = all_series(settings, replayed)
    samples = load(series, grid, data, work)
    shutil.rmtree(work)
    _phase(f"wrote and loaded {samples:,} samples of {len(series):,} series", began)
    began = time.perf_counter()
    for level, rules, seconds in backfill(data, grid.start, grid.end):
        print(f"  rules level {level}: {rules} rules in {seconds:.1f} s", flush=True)
    _phase("back-filled the recording rules", began)
    return data


def _phase(what: str, began: float) -> None:
    print(f"{what}: {time.perf_counter() - began:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", choices=sorted(SCALES), required=True)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--out", type=Path, help="default: .opsdeck/bench/prometheus-<scale>")
    parser.add_argument("--replace", action="store_true", help="delete an earlier build first")
    args = parser.parse_args(argv)
    out: Path = args.out or DATA / f"prometheus-{args.scale}"
    if args.replace and (out / "data").exists():
        shutil.rmtree(out / "data")
    supervisor = Supervisor()
    try:
        url, _ = history(admin_url(supervisor), args.scale, reuse=True)
        began = time.perf_counter()
        data = build(url, out, days=args.days)
        size = sum(f.stat().st_size for f in data.rglob("*") if f.is_file())
        print(
            f"[{args.scale}] {data}: {size / 2**20:,.0f} MiB in "
            f"{time.perf_counter() - began:.0f} s",
            flush=True,
        )
    finally:
        supervisor.stop_all()


if __name__ == "__main__":
    main()
