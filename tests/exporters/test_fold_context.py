"""One fold's context: the ops transaction is fenced on first use only, histograms are
stored per bucket, and only one-query folds read outside a transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import psycopg

from core.settings import Settings
from exporters.collector import Changes, FoldContext, histogram_series
from exporters.engine import Engine, FoldLoop
from exporters.families import Family
from exporters.server import build_collectors


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


class _CountingContext(FoldContext):
    queries = 0

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        self.queries += 1
        return super().rows(sql, params)


def test_collectors_that_fold_in_one_query_read_without_a_transaction(db_url: str) -> None:
    """``one_snapshot = False`` saves a fold's BEGIN and COMMIT; it is only right for a
    fold of one query, which sees one snapshot anyway. The others read in REPEATABLE READ."""
    settings = Settings()
    engine = SimpleNamespace(settings=settings, platform_url=db_url, ops_url=db_url)
    until = datetime.now(UTC)
    for collector in build_collectors(settings):
        worker = FoldLoop(cast(Engine, engine), collector)
        platform, ops = worker._connections()
        try:
            assert platform.autocommit is not collector.one_snapshot, collector.name
            if collector.one_snapshot:
                assert platform.isolation_level == psycopg.IsolationLevel.REPEATABLE_READ
            ctx = _CountingContext(platform, ops, settings, lambda _ops: until)
            collector.fold(ctx, until - timedelta(minutes=1), until, Changes())
            if not collector.one_snapshot:
                assert ctx.queries == 1, f"{collector.name} folds in {ctx.queries} queries"
        finally:
            worker._close()
