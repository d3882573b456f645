"""Each --inject kind writes exactly what its seed-001 alert needs: the condition is false
on plain history and true after the injection, checked with plain SQL over the raw rows."""

from __future__ import annotations

import threading

import psycopg
import pytest

from core.settings import Thresholds
from simulator import vocabulary
from simulator.inject import INJECTIONS, InjectionError, end, inject
from simulator.live import LiveOptions, LiveSimulator
from simulator.live_model import Anomalies
from simulator.queries.live import ACTIVE_ANOMALIES, SWEEP_UNPAID_BOOKINGS
from tests.conftest import opsdeck_env, run_opsdeck

T = Thresholds()

CONFLICT_RATE_24H = """
WITH confirmed AS (
    SELECT id, resource_id, start_at, end_at, confirmed_at, cancelled_at FROM platform.bookings
    WHERE confirmed_at IS NOT NULL
)
SELECT count(*) FILTER (WHERE EXISTS (
           SELECT FROM confirmed b WHERE b.resource_id = a.resource_id AND b.id <> a.id
             AND (b.confirmed_at, b.id) < (a.confirmed_at, a.id)
             AND b.start_at < a.end_at AND a.start_at < b.end_at
             AND (b.cancelled_at IS NULL OR b.cancelled_at > a.confirmed_at)))::float
       / greatest(count(*), 1)
FROM confirmed a WHERE a.confirmed_at >= now() - interval '24 hours'
"""
DRIFT_24H = """
SELECT sum(abs(t.amount_cents - coalesce(p.amount_cents, 0)))::float / sum(t.amount_cents)
FROM platform.transactions t LEFT JOIN platform.psp_transactions p ON t.psp_id = p.psp_id
WHERE t.created_at >= now() - interval '24 hours'
"""
CHARGEBACK_RATE_30D = """
SELECT (SELECT count(*) FROM platform.chargebacks c JOIN platform.transactions t ON t.id = c.transaction_id
        WHERE c.created_at >= now() - interval '30 days' AND t.livemode)::float
     / (SELECT count(*) FROM platform.transactions WHERE captured_at >= now() - interval '30 days' AND livemode)
"""
STUCK = """
SELECT count(*) FROM platform.bookings
WHERE status = 'pending' AND created_at < now() - interval '10 minutes'
"""
AVG_TTR = """
SELECT coalesce(avg(extract(epoch FROM resolved_at - opened_at)), 0) FROM platform.support_tickets
WHERE resolved_at >= now() - %s * interval '1 second'
"""
SERVER_ERROR_SHARE_5M = """
SELECT avg((status_code >= 500)::int) FROM platform.api_logs WHERE updated_at >= now() - interval '5 minutes'
"""
BOOKING_API_UP = """
SELECT ok FROM platform.service_checks WHERE service = 'booking_api' ORDER BY checked_at DESC LIMIT 1
"""
LATEST_CHECKS = """
SELECT service, extract(epoch FROM max(checked_at)) FROM platform.service_checks GROUP BY service
"""


def _value(url: str, sql: str, *params: object) -> float:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, params or None).fetchone()
    assert row is not None
    assert row[0] is not None
    return float(row[0])


def _inject(url: str, kind: str) -> str:
    return inject(kind, url, url, T, minutes=5, seed=1)


def _run_live(url: str, seconds: float) -> None:
    simulator = LiveSimulator(url, url, LiveOptions(rate=200, writers=8, seasonal=False))
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    simulator.run(stop, lambda counts, elapsed: None)


def test_double_booking(history_url: str) -> None:
    assert _value(history_url, CONFLICT_RATE_24H) <= T.booking_conflict_rate
    _inject(history_url, "double-booking")
    assert _value(history_url, CONFLICT_RATE_24H) > T.booking_conflict_rate


def test_psp_mismatch_passes_both_drift_thresholds(history_url: str) -> None:
    assert _value(history_url, DRIFT_24H) <= T.reconciliation_drift
    _inject(history_url, "psp-mismatch")
    assert _value(history_url, DRIFT_24H) > T.reconciliation_drift_suspend_payouts


def test_chargeback_spike(history_url: str) -> None:
    assert _value(history_url, CHARGEBACK_RATE_30D) <= T.chargeback_rate
    _inject(history_url, "chargeback-spike")
    assert _value(history_url, CHARGEBACK_RATE_30D) > T.chargeback_rate


def test_stuck_bookings(history_url: str) -> None:
    assert _value(history_url, STUCK) <= T.unprocessed_bookings
    _inject(history_url, "stuck-bookings")
    assert _value(history_url, STUCK) > T.unprocessed_bookings
    with psycopg.connect(history_url, autocommit=True) as conn:
        # A live writer's sweep that ran before the stream saw the pause leaves them stuck.
        conn.execute(SWEEP_UNPAID_BOOKINGS)
        assert _value(history_url, STUCK) > T.unprocessed_bookings
        assert conn.execute(
            "SELECT kind FROM ops.simulator_anomalies WHERE until > now()"
        ).fetchall() == [("stuck-bookings",)]


