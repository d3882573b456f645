"""Every contract metric equals plain SQL over the raw rows, after live traffic with
out-of-order commits, rows changed after insert, a retention delete of api_logs and an
exporter killed and restarted in the middle. A naive ``id > watermark`` tail, run beside
it, loses rows."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path

import psycopg
import pytest

from core.settings import Settings
from exporters.families import kpi_families
from tests.exporters import truth
from tests.exporters.harness import Exporter, Traffic, assert_equal, backfill, db_now

pytestmark = pytest.mark.slow


def naive_tail(url: str, stop: threading.Event, seen: list[int]) -> None:
    """Counts transactions the way an ``id > last id`` reader does (one last read after the
    traffic stopped, so it misses only what committed behind its watermark)."""
    watermark = 0
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            done = stop.is_set()
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM platform.transactions WHERE id > %s", (watermark,)
                )
            ]
            if ids:
                seen.append(len(ids))
                watermark = max(ids)
            if done:
                return
            time.sleep(0.005)


def test_every_metric_equals_plain_sql(db_url: str, tmp_path: Path) -> None:
    settings = Settings()
    backfill(db_url, days=0.8)  # inside the 24 h window: its edge cuts no row
    first = Exporter(db_url, tmp_path, "first")
    second: Exporter | None = None
    stop_naive = threading.Event()
    naive: list[int] = []
    try:
        first.wait(lambda k, h: h.get(("opsdeck_exporter_leader", ()), 0) == 1, what="leadership")
        tail = threading.Thread(target=naive_tail, args=(db_url, stop_naive, naive))
        with Traffic(db_url):
            time.sleep(1.0)
            tail.start()
            time.sleep(3.0)
            first.kill()  # a crash in the middle: nothing committed may be counted twice
            second = Exporter(db_url, tmp_path, "second")
            time.sleep(3.0)
            deleted = _retention_delete(db_url, settings)
            time.sleep(3.0)
        stop_naive.set()
        tail.join()
        stopped = db_now(db_url)
        kpis = second.wait_caught_up(stopped)
        with psycopg.connect(db_url) as conn:
            expected = truth.expected(conn, settings)
            total = int(
                (conn.execute("SELECT count(*) FROM platform.transactions").fetchone() or (0,))[0]
            )
        for key, value in deleted.items():
            expected[key] = expected.get(key, 0.0) + value
        assert_equal(kpis, expected, set(kpi_families(settings.exporter)))
        # The naive reader saw every id it was shown, and still missed the late commits.
        assert sum(naive) < total
    finally:
        stop_naive.set()
        first.stop()
        if second:
            second.stop()


def _retention_delete(
    url: str, settings: Settings
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Delete the oldest api_logs like a 30-day retention job would; return what they counted."""
    where = "updated_at < now() - interval '12 hours'"
    with psycopg.connect(url) as conn:
        counted = truth.api_requests(conn, settings, where)
        deleted = conn.execute(f"DELETE FROM platform.api_logs WHERE {where}").rowcount
        conn.commit()
    assert deleted > 1000
    return defaultdict(float, counted)
