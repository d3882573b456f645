"""Real exporter processes and real traffic for the exporter tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from core.settings import SimulatorSettings
from opsdeck.embedded import free_port
from simulator.backfill import BackfillPlan, run_backfill
from simulator.live import LiveOptions, LiveSimulator
from simulator.vocabulary import SCALES
from tests.conftest import REPO, opsdeck_env, service_url
from tests.exporters.truth import Series
from tests.processes import stopped_on_exit, terminate

KPI_PREFIXES = ("opsdeck_",)
HEALTH = ("opsdeck_collector_", "opsdeck_exporter_")


def backfill(url: str, days: float, seed: int = 11) -> None:
    plan = BackfillPlan(days, SCALES["small"], seed, datetime.now(UTC).replace(microsecond=0))
    run_backfill(url, plan, SimulatorSettings(), lambda table, rows: None)


def parse(text: str) -> tuple[Series, Series]:
    """(KPI series, health series) of an exposition."""
    kpis: Series = {}
    health: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith(KPI_PREFIXES):
                continue
            key = (sample.name, tuple(sorted(sample.labels.items())))
            (health if sample.name.startswith(HEALTH) else kpis)[key] = float(sample.value)
    return kpis, health


class Exporter:
    """``opsdeck exporter`` as a child process."""

    def __init__(self, url: str, log_dir: Path, name: str = "exporter", **settings: str) -> None:
        self.port = free_port(0)
        self.url = url
        self.log = log_dir / f"{name}-{self.port}.log"
        env = opsdeck_env(
            DATABASE_URL=service_url(url),
            OPSDECK_EXPORTER__FOLD_INTERVAL_SECONDS="0.1",
            OPSDECK_EXPORTER__GAUGE_INTERVAL_SECONDS="0.5",
            OPSDECK_EXPORTER__STANDBY_REFRESH_SECONDS="0.3",
            **settings,
        )
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "opsdeck", "exporter", "--port", str(self.port)],
                env=env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def scrape(self, timeout: float = 2.0) -> str:
        response = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=timeout)
        response.raise_for_status()
        return response.text

    def metrics(self) -> tuple[Series, Series]:
        return parse(self.scrape())

    def leader_flag(self) -> float | None:
        """opsdeck_exporter_leader, or None while the process is not serving yet."""
        try:
            return self.metrics()[1].get(("opsdeck_exporter_leader", ()))
        except httpx.HTTPError:
            return None

    def wait(
        self, condition: Any, timeout: float = 60.0, what: str = "condition"
    ) -> tuple[Series, Series]:
        deadline = time.monotonic() + timeout
        last: tuple[Series, Series] = ({}, {})
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"exporter exited {self.process.returncode}:\n{self.log.read_text()}"
                )
            try:
                last = self.metrics()
                if condition(*last):
                    return last
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(
            f"exporter: no {what} in {timeout:.0f} s; last health {last[1]}\n{self.log.read_text()[-3000:]}"
        )

    def wait_caught_up(self, until: datetime, timeout: float = 90.0) -> Series:
        """Every collector has folded past ``until`` and refreshed its gauges after it."""

        def caught_up(kpis: Series, health: Series) -> bool:
            lags = {
                dict(k[1])["collector"]: v
                for k, v in health.items()
                if k[0] == "opsdeck_collector_lag_seconds"
            }
            ups = [v for k, v in health.items() if k[0] == "opsdeck_collector_up"]
            now = time.time()
            return (
                bool(lags)
                and all(ups)
                and all(now - lag > until.timestamp() + 1.0 for lag in lags.values())
            )

        _kpis, _ = self.wait(caught_up, timeout, "catch-up")
        time.sleep(1.2)  # one more gauge refresh after the horizon passed
        return self.metrics()[0]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        terminate(self.process, timeout=15)


@contextmanager
def exporters(url: str, log_dir: Path, count: int = 1, **settings: str) -> Iterator[list[Exporter]]:
    started = [Exporter(url, log_dir, f"exporter{i}", **settings) for i in range(count)]
    with stopped_on_exit(started):
        yield started


class Traffic:
    """Live simulated traffic in a background thread."""

    def __init__(
        self, url: str, rate: float = 150, seed: int = 3, psp_mismatch_share: float = 0.02
    ) -> None:
        options = LiveOptions(
            rate=rate,
            writers=8,
            seed=seed,
            seasonal=False,
            speedup=60.0,
            psp_missing_share=psp_mismatch_share,
            psp_different_share=psp_mismatch_share,
            psp_delay_seconds=1.0,
        )
        self.simulator = LiveSimulator(url, url, options)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=self.simulator.run, args=(self.stop_event, lambda c, e: None)
        )

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join()


def db_now(url: str) -> datetime:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def family_of(name: str, families: set[str]) -> str:
    """The family a sample belongs to (a histogram's ``_bucket``, ``_sum`` and ``_count``
    belong to the histogram)."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in families:
            return name.removesuffix(suffix)
    return name


def of_families(series: Series, families: set[str]) -> Series:
    """The series of ``series`` that belong to ``families``."""
    return {k: v for k, v in series.items() if family_of(k[0], families) in families}


def assert_equal(actual: Series, expected: Series, families: set[str]) -> None:
    """Every series of the contract families agrees; absent on one side means zero."""
    keys = {k for k in (*actual, *expected) if family_of(k[0], families) in families}
    wrong = [
        (k, actual.get(k, 0.0), expected.get(k, 0.0))
        for k in sorted(keys)
        if not _close(actual.get(k, 0.0), expected.get(k, 0.0))
    ]
    assert not wrong, "exporter != plain SQL:\n" + "\n".join(
        f"  {k}: {a} != {e}" for k, a, e in wrong[:40]
    )
    served = {family_of(k[0], families) for k in actual}
    assert served >= families, "families missing from /metrics"


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))
