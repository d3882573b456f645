"""A transaction whose PSP report is not due yet is pending, not drift: it leaves the 24 h
reconciliation gauges until the grace period has passed, and a missing report counts as
seed 001's query counts it from then on, with no new row arriving. A report that arrived
and disagrees is drift at once, however young the transaction."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core.settings import Settings
from tests.exporters import truth
from tests.exporters.harness import Exporter, exporters
from tests.exporters.truth import Series

pytestmark = pytest.mark.slow

GRACE_SECONDS = 15.0
DRIFT = ("opsdeck_payment_reconciliation_drift_ratio", (("window", "24h"),))
MISMATCHES = ("opsdeck_payment_reconciliation_mismatches", (("window", "24h"),))
AMOUNT = 10_000


def _transaction(url: str, psp_id: str, age_seconds: float, reported: int | None) -> float:
    """Insert a charge of AMOUNT made ``age_seconds`` ago and, when ``reported`` is given,
    the PSP's report of it; return the charge's age limit for its grace (unix time)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "INSERT INTO platform.transactions (customer_id, amount_cents, currency, status, "
            "psp, psp_id, payment_intent_id, livemode, created_at, captured_at) "
            "VALUES (%s, %s, 'EUR', 'captured', 'stripe', %s, %s, true, "
            "now() - %s * interval '1 second', now()) "
            "RETURNING extract(epoch FROM created_at)::float8",
            (_customer(conn), AMOUNT, psp_id, f"pi_{psp_id}", age_seconds),
        ).fetchone()
        if reported is not None:
            _report(conn, psp_id, reported)
    assert row is not None
    return float(row[0]) + GRACE_SECONDS


def _customer(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "INSERT INTO platform.customers (name, email) VALUES ('Ada', 'ada@example.com') "
        "RETURNING id"
    ).fetchone()
    assert row is not None
    return int(row[0])


def _report(conn: psycopg.Connection[Any], psp_id: str, amount: int) -> None:
    conn.execute(
        "INSERT INTO platform.psp_transactions (psp_id, psp, amount_cents, currency, status, "
        "livemode) VALUES (%s, 'stripe', %s, 'EUR', 'succeeded', true)",
        (psp_id, amount),
    )


def _wait_for(exp: Exporter, drift: float, mismatches: float, what: str) -> Series:
    seen: list[tuple[float | None, float | None]] = []

    def holds(kpis: Series, _health: Series) -> bool:
        seen.append((kpis.get(DRIFT), kpis.get(MISMATCHES)))
        return kpis.get(DRIFT) == pytest.approx(drift) and kpis.get(MISMATCHES) == mismatches

    try:
        return exp.wait(holds, timeout=30, what=what)[0]
    except AssertionError as exc:
        raise AssertionError(f"{what}: drift, mismatches were {seen[-1:]}") from exc


def _truth(url: str) -> Series:
    settings = Settings.model_validate(
        {"thresholds": {"reconciliation_grace_seconds": GRACE_SECONDS}}
    )
    with psycopg.connect(url) as conn:
        return truth.expected(conn, settings)


def test_a_report_not_yet_due_is_pending_then_drift(db_url: str, tmp_path: Path) -> None:
    _transaction(db_url, "ch_settled", 3600, reported=AMOUNT)  # before the first fold
    grace = str(GRACE_SECONDS)
    with exporters(db_url, tmp_path, OPSDECK_THRESHOLDS__RECONCILIATION_GRACE_SECONDS=grace) as (
        exp,
    ):
        exp.wait(lambda k, h: h.get(("opsdeck_exporter_leader", ()), 0) == 1, what="leadership")
        _transaction(db_url, "ch_halved", 0, reported=AMOUNT // 2)
        due = _transaction(db_url, "ch_unreported", 0, reported=None)
        # The fresh unreported charge is pending: only the halved report is drift.
        kpis = _wait_for(exp, 0.25, 1, "the unreported charge left out as pending")
        assert time.time() < due, "the grace passed before the exporter was read"
        expected = _truth(db_url)
        assert (kpis[DRIFT], kpis[MISMATCHES]) == (expected[DRIFT], expected[MISMATCHES])
        # Past its grace, the same charge is drift: a missing report counts in full.
        kpis = _wait_for(exp, 0.5, 2, "the overdue report counted as drift")
        assert time.time() >= due
        expected = _truth(db_url)
        assert (kpis[DRIFT], kpis[MISMATCHES]) == (expected[DRIFT], expected[MISMATCHES])
        # A late report that agrees settles it.
        with psycopg.connect(db_url) as conn:
            _report(conn, "ch_unreported", AMOUNT)
        _wait_for(exp, 1 / 6, 1, "the late report settled")
