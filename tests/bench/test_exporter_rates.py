"""The rate benchmark's measuring parts, against a real PostgreSQL: the platform's writes
counted from its table statistics, the commit horizon's lag and who holds it, the machine's
busy share, and the table's columns."""

from __future__ import annotations

import argparse
import time

import psycopg
import pytest

from bench.exporter_rates import (
    HEADER,
    RateRow,
    Window,
    _writes,
    horizon_lags,
    measure,
    rates,
    row,
)
from bench.pgcpu import CpuWindow, machine_cpu
from core.application_names import SIMULATOR

CUSTOMER = "INSERT INTO platform.customers (id, name, email) VALUES (1, 'c', 'c@example.com')"
INSERT_ATTEMPT = (
    "INSERT INTO platform.transactions (customer_id, amount_cents, currency, status, psp, "
    "payment_intent_id, livemode) VALUES (1, 100, 'USD', 'pending', 'stripe', 'pi_bench', true)"
)


def test_writes_count_attempts_and_every_row_written(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(CUSTOMER)
    attempts, rows = _writes(db_url)
    with psycopg.connect(db_url) as conn:
        for _ in range(3):
            conn.execute(INSERT_ATTEMPT)
        conn.execute("UPDATE platform.transactions SET status = 'failed'")
    end_attempts, end_rows = _writes(db_url)
    assert end_attempts - attempts == 3
    assert end_rows - rows == 6  # three inserts, three updates


def test_the_horizon_lag_follows_an_open_platform_transaction(db_url: str) -> None:
    with horizon_lags(db_url, ignored=[]) as (quiet, _):
        time.sleep(1.2)
    assert quiet
    assert max(quiet) < 0.5
    with (
        psycopg.connect(db_url, application_name=SIMULATOR) as writer,
        horizon_lags(db_url, ignored=[]) as (lags, held),
    ):
        writer.execute("SELECT 1")  # opens the transaction, and its start time
        time.sleep(2.2)
    assert max(lags) > 1.5
    assert all(held)


def test_an_ignored_session_does_not_hold_the_horizon(db_url: str) -> None:
    with (
        psycopg.connect(db_url, application_name="reader") as reader,
        horizon_lags(db_url, ignored=["reader"]) as (lags, held),
    ):
        reader.execute("SELECT 1")
        time.sleep(1.2)
    assert lags
    assert max(lags) < 0.5
    assert not any(held)


def test_machine_cpu_sees_a_busy_loop() -> None:
    busy, total = machine_cpu()
    spent = time.process_time() + 0.4
    while time.process_time() < spent:
        pass
    end_busy, end_total = machine_cpu()
    assert end_busy - busy >= 0.35  # at least this process's own 0.4 s, give or take a tick
    assert end_total - total >= end_busy - busy - 0.02  # equal on a saturated machine


def test_measure_counts_the_rows_of_its_window(db_url: str, admin_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(CUSTOMER)
        conn.execute(INSERT_ATTEMPT)
    window = measure(db_url, admin_url, SIMULATOR, 1.0, [])
    assert window.attempts == 0
    assert window.rows == 0
    assert 0.0 <= window.busy <= 1.0
    assert window.seconds >= 1.0


def test_a_row_reports_per_second_and_per_thousand_rows() -> None:
    alone = Window(60.0, CpuWindow(20.0, 15.0), 36_000, 600_000, 0.97)
    beside = Window(60.0, CpuWindow(24.0, 3.0), 36_000, 600_000, 1.0, [0.2, 0.4, 5.0], 3)
    line = row(RateRow("opsdeck", 600, alone, beside, [0.5, 0.6]))
    assert len(line) == len(HEADER)
    assert "600" in line
    assert "10,000" in line
    assert "97%" in line
    assert f"{3.0 / 600_000 * 1000:.3f}" in line  # own CPU s per 1,000 rows
    assert "100%" in line  # every lag sample held by the traffic


@pytest.mark.parametrize("text", ["", "600,-1", "0"])
def test_rates_must_be_positive(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        rates(text)
