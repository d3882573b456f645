"""Background work of the API process: the usage roll-up, the requests per API key, audit
retention and the retention of rejected inbound webhook requests.

Several API processes may run: the roll-up takes its state row ``FOR UPDATE SKIP LOCKED``,
so one folds while the others skip; retention is idempotent.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import psycopg

from api.queries import usage as sql
from api.runtime import Runtime
from core.application_names import API, API_RETENTION
from core.audit import apply_retention
from core.audit_checkpoints import write_current
from core.background import cancelled_on_exit
from core.database import connect
from core.failures import FailureReporter
from gateway.queries import inbound as inbound_sql

log = logging.getLogger(__name__)
FLOOR = datetime(1970, 1, 2, tzinfo=UTC)
PRUNE_BATCH = 10_000


async def fold_usage(runtime: Runtime) -> bool:
    """Fold one step of new API log rows into the usage roll-up; True when more is waiting."""
    api = runtime.api
    async with runtime.ops.connection() as ops, ops.transaction():
        state = await (await ops.execute(sql.STATE)).fetchone()
        if state is None:
            return False  # another process is folding
        folded_until: datetime = state[0]
        async with runtime.platform.connection() as platform:
            horizon_row = await (
                await platform.execute(
                    sql.HORIZON,
                    {
                        "lookback": api.usage_horizon_lookback_seconds,
                        "ignore": sql.READ_ONLY_APPLICATIONS,
                    },
                )
            ).fetchone()
            horizon: datetime = horizon_row[0] if horizon_row else datetime.now(UTC)
            if folded_until < FLOOR:
                first = await (
                    await platform.execute(sql.FIRST_WRITE, {"after": folded_until})
                ).fetchone()
                if first is None or first[0] is None:
                    return False
                folded_until = first[0]
            until = min(horizon, folded_until + timedelta(seconds=api.usage_rollup_step_seconds))
            if until <= folded_until:
                return False
            cursor = await platform.execute(sql.FOLD, {"lo": folded_until, "hi": until})
            rows = await cursor.fetchall()
        if rows:
            columns = [list(column) for column in zip(*rows, strict=True)]
            await ops.execute(sql.MERGE, dict(zip(sql.STAGED_COLUMNS, columns, strict=True)))
        await ops.execute(sql.ADVANCE, {"until": until})
    return until < horizon


def _failed(failures: FailureReporter, exc: Exception) -> None:
    """Log a failure streak once; with its traceback unless the database failed (a bug)."""
    failures.failed(exc, traceback=not isinstance(exc, psycopg.Error))


async def _usage_loop(runtime: Runtime) -> None:
    failures = FailureReporter("usage roll-up", log)
    while True:
        try:
            more = await fold_usage(runtime)
            failures.recovered()
        except Exception as exc:  # noqa: BLE001 - the loop must outlive any one fold
            _failed(failures, exc)
            more = False
        if not more:
            await asyncio.sleep(runtime.api.usage_rollup_interval_seconds)


async def _key_usage_loop(runtime: Runtime) -> None:
    """Save the requests per API key every ``api.key_usage_flush_seconds``, and once more
    when the API stops."""
    failures = FailureReporter("API key usage", log)
    try:
        while True:
            await asyncio.sleep(runtime.api.key_usage_flush_seconds)
            try:
                await runtime.key_usage.flush(runtime.ops)
                failures.recovered()
            except Exception as exc:  # noqa: BLE001 - the counts wait for the next flush
                _failed(failures, exc)
    finally:
        await _last_key_usage(runtime)


async def _last_key_usage(runtime: Runtime) -> None:
    try:
        await runtime.key_usage.flush(runtime.ops)
    except Exception as exc:  # noqa: BLE001 - stopping: the counts cannot wait any longer
        log.warning("lost the last API key usage counts: %s", exc)


def _retention(url: str, days: int) -> int:
    with connect(url, application_name=API_RETENTION) as conn:
        return apply_retention(conn, days, actor=API)


async def _periodic(what: str, interval: float, step: Callable[[], Awaitable[int]]) -> None:
    """``step`` every ``interval`` seconds; it returns how many rows it removed."""
    failures = FailureReporter(what, log)
    while True:
        try:
            deleted = await step()
            failures.recovered()
            if deleted:
                log.info("%s removed %d rows", what, deleted)
        except Exception as exc:  # noqa: BLE001 - retention is retried at its next interval
            _failed(failures, exc)
        await asyncio.sleep(interval)


async def _audit_retention(runtime: Runtime) -> int:
    url = runtime.settings.require("database_url", "audit retention")
    deleted: int = await anyio.to_thread.run_sync(_retention, url, runtime.api.audit_retention_days)
    return deleted


async def _audit_checkpoint(runtime: Runtime, path: Path) -> int:
    """Write a signed checkpoint of the audit chain (core.audit_checkpoints); removes none."""
    url = runtime.settings.require("database_url", "audit checkpoints")
    await anyio.to_thread.run_sync(write_current, url, path, API_RETENTION)
    return 0


async def prune_rejections(runtime: Runtime) -> int:
    """Delete the rejected inbound requests older than ``webhooks.retention_days``."""
    params = {"days": runtime.settings.webhooks.retention_days, "batch": PRUNE_BATCH}
    deleted = 0
    while True:
        async with runtime.ops.connection() as conn:
            cursor = await conn.execute(inbound_sql.PRUNE_REJECTIONS, params)
        deleted += cursor.rowcount
        if cursor.rowcount < PRUNE_BATCH:
            return deleted


@asynccontextmanager
async def running(runtime: Runtime) -> AsyncIterator[None]:
    tasks = [
        asyncio.create_task(_usage_loop(runtime), name="usage-rollup"),
        asyncio.create_task(_key_usage_loop(runtime), name="key-usage"),
        asyncio.create_task(
            _periodic(
                "audit retention",
                runtime.api.audit_retention_interval_seconds,
                lambda: _audit_retention(runtime),
            ),
            name="audit-retention",
        ),
        asyncio.create_task(
            _periodic(
                "rejected webhook retention",
                runtime.settings.webhooks.retention_interval_seconds,
                lambda: prune_rejections(runtime),
            ),
            name="rejection-retention",
        ),
    ]
    checkpoints = runtime.settings.audit.checkpoint_path
    if checkpoints is not None:
        interval = runtime.settings.audit.checkpoint_interval_seconds
        step = functools.partial(_audit_checkpoint, runtime, checkpoints)
        task = _periodic("audit checkpoint", interval, step)
        tasks.append(asyncio.create_task(task, name="audit-checkpoint"))
    async with cancelled_on_exit(tasks):
        yield
