"""Exporter replicas scraped side by side count every KPI once.

Only the replica that leads serves the KPI families and the folding's health
(``opsdeck_collector_*``); a standby serves ``opsdeck_exporter_leader 0``, the build and the
process; a leader cut off from ops serves its last values marked down. So the union of
every replica's /metrics holds each KPI series exactly once and equals plain SQL: with two
replicas, after the leader's lock session dies under it, and after the leader is killed and
a new replica joins. A replica elected serves the loaded values from
its first page as leader; one that loses the lock stops serving KPIs at its next scrape.
"""

from __future__ import annotations

import time
import zlib
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.build_info import python, revision, version
from core.settings import Settings
from exporters.exposition import COLLECTOR_HEALTH, HealthExposition
from exporters.families import kpi_families
from exporters.metrics_page import GZIP, MetricsPage, Role
from exporters.queries import store
from exporters.server import build_collectors, build_exposition
from exporters.snapshot import Health, Snapshot
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
from tests.exporters.truth import Series

LEADER = ("opsdeck_exporter_leader", ())
CONFIRMED = "opsdeck_bookings_confirmed_total"
# The leader lock's holder, in this database (a bigint advisory key shows as two halves).
TERMINATE_LEADER = """
SELECT pg_terminate_backend(pid) FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 1
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND classid::bigint = (%(key)s::bigint >> 32) & 4294967295
  AND objid::bigint = %(key)s::bigint & 4294967295
"""


class Replica:
    """What the engine would say about this replica's role, set by the test."""

    def __init__(self) -> None:
        self.role: Role = "standby"

    def __call__(self) -> Role:
        return self.role


def _page() -> tuple[Snapshot, Replica, MetricsPage]:
    settings = Settings()
    collectors = build_collectors(settings)
    snapshot = Snapshot(c.name for c in collectors)
    kpis = build_exposition(settings, collectors, snapshot)
    role = Replica()
    return snapshot, role, MetricsPage(snapshot, kpis, HealthExposition(snapshot), role)


def _load(snapshot: Snapshot, confirmed: float) -> None:
    """What a new leader reads from ops: the values and the cursors."""
    snapshot.load(
        [("bookings", CONFIRMED, [], confirmed)],
        [("bookings", None, None, True, None, 0.01)],
        source_ok=True,
    )


def _samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): float(s.value)
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def _opsdeck_families(body: bytes) -> set[str]:
    return {
        f.name
        for f in text_string_to_metric_families(body.decode())
        if f.name.startswith("opsdeck")
    }


def test_a_standby_page_carries_the_replica_and_no_kpi() -> None:
    snapshot, _role, page = _page()
    _load(snapshot, 41)  # values in memory, from an earlier leadership: never served now
    page.render()
    plain = page.body(gzip=False)
    unzipped = zlib.decompressobj(GZIP).decompress(page.body(gzip=True))
    for body in (plain, unzipped):
        assert _opsdeck_families(body) == {"opsdeck_build_info", "opsdeck_exporter_leader"}
        samples = _samples(body)
        assert samples[LEADER] == 0.0
        build = {"python": python(), "revision": revision(), "version": version()}
        assert samples[("opsdeck_build_info", tuple(sorted(build.items())))] == 1.0
        assert "process_start_time_seconds" in {k[0] for k in samples}
    assert page.ready, "a standby's page is what it should serve from the start"


def test_a_new_leader_serves_the_loaded_values_from_its_first_page() -> None:
    snapshot, role, page = _page()
    _load(snapshot, 41)
    page.render()  # the renderer's last page, of values now stale
    _load(snapshot, 57)  # elected: the committed values, loaded; the renderer not woken yet
    role.role = "leader"
    for body in (page.body(gzip=False), zlib.decompressobj(GZIP).decompress(page.body(True))):
        samples = _samples(body)
        assert samples[(CONFIRMED, ())] == 57.0
        assert samples[LEADER] == 1.0
        assert samples[("opsdeck_collector_up", (("collector", "bookings"),))] == 1.0


def test_a_replica_that_loses_the_lock_stops_serving_kpis_at_its_next_scrape() -> None:
    snapshot, role, page = _page()
    _load(snapshot, 57)
    snapshot.apply("bookings", [(CONFIRMED, (), 58.0)], Health(True, 0.01, None))
    role.role = "leader"
    assert _samples(page.body(gzip=False))[(CONFIRMED, ())] == 58.0
    role.role = "standby"
    body = page.body(gzip=False)
    assert _opsdeck_families(body) == {"opsdeck_build_info", "opsdeck_exporter_leader"}
    assert _samples(body)[LEADER] == 0.0


def test_a_leader_cut_off_from_ops_serves_its_last_values_marked_down() -> None:
    """It cannot tell whether another replica leads: its collectors read down (an alert)
    and its frozen counters add nothing to a rate."""
    snapshot, role, page = _page()
    _load(snapshot, 57)
    role.role = "stranded"
    samples = _samples(page.body(gzip=False))
    assert samples[(CONFIRMED, ())] == 57.0
    assert samples[LEADER] == 0.0
    ups = {k: v for k, v in samples.items() if k[0] == "opsdeck_collector_up"}
    assert ups
    assert set(ups.values()) == {0.0}


