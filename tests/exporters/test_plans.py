"""Fold connections switch between generic and per-execution plans by window size, set
the mode again after a rollback undid it, and keep their prepared statements from one
fold to the next."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from exporters.plans import GENERIC, PER_EXECUTION, PlanChoice


def _mode(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SHOW plan_cache_mode").fetchone()
    assert row is not None
    return str(row[0])


def test_small_windows_use_generic_plans_and_catch_up_windows_do_not(db_url: str) -> None:
    plans = PlanChoice(generic_up_to=timedelta(seconds=60))
    with psycopg.connect(db_url) as conn:
        plans.apply(conn, timedelta(seconds=0.2))
        conn.commit()
        assert _mode(conn) == GENERIC
        plans.apply(conn, timedelta(hours=1))
        conn.commit()
        assert _mode(conn) == PER_EXECUTION


def test_a_rollback_undoes_the_mode_and_forget_sets_it_again(db_url: str) -> None:
    plans = PlanChoice(generic_up_to=timedelta(seconds=60))
    with psycopg.connect(db_url) as conn:
        plans.apply(conn, timedelta(seconds=1))
        conn.rollback()
        assert _mode(conn) == PER_EXECUTION  # the server's default again
        plans.apply(conn, timedelta(seconds=1))  # believes it is still set: no statement
        assert _mode(conn) == PER_EXECUTION
        conn.rollback()
        plans.forget()
        plans.apply(conn, timedelta(seconds=1))
        conn.commit()
        assert _mode(conn) == GENERIC


def test_ending_a_read_keeps_prepared_statements_and_an_error_still_rolls_back(
    db_url: str,
) -> None:
    plans = PlanChoice(generic_up_to=timedelta(seconds=60))
    with psycopg.connect(db_url) as conn:
        conn.read_only = True
        for n in range((conn.prepare_threshold or 0) + 2):
            conn.execute("SELECT count(*) FROM platform.bookings WHERE id > %(n)s", {"n": n})
            plans.end_read(conn)
        prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
        assert prepared == (1,)  # psycopg prepared the fold query and still has it
        plans.end_read(conn)
        plans.apply(conn, timedelta(seconds=1))
        try:
            conn.execute("SELECT 1 / 0")
        except psycopg.errors.DivisionByZero:
            plans.end_read(conn)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert _mode(conn) == PER_EXECUTION  # the rollback undid it ...
        plans.apply(conn, timedelta(seconds=1))  # ... and the choice knows to set it again
        assert _mode(conn) == GENERIC
