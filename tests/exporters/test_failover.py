"""Two replicas: one folds and serves the values, the other stands by; when the leader dies
the standby takes over with no gap and no double count."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from core.leadership import NotLeader
from core.queries import leadership as election_sql
from core.settings import Settings
from exporters.engine import FoldLoop
from exporters.families import kpi_families
from exporters.queries import store as q
from tests.exporters import truth
from tests.exporters.harness import (
    Exporter,
    Traffic,
    assert_equal,
    backfill,
    db_now,
    exporters,
    of_families,
)

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
        with psycopg.connect(db_url) as conn:
            assert_equal(from_leader, truth.expected(conn, settings), families)
        assert not of_families(standby.metrics()[0], families), "a standby serves KPIs"

        with Traffic(db_url, seed=8):
            time.sleep(2)
            leader.kill()
            standby.wait(lambda k, h: h.get(LEADER) == 1.0, timeout=30, what="takeover")
            time.sleep(2)
        stopped = db_now(db_url)
        values = standby.wait_caught_up(stopped)
        with psycopg.connect(db_url) as conn:
            assert_equal(values, truth.expected(conn, settings), families)


def test_a_fold_that_waited_out_an_election_is_refused(db_url: str) -> None:
    """The fence reads the epoch once its lock is held: a fold of the old leader whose fence
    waited for an election must see the new epoch and give up, or it could commit after
    the new leader has loaded the values it is about to change."""
    with psycopg.connect(db_url) as election, psycopg.connect(db_url) as fold:
        old = election.execute("SELECT epoch FROM ops.kpi_leader").fetchone()
        election.execute(election_sql.ELECT_LOCK, {"fence": q.FENCE_KEY})
        election.execute(election_sql.ELECT, {"name": q.LEADER, "holder": "the new leader"})
        outcome: list[BaseException | datetime] = []

        def fence() -> None:
            try:
                outcome.append(FoldLoop._fence(fold, epoch=old[0] if old else -1))
            except NotLeader as exc:
                outcome.append(exc)

        waiting = threading.Thread(target=fence, name="fold")
        waiting.start()
        deadline = time.monotonic() + 10
        while not _waits_for_advisory_lock(db_url) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _waits_for_advisory_lock(db_url), "the fold never waited for the election"
        election.commit()
        waiting.join(timeout=10)
        assert len(outcome) == 1
        assert isinstance(outcome[0], NotLeader), f"the old leader's fold passed: {outcome}"


def _waits_for_advisory_lock(db_url: str) -> bool:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
    return bool(row and row[0])
