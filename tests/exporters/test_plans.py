"""Fold connections switch between generic and per-execution plans by window size, and
set the mode again after a rollback undid it."""

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
