"""The escalation engine's loop in the API process: fire due steps, send due
notifications, every ``tick_seconds``.

Only the API process leading the engine's leader lock (``core/leadership.py``:
``incidents.engine_lock_key``, checked every ``incidents.engine_check_seconds``) runs the
passes, so two replicas do not page anyone twice; when the leader's lock session dies it
stops at its next pass and another replica takes over within a check interval. Firing
steps is fenced: the transaction that claims due steps and queues their notifications
checks the epoch first, so a leader that lost the lock fires nothing after another was
elected. Sending is not fenced and needs no fence: each notification is claimed
``FOR UPDATE SKIP LOCKED`` and marked sent in its own transaction, so it goes out once
whoever sends it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg

from api.incidents import escalation, grafana_annotations, notifier
from api.incidents.context import Incidents
from api.incidents.queries.escalation import ENGINE_FENCE_KEY, ENGINE_LEADER
from api.runtime import Runtime
from core.application_names import API_ENGINE
from core.background import cancelled_on_exit
from core.failures import FailureReporter
from core.leadership import Fence, Leadership, NotLeader

log = logging.getLogger(__name__)
FENCE = Fence(ENGINE_LEADER, ENGINE_FENCE_KEY)


async def tick(runtime: Runtime, incidents: Incidents, epoch: int) -> None:
    """One pass under ``epoch``: due steps (fenced), then due notifications and
    annotations. Raises :class:`NotLeader` once another replica was elected."""
    async with runtime.ops.connection() as conn:
        now = incidents.clock()
        async with conn.transaction():
            await FENCE.check_async(conn, epoch)
            await escalation.fire_due(conn, now, incidents.oncall, incidents.settings)
        await notifier.deliver_due(conn, incidents.transports, now, incidents.settings)
        if incidents.annotations is not None:
            await grafana_annotations.flush(conn, incidents.annotations, now, incidents.settings)


def leadership(runtime: Runtime, incidents: Incidents) -> Leadership:
    settings = incidents.settings
    return Leadership(
        runtime.settings.require("database_url", "the escalation engine"),
        name=ENGINE_LEADER,
        lock_key=settings.engine_lock_key,
        fence_key=ENGINE_FENCE_KEY,
        what="the escalation engine",
        application_name=API_ENGINE,
        check_seconds=settings.engine_check_seconds,
    )


async def _loop(runtime: Runtime, incidents: Incidents, leader: Leadership) -> None:
    failures = FailureReporter("escalation pass", log)
    while True:
        epoch = leader.epoch
        if epoch is not None:
            try:
                await tick(runtime, incidents, epoch)
                failures.recovered()
            except NotLeader as exc:
                log.warning("escalation pass not run: %s", exc)
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any one pass
                failures.failed(exc, traceback=not isinstance(exc, psycopg.Error))
        await asyncio.sleep(incidents.settings.tick_seconds)


@asynccontextmanager
async def running(runtime: Runtime, incidents: Incidents) -> AsyncIterator[None]:
    if not incidents.settings.engine_enabled:
        yield
        return
    leader = leadership(runtime, incidents)
    tasks = [
        asyncio.create_task(leader.run_async(), name="escalation-leadership"),
        asyncio.create_task(_loop(runtime, incidents, leader), name="escalation-engine"),
    ]
    async with cancelled_on_exit(tasks):
        yield
