"""How many rows a list's filters match, as cheaply as the answer allows.

Counting every match of a filter over tens of millions of rows would cost more than the
page. So the count reads at most ``api.count_exact_cap`` + 1 matches, within
``api.count_budget_seconds``: below the cap it is exact; at the cap, or when time runs out,
the page shows the planner's row estimate (``EXPLAIN``), marked "about".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from api.drilldowns.spec import ListView
from api.queries import counting as sql
from api.queries.listing import PageRequest, matching_query
from core.settings import ApiSettings


@dataclass(frozen=True)
class Count:
    value: int  # exact, or the planner's estimate
    exact: bool
    more_than: int | None = None  # a bound the capped count proved, when it hit the cap

    def of(self, shown: int) -> str:
        """``50 of 1,234``, ``50 of about 12,300``, ``50 of more than 10,000``."""
        if self.exact:
            return f"{shown:,} of {self.value:,}"
        if self.more_than is not None and self.value <= self.more_than:
            return f"{shown:,} of more than {self.more_than:,}"
        return f"{shown:,} of about {self.value:,}"


def matching(view: ListView, request: PageRequest) -> tuple[str, dict[str, Any]]:
    if view.listing is not None and view.page_sql is None:
        return matching_query(view.listing, request)
    return view.query(request, export=True)


async def count(
    conn: psycopg.AsyncConnection[Any], view: ListView, request: PageRequest, api: ApiSettings
) -> Count:
    """The matches of the request's filters (its cursor ignored), in the caller's
    transaction."""
    query, args = matching(view, request)
    cap = api.count_exact_cap
    budget_ms = max(1, int(api.count_budget_seconds * 1000))
    counted: int | None = None
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL statement_timeout = {budget_ms}")
            row = await (
                await conn.execute(sql.capped(query), {**args, "count_cap": cap + 1})
            ).fetchone()
            counted = int(row[0]) if row else 0
    except psycopg.errors.QueryCanceled:
        counted = None
    if counted is not None and counted <= cap:
        return Count(counted, exact=True)
    plan = await (await conn.execute(sql.estimate(query), args)).fetchone()
    estimate = int(plan[0][0]["Plan"]["Plan Rows"]) if plan else 0
    return Count(estimate, exact=False, more_than=cap if counted is not None else None)
