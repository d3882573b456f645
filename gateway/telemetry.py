"""Which worker serves the gateway's metrics, and the values it serves.

The worker leading the gateway's leader lock (``core/leadership.py``, ``leader_lock_key``,
checked every ``leader_check_seconds``) reads the counters and gauges from the ops tables
every second and publishes them to its collector; the others publish nothing but their
leader flag and in-flight count. A worker that dies or loses its lock session stops
serving at its next refresh, and another takes over within a check interval. Serving
metrics writes nothing, so the lock has no fence.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from typing import Any

import psycopg

from core.application_names import WORKER_METRICS
from core.database import async_connect
from core.failures import FailureReporter
from core.leadership import Leadership
from core.settings import WebhookSettings
from gateway.metrics import GatewayCollector, GatewayReading, zero_counters
from gateway.queries import counters as counters_sql
from gateway.queries import gauges as gauges_sql

log = logging.getLogger(__name__)
LEADER = "gateway-metrics"
REFRESH_SECONDS = 1.0


class Telemetry:
    def __init__(self, ops_url: str, settings: WebhookSettings, collector: GatewayCollector):
        self.ops_url = ops_url
        self.settings = settings
        self.collector = collector
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.failures = FailureReporter("gateway metrics", log)
        self.leadership = Leadership(
            ops_url,
            name=LEADER,
            lock_key=settings.leader_lock_key,
            what="the webhook gateway's metrics",
            application_name=WORKER_METRICS,
            check_seconds=settings.leader_check_seconds,
        )

    @property
    def leading(self) -> bool:
        return self.leadership.leading

    async def run(self) -> None:
        contending = asyncio.create_task(self.leadership.run_async(), name="metrics-leadership")
        try:
            while True:
                await self._refresh()
                await asyncio.sleep(REFRESH_SECONDS)
        finally:
            contending.cancel()
            with suppress(asyncio.CancelledError):
                await contending
            await self._close()

    async def _refresh(self) -> None:
        if not self.leadership.leading:
            self.collector.publish(None)
            await self._close()
            return
        try:
            self.collector.publish(await self._read())
            self.failures.recovered()
        except psycopg.Error as exc:
            self.failures.failed(exc)
            self.collector.publish(None)
            await self._close()

    async def _read(self) -> GatewayReading:
        if self.conn is None or self.conn.closed:
            self.conn = await async_connect(
                self.ops_url, application_name=WORKER_METRICS, autocommit=True
            )
        counters = zero_counters()
        for metric, labels, value in await (await self.conn.execute(counters_sql.ALL)).fetchall():
            counters[(str(metric), tuple(labels))] = float(value)
        row = await (await self.conn.execute(gauges_sql.GAUGES)).fetchone()
        assert row is not None
        out_q, in_q, out_dead, in_dead, enabled, disabled, open_ = (float(v or 0) for v in row)
        return GatewayReading(
            counters,
            {"inbound": in_q, "outbound": out_q},
            {"inbound": in_dead, "outbound": out_dead},
            {"enabled": enabled, "disabled": disabled, "circuit_open": open_},
        )

    async def _close(self) -> None:
        if self.conn is not None:
            try:
                await self.conn.close()
            except psycopg.Error as exc:
                log.debug("closing the metrics connection: %s", exc)
            self.conn = None
