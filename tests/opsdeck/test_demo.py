"""``opsdeck demo`` with nothing configured: embedded stores, live traffic within 60 s,
and nothing left running after Ctrl-C. A second start reuses the data."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from tests.conftest import opsdeck_env

pytestmark = pytest.mark.slow


class DemoProcess:
    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        env = opsdeck_env() if env is None else env
        self.process = subprocess.Popen(
            [sys.executable, "-m", "opsdeck", "demo", "--backfill-days", "0.01", "--rate", "20"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.descendants: set[int] = set()

    def read_until(self, prefix: str, timeout: float) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        os.set_blocking(self.process.stdout.fileno(), False)
        while time.monotonic() < deadline:
            self._record_descendants()
            line = self.process.stdout.readline()
            if line:
                self.lines.append(line.rstrip("\n"))
                if line.strip().startswith(prefix):
                    return line.strip()
            elif self.process.poll() is not None:
                break
            else:
                time.sleep(0.1)
        raise AssertionError(
            f"no line starting {prefix!r} in {timeout:.0f} s:\n" + "\n".join(self.lines)
        )

    def first_traffic(self, deadline: float) -> str:
        """The first status line that reports transactions, read before ``deadline``."""
        while True:
            line = self.read_until("traffic:", timeout=max(0.1, deadline - time.monotonic()))
            if not line.startswith(("traffic: 0 transactions", "traffic: cannot")):
                return line

    def _record_descendants(self) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            children = psutil.Process(self.process.pid).children(recursive=True)
            self.descendants.update(p.pid for p in children)

    def interrupt(self) -> float:
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)
        stopped = time.monotonic() - started
        assert self.process.stdout is not None
        self.process.stdout.close()
        return stopped

    def url(self, name: str) -> str:
        for line in self.lines:
            parts = line.split()
            if len(parts) == 2 and parts[0] == name:
                return parts[1]
        raise AssertionError(f"no {name} URL printed:\n" + "\n".join(self.lines))


def _alive(pids: set[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def test_demo_runs_shows_traffic_and_stops_clean(tmp_path: Path) -> None:
    demo = DemoProcess(tmp_path)
    try:
        started = time.monotonic()
        demo.read_until("Ctrl-C stops everything.", timeout=120)
        url = demo.url("postgres")
        assert url.startswith("postgresql://postgres@127.0.0.1:")
        assert demo.url("redis").startswith("redis://127.0.0.1:")
        traffic = demo.first_traffic(deadline=started + 60 + 30)  # history first on a new machine
        with psycopg.connect(url) as conn:
            recent = conn.execute(
                "SELECT count(*) FROM platform.transactions WHERE created_at > now() - interval '30 seconds'"
            ).fetchone()
        assert recent is not None
        assert recent[0] > 0, traffic
        assert len(demo.descendants) >= 3  # postgres, redis, the simulator at least
    finally:
        stop_seconds = demo.interrupt()
    assert demo.process.returncode == 0
    assert stop_seconds < 10
    assert _alive(demo.descendants) == []
    assert (tmp_path / ".opsdeck" / "postgres" / "data" / "PG_VERSION").exists()

    again = DemoProcess(tmp_path)
    try:
        again.read_until("Ctrl-C stops everything.", timeout=120)
        assert not any("first run" in line for line in again.lines)
        assert again.url("postgres") == url
    finally:
        again.interrupt()
    assert _alive(again.descendants) == []


def test_history_is_loaded_at_the_live_rate(tmp_path: Path) -> None:
    """The first run's history has the live traffic's daily rate: no 24 h window or baseline
    is dwarfed by the traffic that follows it."""
    from core.settings import Settings
    from opsdeck.demo import Demo, DemoPlan
    from simulator.backfill import scale_at_rate
    from simulator.vocabulary import SCALES

    plan = DemoPlan(Settings(), tmp_path, rate=0.5, backfill_days=3)
    plan.urls.update(postgres="postgresql://db", platform="postgresql://db", redis="redis://r")
    argv = Demo(plan, lambda line: None)._backfill_service().argv
    assert argv[argv.index("--backfill") + 1] == "3"
    assert argv[argv.index("--rate") + 1] == "0.5"
    scale = scale_at_rate(SCALES["small"], 0.5)
    assert scale.transactions_per_day == pytest.approx(0.5 * 86_400)
    small = SCALES["small"]
    assert scale.api_logs_per_day / scale.transactions_per_day == pytest.approx(
        small.api_logs_per_day / small.transactions_per_day
    )
