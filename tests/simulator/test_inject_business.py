"""The business alerts' injections reach the live stream: each service's checks fail on
their own, a payment failure spike passes the spike alert's floor without taking either
PSP below the outage line, and a PSP outage fails that PSP's attempts only."""

from __future__ import annotations

import threading

import psycopg
import pytest

from core.settings import Thresholds
from simulator import vocabulary
from simulator.inject import inject
from simulator.live import LiveOptions, LiveSimulator
from simulator.live_model import Anomalies

T = Thresholds()
LATEST_CHECKS = """
SELECT DISTINCT ON (service) service, ok FROM platform.service_checks
ORDER BY service, checked_at DESC
"""
# Live attempts made since %s, per PSP: attempts, failed, failed with a processing error.
ATTEMPTS_SINCE = """
SELECT psp, count(*), count(*) FILTER (WHERE status = 'failed'),
       count(*) FILTER (WHERE failure_code = 'processing_error')
FROM platform.transactions WHERE livemode AND created_at >= %s GROUP BY psp
"""


def _run_live(url: str, seconds: float) -> None:
    simulator = LiveSimulator(url, url, LiveOptions(rate=200, writers=8, seasonal=False))
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    simulator.run(stop, lambda counts, elapsed: None)


def _latest_checks(url: str) -> dict[str, bool]:
    with psycopg.connect(url) as conn:
        return {str(s): bool(ok) for s, ok in conn.execute(LATEST_CHECKS).fetchall()}


def _attempts_during_live(url: str, seconds: float) -> dict[str, tuple[int, int, int]]:
    """PSP → (attempts, failed, processing errors) of a live run of ``seconds``."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    _run_live(url, seconds)
    with psycopg.connect(url) as conn:
        rows = conn.execute(ATTEMPTS_SINCE, (row[0],)).fetchall()
    return {str(psp): (int(n), int(failed), int(errors)) for psp, n, failed, errors in rows}


def _failed_share(counts: dict[str, tuple[int, int, int]]) -> float:
    return sum(c[1] for c in counts.values()) / sum(c[0] for c in counts.values())


@pytest.mark.parametrize(
    ("kind", "service"),
    [("webhook-handler-down", "payment_webhook_handler"), ("calendar-sync-down", "calendar_sync")],
)
def test_a_service_down_fails_that_services_checks_only(
    history_url: str, kind: str, service: str
) -> None:
    _run_live(history_url, 2)
    assert set(_latest_checks(history_url).values()) == {True}
    assert service in inject(kind, history_url, history_url, T, minutes=5, seed=1)
    _run_live(history_url, 3)
    checks = _latest_checks(history_url)
    assert checks == {s: s != service for s in vocabulary.SERVICES}


def test_payment_failure_spike_passes_the_floor_and_leaves_both_psps_up(
    history_url: str,
) -> None:
    before = _attempts_during_live(history_url, 4)
    assert _failed_share(before) < T.payment_failure_min_ratio
    inject("payment-failure-spike", history_url, history_url, T, minutes=5, seed=1)
    during = _attempts_during_live(history_url, 8)
    assert _failed_share(during) > T.payment_failure_min_ratio
    assert set(during) == {"stripe", "paystack"}
    for psp, (attempts, failed, _) in during.items():
        assert 1 - failed / attempts > T.psp_outage_success_ratio, psp


def test_psp_outage_fails_every_attempt_at_one_psp(history_url: str) -> None:
    inject("psp-outage", history_url, history_url, T, minutes=5, seed=1)
    during = _attempts_during_live(history_url, 6)
    attempts, failed, errors = during[vocabulary.OUTAGE_PSP]
    assert attempts == failed == errors > 0
    (other,) = set(during) - {vocabulary.OUTAGE_PSP}
    attempts, failed, _ = during[other]
    assert 1 - failed / attempts > T.psp_outage_success_ratio


def test_stream_flags_name_the_trouble() -> None:
    anomalies = Anomalies()
    anomalies.refresh({"calendar-sync-down": 60.0, "psp-outage": 60.0}, now=100.0)
    assert anomalies.services_down(120.0) == {"calendar_sync"}
    assert anomalies.services_down(161.0) == set()
    trouble = anomalies.payments(120.0)
    assert trouble.psp_down == vocabulary.OUTAGE_PSP
    assert trouble.first_attempt_failure_share == vocabulary.ATTEMPT_FAILURE_SHARE
    anomalies.refresh({"payment-failure-spike": 30.0}, now=100.0)
    assert anomalies.payments(120.0).psp_down is None
    assert anomalies.payments(120.0).first_attempt_failure_share > T.payment_failure_min_ratio
