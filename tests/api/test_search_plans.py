"""A search page's plans: the first one PostgreSQL gets a time budget for, and when it runs
out the next one answers, with the first one's settings undone."""

from __future__ import annotations

import psycopg
import pytest

from api.drilldowns.plans import planned

pytestmark = pytest.mark.anyio
SETTINGS = "SELECT current_setting('statement_timeout'), current_setting('enable_seqscan')"


async def test_a_plan_over_its_budget_gives_way_to_the_next(db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("SET statement_timeout = '30s'")
        async with conn.transaction():
            plans = [
                ["SET LOCAL enable_seqscan = off", "SELECT pg_sleep(5)"],  # over budget
                ["SET LOCAL enable_indexscan = off"],
            ]
            names, rows = await planned(conn, plans, 50, SETTINGS, None)
    assert names == ["current_setting", "current_setting"]
    # The budget and the first plan's settings went with its savepoint.
    assert rows == [["30s", "on"]]


async def test_the_first_plan_that_finishes_answers(db_url: str) -> None:
    async with (
        await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn,
        conn.transaction(),
    ):
        plans = [["SET LOCAL enable_seqscan = off"], ["SET LOCAL enable_indexscan = off"]]
        _, rows = await planned(conn, plans, 5_000, SETTINGS, None)
    assert rows[0][1] == "off"  # the first plan's setting was in force


async def test_the_last_plan_keeps_the_session_timeout(db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("SET statement_timeout = '200ms'")
        async with conn.transaction():
            plans = [["SELECT pg_sleep(5)"], ["SELECT pg_sleep(5)"]]
            with pytest.raises(psycopg.errors.QueryCanceled):
                await planned(conn, plans, 50, SETTINGS, None)