def test_slow_tickets_in_the_last_hour_and_day(history_url: str) -> None:
    for window in (3600, 86400):
        assert _value(history_url, AVG_TTR, window) <= T.support_time_to_resolve_seconds
    _inject(history_url, "slow-tickets")
    for window in (3600, 86400):
        assert _value(history_url, AVG_TTR, window) > T.support_time_to_resolve_seconds


def test_api_5xx_burst_reaches_the_live_stream(history_url: str) -> None:
    _run_live(history_url, 3)
    assert _value(history_url, SERVER_ERROR_SHARE_5M) <= T.api_5xx_rate
    _inject(history_url, "api-5xx-burst")
    _run_live(history_url, 8)
    assert _value(history_url, SERVER_ERROR_SHARE_5M) > T.api_5xx_rate


def test_service_down_reaches_the_live_stream(history_url: str) -> None:
    _run_live(history_url, 2)
    assert _value(history_url, BOOKING_API_UP) == 1
    _inject(history_url, "service-down")
    _run_live(history_url, 3)
    assert _value(history_url, BOOKING_API_UP) == 0


def test_ending_an_anomaly_brings_the_stream_back(history_url: str) -> None:
    """``--end service-down``: the booking API is up again at the next check, long before
    the injected minutes are over; ending it twice says it was no longer running."""
    _inject(history_url, "service-down")
    _run_live(history_url, 3)
    assert _value(history_url, BOOKING_API_UP) == 0
    assert end("service-down", history_url) is True
    _run_live(history_url, 3)
    assert _value(history_url, BOOKING_API_UP) == 1
    assert end("service-down", history_url) is False
    with pytest.raises(InjectionError, match="'double-booking' is not a stream anomaly"):
        end("double-booking", history_url)


def test_the_cli_ends_only_stream_anomalies(history_url: str) -> None:
    env = opsdeck_env(DATABASE_URL=history_url)
    refused = run_opsdeck("simulate", "--end", "double-booking", env=env)
    assert refused.returncode == 2, refused.stderr
    assert "--end double-booking: 'double-booking' is not a stream anomaly" in refused.stderr
    _inject(history_url, "calendar-sync-down")
    done = run_opsdeck("simulate", "--end", "calendar-sync-down", env=env)
    assert (done.returncode, done.stdout) == (0, "ended calendar-sync-down\n"), done.stderr
    with psycopg.connect(history_url) as conn:
        assert conn.execute(ACTIVE_ANOMALIES).fetchall() == []


def _latest_checks(url: str) -> dict[str, float]:
    """Service → unix time of its latest check."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(LATEST_CHECKS).fetchall()
    return {str(service): float(at) for service, at in rows}


def test_checks_stop_silences_the_health_checker(history_url: str) -> None:
    """While checks-stop lasts the live stream writes no check for any service, however long
    it runs past the check interval, and everything else keeps flowing."""
    _run_live(history_url, 2)
    before = _latest_checks(history_url)
    assert set(before) == set(vocabulary.SERVICES)
    assert "checks" in _inject(history_url, "checks-stop")
    with psycopg.connect(history_url) as conn:
        active = {str(k): float(v) for k, v in conn.execute(ACTIVE_ANOMALIES).fetchall()}
    assert set(active) == {"checks-stop"}
    simulator = LiveSimulator(history_url, history_url, LiveOptions(rate=200, seasonal=False))
    stop = threading.Event()  # the stream reads the flag itself when it starts
    threading.Timer(3, stop.set).start()
    written = simulator.run(stop, lambda counts, elapsed: None)
    assert written["api_logs"] > 0  # the platform is live ...
    assert written["service_checks"] == 0  # ... and nobody checks it
    assert _latest_checks(history_url) == before


def test_a_stream_refuses_to_ignore_an_unknown_anomaly(caplog: pytest.LogCaptureFixture) -> None:
    anomalies = Anomalies()
    anomalies.refresh({"checks-stop": 60.0, "meteor-strike": 60.0}, now=100.0)
    anomalies.refresh({"meteor-strike": 30.0}, now=101.0)
    assert anomalies.checks_stopped_until == 101.0  # no longer listed: over
    assert anomalies.service_down_until == 101.0
    refusals = [r.getMessage() for r in caplog.records if "meteor-strike" in r.getMessage()]
    assert refusals == ["live stream cannot obey injected anomaly 'meteor-strike': unknown kind"]


def test_every_seed_alert_has_an_injection() -> None:
    assert set(INJECTIONS) == {
        "double-booking",
        "psp-mismatch",
        "api-5xx-burst",
        "service-down",
        "checks-stop",
        "chargeback-spike",
        "stuck-bookings",
        "slow-tickets",
        "webhook-backlog",
        "webhook-handler-down",
        "calendar-sync-down",
        "payment-failure-spike",
        "psp-outage",
    }


def test_injection_on_an_empty_platform_says_why(db_url: str) -> None:
    with pytest.raises(InjectionError, match="no resources"):
        _inject(db_url, "stuck-bookings")
