"""A silent health checker is an outage: ``opsdeck_service_up`` reads 0 once the latest
check of a service is older than ``service_check_stale_seconds``, however good that check
was, and 1 again when a fresh passing check arrives. The age is measured on the exporter's
own clock-driven refresh, so the service goes down while no row arrives at all.
``opsdeck_service_last_check_timestamp_seconds`` says when the latest check ran."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from core.settings import Settings
from tests.exporters import truth
from tests.exporters.harness import Exporter, exporters
from tests.exporters.truth import Series

pytestmark = pytest.mark.slow

UP = "opsdeck_service_up"
LAST = "opsdeck_service_last_check_timestamp_seconds"
SERVICE_FAMILIES = (UP, LAST)


LEADER = ("opsdeck_exporter_leader", ())


def _check(url: str, service: str, ok: bool, age_seconds: float = 0.0) -> float:
    """Insert one check that ran ``age_seconds`` ago; return its unix time."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "INSERT INTO platform.service_checks (service, checked_at, ok, latency_ms) "
            "VALUES (%s, now() - %s * interval '1 second', %s, 20) "
            "RETURNING extract(epoch FROM checked_at)::float8",
            (service, age_seconds, ok),
        ).fetchone()
    assert row is not None
    return float(row[0])


def _services(kpis: Series) -> dict[tuple[str, str], float]:
    """(family, service) → value of the service families."""
    return {(k[0], dict(k[1])["service"]): v for k, v in kpis.items() if k[0] in SERVICE_FAMILIES}


def _wait_for(exp: Exporter, want: dict[tuple[str, str], float], what: str) -> None:
    def holds(kpis: Series, _health: Series) -> bool:
        got = _services(kpis)
        return all(got.get(key) == value for key, value in want.items())

    exp.wait(holds, timeout=30, what=what)


def test_an_old_ok_check_reads_down_until_a_fresh_one_arrives(db_url: str, tmp_path: Path) -> None:
    stale_after = Settings().thresholds.service_check_stale_seconds
    old = _check(db_url, "booking_api", ok=True, age_seconds=stale_after + 60)
    fresh = _check(db_url, "calendar_sync", ok=True)
    with exporters(db_url, tmp_path) as (exp,):
        _wait_for(
            exp,
            {
                (UP, "booking_api"): 0.0,
                (LAST, "booking_api"): old,
                (UP, "calendar_sync"): 1.0,
                (LAST, "calendar_sync"): fresh,
            },
            "the old ok check read as down",
        )
        kpis = exp.metrics()[0]
        # A service that was never checked has no series: nothing says it ran, or failed.
        assert (UP, "payment_webhook_handler") not in _services(kpis)
        with psycopg.connect(db_url) as conn:
            expected = truth.expected(conn, Settings())
        assert _services(kpis) == _services(expected)
        again = _check(db_url, "booking_api", ok=True)
        _wait_for(
            exp,
            {(UP, "booking_api"): 1.0, (LAST, "booking_api"): again},
            "up again after a fresh check",
        )


def test_a_checker_that_goes_quiet_reads_down_without_any_new_row(
    db_url: str, tmp_path: Path
) -> None:
    """Nothing is written after the one good check: only the clock moves. The check is
    written once the exporter leads, so a slow start cannot age it past the threshold
    before it is first read."""
    with exporters(db_url, tmp_path, OPSDECK_THRESHOLDS__SERVICE_CHECK_STALE_SECONDS="6") as (exp,):
        exp.wait(lambda _kpis, health: health.get(LEADER) == 1.0, what="the replica leading")
        checked = _check(db_url, "booking_api", ok=True)
        _wait_for(
            exp,
            {(UP, "booking_api"): 1.0, (LAST, "booking_api"): checked},
            "the fresh check read as up",
        )
        _wait_for(
            exp,
            {(UP, "booking_api"): 0.0, (LAST, "booking_api"): checked},
            "the silent checker read as down",
        )
        health = exp.metrics()[1]
        # Down because the service went quiet, not because the exporter failed to look.
        assert health[("opsdeck_collector_up", (("collector", "services"),))] == 1.0
