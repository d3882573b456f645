"""Two replicas: one folds, both serve the same values; when the leader dies the standby
takes over with no gap and no double count."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from exporters.families import kpi_families
from opsdeck.settings import Settings
from tests.exporters import truth
from tests.exporters.harness import Exporter, Traffic, assert_equal, backfill, db_now, exporters

pytestmark = pytest.mark.slow
LEADER = ("opsdeck_exporter_leader", ())


def _leader(replicas: list[Exporter]) -> tuple[Exporter, Exporter]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        flags = [r.leader_flag() for r in replicas]
        if None not in flags and sorted(f or 0.0 for f in flags) == [0.0, 1.0]:
            leader = replicas[flags.index(1.0)]
            return leader, next(r for r in replicas if r is not leader)
        time.sleep(0.2)
    raise AssertionError("no single leader elected")


def test_standby_takes_over_without_gap_or_double_count(db_url: str, tmp_path: Path) -> None:
    settings = Settings()
    families = set(kpi_families(settings.exporter))
    backfill(db_url, days=0.5)
    with exporters(db_url, tmp_path, count=2) as replicas:
        leader, standby = _leader(replicas)
        with Traffic(db_url):
            time.sleep(3)
        stopped = db_now(db_url)
        from_leader = leader.wait_caught_up(stopped)
        from_standby = standby.wait_caught_up(stopped)
        assert_equal(from_standby, from_leader, families)  # both serve the same values

        with Traffic(db_url, seed=8):
            time.sleep(2)
            leader.kill()
            standby.wait(lambda k, h: h.get(LEADER) == 1.0, timeout=30, what="takeover")
            time.sleep(2)
        stopped = db_now(db_url)
        values = standby.wait_caught_up(stopped)
        with psycopg.connect(db_url) as conn:
            assert_equal(values, truth.expected(conn, settings), families)
