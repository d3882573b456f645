"""Attempt outcomes on their way to the database: the worker's **record** step.

Contract: every finished attempt is :meth:`Outcomes.add`-ed and stays in memory, its
delivery still leased (``gateway.heartbeat`` renews it), until it is recorded. Every
``flush_interval_seconds``, :meth:`Outcomes.run` records up to ``RECORD_BATCH`` of them
with :func:`gateway.recorder.record`, one transaction per batch, oldest first. While
PostgreSQL is away nothing is lost: the batch stays and is tried again (the failure is
reported once per streak). After a batch is recorded the wake-up's ``recorded`` and
``outbound`` events are set (room to claim, retries may be due), and each endpoint the
batch disabled (too many failures in a row, or gone) is disabled with its deliveries parked
and an incident opened, under the worker's actor ``<WORKER>:<host>:<pid>``.
:meth:`Outcomes.drain` records what is left before the worker stops, for as long as
``shutdown_grace_seconds`` allows; what it cannot record is retried by another worker once
the leases expire. One batch is recorded at a time: the periodic run and the drain overlap
while the worker stops, and a batch recorded twice would log its attempts twice.
"""

from __future__ import annotations

import asyncio
import logging
import time

import psycopg
from psycopg_pool import AsyncConnectionPool

from core.application_names import WORKER
from core.failures import FailureReporter
from core.settings import WebhookSettings
from gateway import endpoints
from gateway.attempts import Result
from gateway.recorder import record
from gateway.wakeup import WakeUp

log = logging.getLogger(__name__)
RECORD_BATCH = 500
RECORD_RETRY_SECONDS = 0.5
RECORD_TIMEOUT_SECONDS = 10


class Outcomes:
    """The results one worker has not recorded yet."""

    def __init__(
        self, ops: AsyncConnectionPool, hooks: WebhookSettings, worker: str, wakeup: WakeUp
    ) -> None:
        self.ops = ops
        self.hooks = hooks
        self.worker = worker
        self.wakeup = wakeup
        self.pending: list[Result] = []
        self.failures = FailureReporter("record", log)
        self.recording = asyncio.Lock()

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, result: Result) -> None:
        self.pending.append(result)

    def delivery_ids(self) -> list[int]:
        return [r.claimed.delivery_id for r in self.pending]

    async def run(self) -> None:
        """Record every ``flush_interval_seconds`` until cancelled."""
        while True:
            await asyncio.sleep(self.hooks.flush_interval_seconds)
            if self.pending:
                await self.record_some()

    async def record_some(self) -> bool:
        """Record the oldest batch; False (after a pause) when the database failed."""
        async with self.recording:
            batch = self.pending[:RECORD_BATCH]
            if not batch:
                return True
            try:
                async with self.ops.connection(timeout=RECORD_TIMEOUT_SECONDS) as conn:
                    recorded = await record(conn, self.worker, batch, self.hooks)
                self.failures.recovered()
            except (psycopg.Error, TimeoutError) as exc:
                self.failures.failed(exc)
                recorded = None
            else:
                del self.pending[: len(batch)]
        if recorded is None:
            await asyncio.sleep(RECORD_RETRY_SECONDS)
            return False
        self.wakeup.recorded_some()
        for endpoint_id, reason in recorded.disable:
            await self._disable(endpoint_id, reason)
        return True

    async def drain(self) -> None:
        """Record what is left, for at most ``shutdown_grace_seconds``."""
        deadline = time.monotonic() + self.hooks.shutdown_grace_seconds
        while self.pending and time.monotonic() < deadline:
            if not await self.record_some():
                await asyncio.sleep(RECORD_RETRY_SECONDS)
        if self.pending:
            log.error(
                "stopping with %d attempts unrecorded (they will be retried)", len(self.pending)
            )

    async def _disable(self, endpoint_id: int, reason: str) -> None:
        try:
            async with self.ops.connection(timeout=RECORD_TIMEOUT_SECONDS) as conn:
                parked = await endpoints.disable(
                    conn, endpoint_id, reason, actor=f"{WORKER}:{self.worker}", incident=True
                )
        except (psycopg.Error, TimeoutError) as exc:
            log.error("could not disable endpoint %d (%s): %s", endpoint_id, reason, exc)
            return
        if parked is not None:
            log.error("endpoint %d disabled: %s; %d deliveries parked", endpoint_id, reason, parked)
