"""Requests per API key per day, as the key's page shows them.

Each API process counts the requests its keys make in memory, and every
``api.key_usage_flush_seconds`` adds its counts to ``ops.api_key_usage_daily`` in one
statement; counts from several processes add up, never overwrite. A flush that fails keeps
its counts for the next one; a process that dies loses at most one interval's counts.
The day is the UTC day the request was answered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from psycopg_pool import AsyncConnectionPool

from api.queries import key_admin as sql


@dataclass
class Counts:
    calls: int = 0
    client_errors: int = 0
    server_errors: int = 0

    def add(self, status: int) -> None:
        self.calls += 1
        self.client_errors += 400 <= status < 500
        self.server_errors += status >= 500

    def merge(self, other: Counts) -> None:
        self.calls += other.calls
        self.client_errors += other.client_errors
        self.server_errors += other.server_errors


class KeyUsage:
    def __init__(self) -> None:
        self._counts: dict[tuple[int, date], Counts] = {}

    def count(self, key_id: int, status: int) -> None:
        """One request of ``key_id`` answered with ``status``."""
        day = datetime.now(UTC).date()
        self._counts.setdefault((key_id, day), Counts()).add(status)

    async def flush(self, pool: AsyncConnectionPool) -> int:
        """Add the counts so far to the table; how many (key, day) rows it wrote."""
        taken, self._counts = self._counts, {}
        if not taken:
            return 0
        rows = sorted(taken.items())  # one lock order for every process
        params = {
            "key": [key for (key, _), _ in rows],
            "day": [day for (_, day), _ in rows],
            "calls": [c.calls for _, c in rows],
            "client_errors": [c.client_errors for _, c in rows],
            "server_errors": [c.server_errors for _, c in rows],
        }
        try:
            async with pool.connection() as conn:
                await conn.execute(sql.ADD_USAGE, params)
        except BaseException:
            self._keep(taken)
            raise
        return len(rows)

    def _keep(self, taken: dict[tuple[int, date], Counts]) -> None:
        for where, counts in taken.items():
            self._counts.setdefault(where, Counts()).merge(counts)