def test_an_unknown_role_is_refused() -> None:
    _snapshot, role, page = _page()
    role.role = "deputy"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="unknown replica role 'deputy'"):
        page.body(gzip=False)


def test_a_leader_page_before_its_values_are_loaded_is_not_ready() -> None:
    snapshot, role, page = _page()
    role.role = "leader"
    assert not page.ready
    _load(snapshot, 0)
    assert page.ready


@pytest.mark.slow
def test_replicas_count_every_kpi_once_through_failovers(db_url: str, tmp_path: Path) -> None:
    settings = Settings()
    backfill(db_url, days=0.5)
    with exporters(db_url, tmp_path, count=2) as replicas:
        leader, standby = _elected(replicas)
        with Traffic(db_url):
            time.sleep(3)
        _assert_counted_once(db_url, settings, leader, replicas)
        _assert_standing_by(standby)

        # The leader's lock session dies under it: whoever leads next, it alone serves.
        epoch = _epoch(db_url)
        with Traffic(db_url, seed=5):
            time.sleep(1)
            _terminate_leader_session(db_url, settings)
            _wait_for_election(db_url, after=epoch)
            time.sleep(1)
        leader, standby = _elected(replicas)
        _assert_counted_once(db_url, settings, leader, replicas)
        _assert_standing_by(standby)

        with Traffic(db_url, seed=8):
            time.sleep(2)
            leader.kill()
            standby.wait(lambda k, h: h.get(LEADER) == 1.0, timeout=30, what="takeover")
            replicas.append(Exporter(db_url, tmp_path, "newcomer"))
            time.sleep(2)
        alive = [standby, replicas[-1]]
        leader, newcomer = _elected(alive)
        assert leader is standby, "the newcomer took the lock from a live leader"
        _assert_counted_once(db_url, settings, leader, alive)
        _assert_standing_by(newcomer)


def _elected(replicas: list[Exporter]) -> tuple[Exporter, Exporter]:
    """(the leader, a standby), once exactly one replica says it leads."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        flags = [r.leader_flag() for r in replicas]
        if None not in flags and sorted(f or 0.0 for f in flags) == [0.0, 1.0]:
            leader = replicas[flags.index(1.0)]
            return leader, next(r for r in replicas if r is not leader)
        time.sleep(0.2)
    raise AssertionError(f"no single leader elected: {flags}")


def _assert_counted_once(
    url: str, settings: Settings, leader: Exporter, replicas: list[Exporter]
) -> None:
    """Every KPI series is on exactly one page, and the union equals plain SQL."""
    families = set(kpi_families(settings.exporter))
    leader.wait_caught_up(db_now(url))
    union = _union_of_pages([r.metrics() for r in replicas], families)
    with psycopg.connect(url) as conn:
        assert_equal(union, truth.expected(conn, settings), families)


def _union_of_pages(pages: list[tuple[Series, Series]], families: set[str]) -> Series:
    served: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
    union: Series = {}
    for kpis, health in pages:
        mine = {**of_families(kpis, families), **of_families(health, set(COLLECTOR_HEALTH))}
        served.update(mine.keys())  # a mapping would add its values
        union.update(mine)
    twice = sorted(k for k, n in served.items() if n > 1)
    assert not twice, f"{len(twice)} series served by more than one replica: {twice[:5]}"
    flags = sorted(health.get(LEADER, -1.0) for _, health in pages)
    assert flags == [0.0] * (len(pages) - 1) + [1.0], f"leader flags {flags}"
    return union


def _assert_standing_by(standby: Exporter) -> None:
    body = standby.scrape().encode()
    assert _opsdeck_families(body) == {"opsdeck_build_info", "opsdeck_exporter_leader"}
    samples = _samples(body)
    assert samples[LEADER] == 0.0
    assert [v for k, v in samples.items() if k[0] == "opsdeck_build_info"] == [1.0]
    assert "process_start_time_seconds" in {k[0] for k in samples}
    healthz = httpx.get(f"http://127.0.0.1:{standby.port}/healthz", timeout=2)
    assert (healthz.status_code, healthz.text) == (200, "ok\n")


def _epoch(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT epoch FROM ops.leaders WHERE name = %s", (store.LEADER,)
        ).fetchone()
    assert row is not None, "no exporter was ever elected"
    return int(row[0])


def _terminate_leader_session(url: str, settings: Settings) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(TERMINATE_LEADER, {"key": settings.exporter.leader_lock_key}).fetchall()
    assert rows == [(True,)], f"the leader lock's session: {rows}"


def _wait_for_election(url: str, after: int) -> None:
    deadline = time.monotonic() + 30
    while _epoch(url) <= after:
        assert time.monotonic() < deadline, "nobody was elected after the leader's session died"
        time.sleep(0.2)
