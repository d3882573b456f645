"""How a collector's platform queries are planned.

In steady state a collector folds a fraction of a second of event time, several times a
second, through the same few prepared range queries. Planning them for their parameters
every time costs PostgreSQL more CPU than running them, and for windows that small every
plan is the same index range scan. So folds of small windows reuse one generic plan per
query. The fold queries are written so that their generic plans are index range scans
whose joins probe a primary key or index per row: where a generic row estimate could
tip a join to a hash over a whole table, the lookup is a per-row subquery or a LATERAL
... LIMIT 1. Catch-up windows are planned for their size, as usual.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from exporters.queries import plans as q

GENERIC = "force_generic_plan"
PER_EXECUTION = "auto"


class PlanChoice:
    """The plan cache mode of one platform connection, switched only when it changes."""

    def __init__(self, generic_up_to: timedelta) -> None:
        self._generic_up_to = generic_up_to
        self._mode: str | None = None  # the connection's mode, when known

    def apply(self, platform: psycopg.Connection[Any], window: timedelta) -> None:
        """Before folding ``window``: generic plans for a small window, else per execution."""
        mode = GENERIC if window <= self._generic_up_to else PER_EXECUTION
        if mode != self._mode:
            platform.execute(q.SET_PLAN_CACHE_MODE, {"mode": mode})
            self._mode = mode

    def forget(self) -> None:
        """A new connection, or a rollback that undid the setting: set it again next time."""
        self._mode = None

    def end_read(self, platform: psycopg.Connection[Any]) -> None:
        """End a read-only fold transaction. COMMIT, not ROLLBACK: psycopg drops its
        prepared statements when it sees a ROLLBACK, and the fold queries would be parsed
        and planned again on every fold. After an error there is no choice."""
        if platform.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            platform.rollback()
            self.forget()
        else:
            platform.commit()
