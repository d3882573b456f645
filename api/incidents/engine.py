"""The escalation engine's loop in the API process: fire due steps, send due
notifications, every ``tick_seconds``. Only the process holding the engine's advisory lock
runs it, so two API replicas never page anyone twice."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from api.incidents import escalation, grafana_annotations, notifier
from api.incidents.context import Incidents
from api.incidents.escalation_queries import ENGINE_LOCK
from api.runtime import Runtime

log = logging.getLogger(__name__)


async def tick(runtime: Runtime, incidents: Incidents) -> None:
    """One pass: due steps, then due notifications and annotations."""
    async with runtime.ops.connection() as conn:
        now = incidents.clock()
        await escalation.fire_due(conn, now, incidents.oncall, incidents.settings)
        await notifier.deliver_due(conn, incidents.transports, now, incidents.settings)
        if incidents.annotations is not None:
            await grafana_annotations.flush(conn, incidents.annotations, now, incidents.settings)


async def _loop(runtime: Runtime, incidents: Incidents) -> None:
    async with runtime.ops.connection() as lock_conn:
        while True:
            row = await (
                await lock_conn.execute(ENGINE_LOCK, {"key": incidents.settings.engine_lock_key})
            ).fetchone()
            if row and row[0]:
                break
            await asyncio.sleep(incidents.settings.tick_seconds)
        while True:
            try:
                await tick(runtime, incidents)
            except Exception:
                log.exception("escalation pass failed; retrying")
            await asyncio.sleep(incidents.settings.tick_seconds)


@asynccontextmanager
async def running(runtime: Runtime, incidents: Incidents) -> AsyncIterator[None]:
    if not incidents.settings.engine_enabled:
        yield
        return
    task = asyncio.create_task(_loop(runtime, incidents), name="escalation-engine")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
