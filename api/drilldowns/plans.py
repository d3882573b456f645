"""Running a page query under the plans its view chose (search): the first plan gets a time
budget, and when it runs out the next one answers."""

from __future__ import annotations

from typing import Any

import psycopg

from api.drilldowns.spec import Plans


async def planned(
    conn: psycopg.AsyncConnection[Any], plans: Plans, budget_ms: int, query: str, args: Any
) -> tuple[list[str], list[list[Any]]]:
    """The rows of the first plan that finishes: each but the last gets ``budget_ms``, in a
    savepoint whose rollback also undoes its SET LOCAL settings."""
    for attempt, settings in enumerate(plans):
        last = attempt == len(plans) - 1
        if last and not settings:
            return await _rows(conn, query, args)
        try:
            async with conn.transaction():
                if not last:
                    await conn.execute(f"SET LOCAL statement_timeout = {budget_ms}")
                for setting in settings:
                    await conn.execute(setting)
                return await _rows(conn, query, args)
        except psycopg.errors.QueryCanceled:
            if last:
                raise
    raise ValueError("a planner returned no plan")


async def _rows(
    conn: psycopg.AsyncConnection[Any], query: str, args: Any
) -> tuple[list[str], list[list[Any]]]:
    cursor = await conn.execute(query, args)
    names = [column.name for column in cursor.description or ()]
    return names, [list(r) for r in await cursor.fetchall()]
