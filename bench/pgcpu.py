"""CPU seconds PostgreSQL spends, read from /proc: every live server process plus what the
postmaster has collected from children that exited (parallel workers, closed backends)."""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from core.database import libpq_url

TICKS = os.sysconf("SC_CLK_TCK")


def postmaster_pid(admin_url: str) -> int:
    with psycopg.connect(admin_url) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    return int((Path(row[0]) / "postmaster.pid").read_text().splitlines()[0])


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(postmaster: int) -> float:
    """utime+stime of the postmaster's live children, plus its reaped children's totals."""
    fields = _stat(postmaster)
    total = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = _stat(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if int(child[1]) == postmaster:
            total += int(child[11]) + int(child[12])
    return total / TICKS


def machine_cpu() -> tuple[float, float]:
    """(busy, all) CPU seconds of every core since boot, from /proc/stat: busy leaves out
    idle and I/O wait."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return (total - fields[3] - fields[4]) / TICKS, total / TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# The processes a ``BackendCpu`` follows, as a query of their pids.
CLIENT_PIDS = (
    "SELECT pid FROM pg_stat_activity WHERE application_name = %(name)s "
    "OR leader_pid IN (SELECT pid FROM pg_stat_activity WHERE application_name = %(name)s)"
)
# PostgreSQL 18 reads through io worker processes (io_method = worker): a backend's reads
# are their CPU, not its own. Older servers have none.
IO_WORKER_PIDS = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'io worker'"


def _own_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS


class BackendCpu:
    """CPU seconds spent by the PostgreSQL processes ``pids`` (a query) finds, read from
    /proc at each ``sample()``: one client's backends and their parallel workers
    (``CLIENT_PIDS``, by ``application_name``), or the io workers (``IO_WORKER_PIDS``).

    Attributing by backend rather than subtracting the traffic's share keeps a small cost
    measurable beside a large, noisy one. A backend that exits between two samples loses
    its last interval, so the figure is a lower bound; sample often (the benchmark samples
    every 0.5 s)."""

    def __init__(self, admin_url: str, pids: str, application_name: str = "") -> None:
        self._conn = psycopg.connect(admin_url, autocommit=True)
        self._pids = pids
        self._name = application_name
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._first = True

    def sample(self) -> None:
        for (pid,) in self._conn.execute(self._pids, {"name": self._name}).fetchall():
            try:
                seconds = _own_seconds(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
            self._start.setdefault(pid, seconds if self._first else 0.0)
            self._last[pid] = seconds
        self._first = False

    def processes(self) -> int:
        return len(self._last)

    def seconds(self) -> float:
        return sum(last - self._start[pid] for pid, last in self._last.items())

    def close(self) -> None:
        self._conn.close()


@contextmanager
def sampled(cpu: BackendCpu, every: float = 0.5) -> Iterator[BackendCpu]:
    """``cpu`` sampled in a thread every ``every`` seconds while the block runs (a
    query-exporter scrape can take minutes, with parallel workers coming and going)."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            cpu.sample()

    cpu.sample()
    sampler = threading.Thread(target=run, name="backend-cpu", daemon=True)
    sampler.start()
    try:
        yield cpu
    finally:
        stop.set()
        sampler.join()
        cpu.sample()
        cpu.close()


def backend_cpu(admin_url: str, application_name: str) -> AbstractContextManager[BackendCpu]:
    """The CPU of one client's backends, sampled while the block runs."""
    return sampled(BackendCpu(admin_url, CLIENT_PIDS, application_name))


def io_worker_cpu(admin_url: str) -> AbstractContextManager[BackendCpu]:
    """The CPU of PostgreSQL's io workers (every client's reads), sampled while the block
    runs."""
    return sampled(BackendCpu(admin_url, IO_WORKER_PIDS))


@dataclass
class CpuWindow:
    total: float  # CPU s/min of all of PostgreSQL
    own: float  # CPU s/min of the contender's own backends and their parallel workers
    io: float = 0.0  # CPU s/min of PostgreSQL's io workers: every client's reads


def cpu_window(
    postmaster: int,
    seconds: float,
    admin_url: str,
    application: str,
    load: Callable[[], object] | None = None,
) -> CpuWindow:
    with backend_cpu(admin_url, application) as own, io_worker_cpu(admin_url) as io:
        started = time.monotonic()
        start_cpu = cpu_seconds(postmaster)
        while time.monotonic() < started + seconds:
            if load:
                load()
            else:
                time.sleep(0.5)
        elapsed = time.monotonic() - started
        total = cpu_seconds(postmaster) - start_cpu
    per_minute = 60 / elapsed
    return CpuWindow(total * per_minute, own.seconds() * per_minute, io.seconds() * per_minute)


def main() -> None:
    """One CPU window of DATABASE_URL's running server and of one application's backends,
    printed: for a contender measured while it runs (one that never publishes a value)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--application", required=True, help="application_name of its backends")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        parser.error("DATABASE_URL must name the running server to measure")
    admin = libpq_url(os.environ["DATABASE_URL"])
    window = cpu_window(postmaster_pid(admin), args.seconds, admin, args.application)
    print(
        f"{time.strftime('%H:%M:%S')} over {args.seconds:.0f} s: all of PostgreSQL "
        f"{window.total:.2f} CPU s/min, {args.application}'s backends {window.own:.2f}, "
        f"io workers {window.io:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
