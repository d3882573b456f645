"""Reconciliation drift and mismatches over the last 24 h (seed 001's query), incremental.

Each transaction of the last day is kept in ``ops.kpi_recon`` with the PSP's figure, and
its contribution summed per minute of creation. A new transaction adds its contribution;
a PSP figure that arrives or changes replaces the old contribution with the new one.

A transaction the PSP has not reported yet, created less than
``thresholds.reconciliation_grace_seconds`` ago, is pending: its report is not due, so it
counts neither as drift nor in the total. Once the grace has passed, a missing report is
drift exactly as seed 001's query counts it. The gauges take the pending rows back out of
the sums when they are read, so no bucket changes as time passes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from exporters.collector import Changes, Collector, FoldContext, SeriesKey, earliest_of
from exporters.families import NO_CURRENCY
from exporters.queries import reconciliation as q

WINDOW = timedelta(hours=24)
KEEP = WINDOW + timedelta(minutes=5)
WINDOW_LABEL = "24h"


@dataclass
class Row:
    transaction_id: int
    psp_id: str | None
    created_at: datetime
    internal: int
    psp: int | None
    currency: str = ""

    @property
    def delta(self) -> int:
        return abs(self.internal - (self.psp or 0))

    @property
    def mismatched(self) -> int:
        return int(self.psp != self.internal)


class MinuteSums:
    """Changes to the per-minute sums, accumulated over a fold."""

    def __init__(self) -> None:
        self.sums: dict[datetime, list[int]] = defaultdict(lambda: [0, 0, 0])

    def add(self, row: Row, sign: int) -> None:
        minute = row.created_at.replace(second=0, microsecond=0)
        sums = self.sums[minute]
        sums[0] += sign * row.internal
        sums[1] += sign * row.delta
        sums[2] += sign * row.mismatched

    def params(self) -> dict[str, list[Any]]:
        minutes = sorted(self.sums)
        return {
            "minutes": minutes,
            "internal": [self.sums[m][0] for m in minutes],
            "delta": [self.sums[m][1] for m in minutes],
            "mismatches": [self.sums[m][2] for m in minutes],
        }


class ReconciliationCollector(Collector):
    name = "reconciliation"
    owned = (
        "opsdeck_payment_reconciliation_drift_ratio",
        "opsdeck_payment_reconciliation_mismatches",
    )

    def earliest(self, platform: psycopg.Connection[Any]) -> datetime | None:
        return earliest_of(platform, q.EARLIEST)

    def fold(self, ctx: FoldContext, since: datetime, until: datetime, changes: Changes) -> None:
        params = {"since": since, "until": until, "cutoff": ctx.now - KEEP}
        sums = MinuteSums()
        created = [Row(r[0], r[1], r[2], r[3], r[5], r[4]) for r in ctx.rows(q.CREATED, params)]
        if created:
            self._replace(ctx, created, sums)
        reported = dict(ctx.rows(q.PSP_CHANGED, params))
        if reported:
            known = ctx.ops.execute(q.KNOWN_BY_PSP, {"psp_ids": list(reported)}).fetchall()
            updated = [Row(r[0], r[1], r[2], r[3], reported[r[1]]) for r in known]
            self._replace(ctx, updated, sums)
        if sums.sums:
            ctx.ops.execute(q.ADD_TO_MINUTES, sums.params())

    def _replace(self, ctx: FoldContext, rows: list[Row], sums: MinuteSums) -> None:
        """Write ``rows`` over what ops knew of them, moving the per-minute sums along."""
        ids = [r.transaction_id for r in rows]
        for old in ctx.ops.execute(q.KNOWN, {"ids": ids}).fetchall():
            sums.add(Row(*old), -1)
        for row in rows:
            sums.add(row, +1)
        ctx.ops.execute(
            q.UPSERT_ROWS,
            {
                "ids": ids,
                "psp_ids": [r.psp_id for r in rows],
                "created": [r.created_at for r in rows],
                "internal": [r.internal for r in rows],
                "psp": [r.psp for r in rows],
                "currencies": [r.currency or NO_CURRENCY for r in rows],
            },
        )

    def refresh_gauges(self, ctx: FoldContext, changes: Changes) -> None:
        # What fell out of the kept day goes with the gauges' refresh, not every fold.
        keep_after = {"keep_after": ctx.now - KEEP}
        ctx.ops.execute(q.EXPIRE_ROWS, keep_after)
        ctx.ops.execute(q.EXPIRE_MINUTES, keep_after)
        grace = timedelta(seconds=self.settings.thresholds.reconciliation_grace_seconds)
        row = ctx.ops.execute(
            q.WINDOW, {"start": ctx.now - WINDOW, "due": ctx.now - grace}
        ).fetchone()
        internal, delta, mismatches = row or (0, 0, 0)
        ratio = float(delta) / float(internal) if internal else 0.0
        changes.set(
            self.family("opsdeck_payment_reconciliation_drift_ratio"), (WINDOW_LABEL,), ratio
        )
        changes.set(
            self.family("opsdeck_payment_reconciliation_mismatches"), (WINDOW_LABEL,), mismatches
        )

    def zero_series(self) -> list[SeriesKey]:
        return [(name, (WINDOW_LABEL,)) for name in self.owned]
