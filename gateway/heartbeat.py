"""Keeping what a worker holds leased to it: the worker's **heartbeat** step.

Contract: every ``heartbeat_seconds``, :meth:`Heartbeat.run` extends by ``lease_seconds``,
from the database clock, the leases of everything :data:`Held` says this worker still holds:
outbound deliveries in flight or attempted but not yet recorded, and inbound events being
processed. Only rows still leased to this worker and still pending are extended, so a
delivery recorded or taken over meanwhile is left alone. There is no liveness row: the
leases are the liveness. A worker that dies (or cannot reach the database for longer
than ``lease_seconds``) stops extending them, and once they expire another worker claims
the work again (at least once: a delivery keeps its ``webhook-id``). A failed beat is
reported and tried again at the next interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg_pool import AsyncConnectionPool

from core.failures import FailureReporter
from core.settings import WebhookSettings
from gateway.queries import delivery as delivery_sql
from gateway.queries import inbound as inbound_sql

log = logging.getLogger(__name__)
BEAT_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class Held:
    """The ids a worker holds right now."""

    outbound: list[int]
    inbound: list[int]


class Heartbeat:
    def __init__(
        self,
        ops: AsyncConnectionPool,
        hooks: WebhookSettings,
        worker: str,
        held: Callable[[], Held],
    ) -> None:
        self.ops = ops
        self.hooks = hooks
        self.worker = worker
        self.held = held
        self.failures = FailureReporter("heartbeat", log)

    async def run(self) -> None:
        """Beat every ``heartbeat_seconds`` until cancelled."""
        while True:
            await asyncio.sleep(self.hooks.heartbeat_seconds)
            try:
                await self.beat()
                self.failures.recovered()
            except (psycopg.Error, TimeoutError) as exc:
                self.failures.failed(exc)

    async def beat(self) -> None:
        """Extend the leases of what is held now."""
        held = self.held()
        lease = self.hooks.lease_seconds
        async with self.ops.connection(timeout=BEAT_TIMEOUT_SECONDS) as conn:
            if held.outbound:
                params = {"ids": held.outbound, "worker": self.worker, "lease": lease}
                await conn.execute(delivery_sql.HEARTBEAT, params)
            if held.inbound:
                params = {"ids": held.inbound, "worker": self.worker, "lease": lease}
                await conn.execute(inbound_sql.HEARTBEAT, params)
