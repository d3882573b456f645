"""Processing stored inbound PSP events: the reconciliation feed (``platform.psp_transactions``).

Worker step contract: claim due events ``FOR UPDATE SKIP LOCKED`` under a lease, apply each,
record the attempt. A charge event upserts its PSP object unless a newer event for the same
object was applied already (events arrive out of order; ``ops.webhook_psp_versions`` keeps
the newest applied, locked while the platform row is written). Other events are kept and
marked ignored. A failure is retried on the inbound schedule (:func:`core.retry.next_delay`:
the wait after attempt n is the schedule's n-th delay, jittered); a malformed event, or one
that still fails after the schedule, becomes a dead letter that "Reprocess dead letters"
puts back in line.

Platform writes use connections named ``core.application_names.GATEWAY``: the KPI engine's
commit horizon waits for them (it only ignores sessions that never write the platform), and
the rows get ``updated_at`` from the database clock, so the reconciliation KPIs fold them exactly.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from core.psp_webhooks import MalformedEvent, PspUpdate, identity, parse, psp_update
from core.retry import next_delay
from core.settings import WebhookSettings
from gateway import metrics as m
from gateway.queries import counters as counters_sql
from gateway.queries import inbound as sql

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: str  # processed, pending (retry), dead
    outcome: str | None  # applied, ignored, superseded
    error: str | None
    next_at: datetime | None


class InboundProcessor:
    def __init__(
        self,
        settings: WebhookSettings,
        ops: AsyncConnectionPool,
        platform: AsyncConnectionPool,
        worker: str,
    ) -> None:
        self.settings = settings
        self.ops = ops
        self.platform = platform
        self.worker = worker
        self.rng = random.Random()
        self.in_flight: set[int] = set()

    async def run_once(self, limit: int = 50) -> int:
        """Claim and process one batch; how many events it held."""
        async with self.ops.connection() as conn:
            params = {"worker": self.worker, "lease": self.settings.lease_seconds, "limit": limit}
            rows = await (await conn.execute(sql.CLAIM, params)).fetchall()
        for row in rows:
            self.in_flight.add(int(row[0]))
            try:
                await self._process(row)
            finally:
                self.in_flight.discard(int(row[0]))
        return len(rows)

    async def _process(self, row: tuple[Any, ...]) -> None:
        event_id, provider, key, _livemode, _type, body, attempt, received_at = row
        started = datetime.now(UTC)
        began = time.perf_counter()
        try:
            outcome = await self._apply(provider, key, bytes(body))
            result = Outcome("processed", outcome, None, None)
        except MalformedEvent as exc:
            result = Outcome("dead", None, f"malformed event: {exc}", None)
        except psycopg.Error as exc:
            result = self._failed(int(attempt), str(exc).strip().splitlines()[0][:500])
        duration_ms = (time.perf_counter() - began) * 1000
        await self._finish(int(event_id), int(attempt), started, duration_ms, result, received_at)

    def _failed(self, attempt: int, error: str) -> Outcome:
        schedule = self.settings.inbound_retry_schedule_seconds
        delay = next_delay(schedule, attempt, jitter=self.settings.retry_jitter, rng=self.rng)
        if delay is None:
            return Outcome("dead", None, f"failed {attempt} attempts: {error}", None)
        return Outcome("pending", None, error, datetime.now(UTC) + timedelta(seconds=delay))

    async def _apply(self, provider: str, key: str, body: bytes) -> str:
        event = parse(body)
        identity(provider, event)  # the shape was checked on receipt; a stored row is trusted
        update = psp_update(provider, event)
        if update is None or not self.settings.process_psp_transactions:
            return "ignored"
        return await self._upsert(update, key)

    async def _upsert(self, update: PspUpdate, key: str) -> str:
        version = {"psp": update.psp, "psp_id": update.psp_id}
        async with self.ops.connection() as ops, ops.transaction():
            await ops.execute(sql.ENSURE_VERSION, version)
            row = await (await ops.execute(sql.LOCK_VERSION, version)).fetchone()
            if row is not None and (row[0], row[1]) > (update.event_at, key):
                return "superseded"
            async with self.platform.connection() as platform, platform.transaction():
                await platform.execute(
                    sql.UPSERT_PSP,
                    {
                        "psp_id": update.psp_id,
                        "psp": update.psp,
                        "amount_cents": update.amount_cents,
                        "currency": update.currency,
                        "status": update.status[:40],
                        "livemode": update.livemode,
                    },
                )
            params = {**version, "event_at": update.event_at, "event_key": key}
            await ops.execute(sql.SET_VERSION, params)
        return "applied"

    async def _finish(
        self,
        event_id: int,
        attempt: int,
        started: datetime,
        duration_ms: float,
        result: Outcome,
        received_at: datetime,
    ) -> None:
        counts = m.Increments()
        succeeded = result.status == "processed"
        counts.add(m.ATTEMPTS, ("inbound", "succeeded" if succeeded else "failed"))
        if attempt > 1:
            counts.add(m.RETRIES, ("inbound",))
            if succeeded:
                counts.add(m.RECOVERED, ("inbound",))
        if succeeded:
            seconds = max(0.0, (datetime.now(UTC) - received_at).total_seconds())
            counts.observe(m.LATENCY, ("inbound",), self.settings.latency_buckets_seconds, seconds)
        async with self.ops.connection() as conn, conn.transaction():
            await conn.execute(
                sql.INSERT_ATTEMPT,
                {
                    "event_id": event_id,
                    "attempt": attempt,
                    "worker": self.worker,
                    "started_at": started,
                    "duration_ms": duration_ms,
                    "succeeded": succeeded,
                    "outcome": result.outcome,
                    "error": result.error,
                },
            )
            finished = await (
                await conn.execute(
                    sql.FINISH,
                    {
                        "id": event_id,
                        "worker": self.worker,
                        "status": result.status,
                        "outcome": result.outcome,
                        "error": result.error,
                        "next_at": result.next_at,
                    },
                )
            ).fetchone()
            if finished is not None and result.status == "dead":
                await conn.execute(sql.DEAD_LETTER, {"id": event_id, "reason": result.error})
            await conn.execute(counters_sql.BUMP, counts.params())
        if result.status != "processed":
            log.warning(
                "inbound event %d attempt %d: %s",
                event_id,
                attempt,
                result.error,
                extra={"inbound_event_id": event_id},
            )
