"""One fold's context: the ops transaction is fenced on first use only, and histograms
are stored per bucket."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from exporters.collector import Changes, FoldContext, histogram_series
from exporters.families import Family
from opsdeck.settings import Settings


def test_the_fence_is_taken_once_and_only_when_the_fold_uses_ops(db_url: str) -> None:
    fenced: list[datetime] = []

    def fence(ops: psycopg.Connection[Any]) -> datetime:
        now = datetime.now(UTC)
        fenced.append(now)
        return now

    with psycopg.connect(db_url) as platform, psycopg.connect(db_url) as ops:
        ctx = FoldContext(platform, ops, Settings(), fence)
        ctx.rows("SELECT 1")
        assert [ctx.opened] == [False]  # a read of the platform alone
        assert fenced == []
        ctx.ops.execute("SELECT 1")
        assert ctx.opened
        assert ctx.now == fenced[0]
        ctx.ops.execute("SELECT 2")
        assert len(fenced) == 1


def test_a_histogram_stores_the_buckets_its_observations_fell_in() -> None:
    hist = Family("h_seconds", "histogram", "help", ("route",), (0.1, 1.0, 10.0))
    changes = Changes()
    changes.observe(hist, ("/a",), [0.0, 2.0, 0.0, 1.0], 31.5)
    assert dict(changes.increments) == {
        ("h_seconds_bucket", ("/a", "1.0")): 2.0,
        ("h_seconds_bucket", ("/a", "+Inf")): 1.0,
        ("h_seconds_sum", ("/a",)): 31.5,
    }
    assert set(changes.increments) <= set(histogram_series(hist, ("/a",)))
