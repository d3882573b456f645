"""An idle platform costs the exporter next to nothing, and stays exact.

While nothing commits, no collector reads its event tables again: the commit horizon's
snapshot shows that no transaction but the exporter's own ended (its own ops writes,
such as the cursor saves and the reconciliation's expiry, do not count), so every window
past the last commit is empty and passed over without a query. Gauges that slide with the
clock still refresh on their own schedule, and one platform commit is folded and served
within a second.

The test runs a PostgreSQL server of its own: a transaction ending in any database of a
server counts as a commit (transaction ids are server-wide), which costs a fold, never a
missed event, so the other tests' databases must be elsewhere. Autovacuum's ANALYZE is such
a transaction (it writes pg_statistic), so the server runs without it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from core.application_names import EXPORTER
from core.migrate import migrate
from core.settings import Settings
from opsdeck.embedded import EmbeddedPostgres, free_port
from opsdeck.supervisor import Supervisor
from tests.conftest import with_database
from tests.exporters.harness import Exporter, exporters

pytestmark = pytest.mark.slow

SESSIONS = ("opsdeck_site_sessions_total", ())
UP = ("opsdeck_service_up", (("service", "booking_api"),))
# The fold queries of two collectors that have no gauges and run each query in a
# transaction of its own: a backend's last query stays on show in pg_stat_activity, with
# its start, until it runs another.
FOLD_QUERIES = (
    "FROM platform.site_sessions\nWHERE started_at >= $",
    "FROM platform.calendar_syncs\nWHERE finished_at >= $",
)
STALE_IN = 12.0  # seconds until the service check goes stale, with no commit meanwhile


def _insert_session(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO platform.site_sessions (started_at) VALUES (now())")


def _insert_aging_check(url: str, stale_in: float) -> None:
    stale = Settings().thresholds.service_check_stale_seconds
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO platform.service_checks (service, checked_at, ok, latency_ms) "
            "VALUES ('booking_api', now() - %s * interval '1 second', true, 20)",
            (stale - stale_in,),
        )


@pytest.fixture
def lone_db(tmp_path: Path) -> Iterator[str]:
    """A migrated database on a PostgreSQL server of this test's alone, without autovacuum."""
    server = EmbeddedPostgres(tmp_path / "postgres", free_port(0), options=(("autovacuum", "off"),))
    server.initialize()
    supervisor = Supervisor()
    try:
        supervisor.start(server.service(tmp_path / "postgres.log"))
        url = with_database(server.url, "idle")
        with psycopg.connect(with_database(server.url, "postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE idle")
        migrate(url, url)
        yield url
    finally:
        supervisor.stop_all()


def _last_folds(url: str) -> dict[str, datetime]:
    """When each of the watched fold queries last started."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT query, query_start FROM pg_stat_activity WHERE application_name = %s",
            (EXPORTER,),
        ).fetchall()
    return {marker: start for query, start in rows for marker in FOLD_QUERIES if marker in query}


def _served_within(
    exp: Exporter, key: tuple[str, tuple[tuple[str, str], ...]], value: float
) -> float:
    started = time.monotonic()
    while time.monotonic() - started < 10:
        if exp.metrics()[0].get(key) == value:
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"{key} never read {value}")


def _db_now(url: str) -> datetime:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    now: datetime = row[0]
    return now


def test_idle_platform_is_not_read_again_and_a_commit_is_served_within_a_second(
    lone_db: str, tmp_path: Path
) -> None:
    db_url = lone_db
    _insert_session(db_url)
    _insert_aging_check(db_url, STALE_IN)
    with exporters(db_url, tmp_path) as (exp,):
        exp.wait(
            lambda kpis, _h: kpis.get(SESSIONS) == 1.0 and kpis.get(UP) == 1.0,
            timeout=STALE_IN - 4,
            what="the session and the fresh check",
        )
        # The folds of the first second may still pass the last commit's ceiling.
        quiet_from = _db_now(db_url) + timedelta(seconds=1)
        # The check goes stale with no commit at all: the clock-driven gauge refreshes.
        exp.wait(lambda kpis, _h: kpis.get(UP) == 0.0, timeout=30, what="the stale check")
        folds = _last_folds(db_url)
        assert set(folds) == set(FOLD_QUERIES), folds
        idle_for = (_db_now(db_url) - quiet_from).total_seconds()
        assert idle_for > 5.0  # more than one cursor save of the gauges' collectors
        for query, started in folds.items():
            assert started < quiet_from, (
                f"folded again {(started - quiet_from).total_seconds():.2f} s into "
                f"{idle_for:.1f} s of nothing committed: {query!r}"
            )

        _insert_session(db_url)
        assert _served_within(exp, SESSIONS, 2.0) < 1.0
