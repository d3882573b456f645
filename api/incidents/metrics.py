"""``opsdeck_incidents_open{severity}`` for /metrics, counted in PostgreSQL at scrape time
(any API replica answers the same)."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from api.incidents import store

SEVERITIES = ("critical", "high", "medium")
HEADER = (
    "# HELP opsdeck_incidents_open Incidents not resolved yet, per severity.\n"
    "# TYPE opsdeck_incidents_open gauge\n"
)


async def exposition(pool: AsyncConnectionPool) -> bytes:
    async with pool.connection() as conn:
        counts = await store.open_counts(conn)
    names = sorted({*SEVERITIES, *counts})
    lines = [f'opsdeck_incidents_open{{severity="{s}"}} {counts.get(s, 0)}\n' for s in names]
    return (HEADER + "".join(lines)).encode()
