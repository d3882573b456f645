"""Which worker serves the gateway's metrics, and the values it serves.

The worker holding the gateway's session-level advisory lock (``leader_lock_key``) reads
the counters and gauges from the ops tables every second and publishes them to its
collector; the others publish nothing but their leader flag and in-flight count. The lock
lives as long as the leader's connection: a worker that dies releases it, and another takes
over within a second.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg

from core.database import libpq_url
from core.settings import WebhookSettings
from gateway.metrics import GatewayCollector, Snapshot, zero_counters
from gateway.queries import counters as counters_sql
from gateway.queries import gauges as gauges_sql

log = logging.getLogger(__name__)
APPLICATION = "opsdeck-worker-metrics"
REFRESH_SECONDS = 1.0


class Telemetry:
    def __init__(self, ops_url: str, settings: WebhookSettings, collector: GatewayCollector):
        self.ops_url = ops_url
        self.settings = settings
        self.collector = collector
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.failure: str | None = None
        self.leading = False

    async def run(self) -> None:
        try:
            while True:
                try:
                    if await self._lead():
                        self.collector.publish(await self._read())
                    else:
                        self.collector.publish(None)
                    self._report(None)
                except psycopg.Error as exc:
                    self._report(str(exc).strip().splitlines()[0] if str(exc) else repr(exc))
                    self.collector.publish(None)
                    await self._close()
                await asyncio.sleep(REFRESH_SECONDS)
        finally:
            await self._close()

    async def _lead(self) -> bool:
        """Whether this worker leads; a follower asks for the lock again on every call."""
        if self.conn is None or self.conn.closed:
            self.leading = False
            self.conn = await psycopg.AsyncConnection.connect(
                libpq_url(self.ops_url),
                autocommit=True,
                application_name=APPLICATION,
                connect_timeout=5,
            )
        if not self.leading:
            cursor = await self.conn.execute(
                "SELECT pg_try_advisory_lock(%s)", (self.settings.leader_lock_key,)
            )
            row = await cursor.fetchone()
            self.leading = bool(row and row[0])
            if self.leading:
                log.info("serving the webhook gateway's metrics")
        return self.leading

    async def _read(self) -> Snapshot:
        assert self.conn is not None
        counters = zero_counters()
        for metric, labels, value in await (await self.conn.execute(counters_sql.ALL)).fetchall():
            counters[(str(metric), tuple(labels))] = float(value)
        row = await (await self.conn.execute(gauges_sql.GAUGES)).fetchone()
        assert row is not None
        out_q, in_q, out_dead, in_dead, enabled, disabled, open_ = (float(v or 0) for v in row)
        return Snapshot(
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
        self.leading = False

    def _report(self, error: str | None) -> None:
        if error != self.failure:
            if error:
                log.error("gateway metrics: %s", error)
            elif self.failure:
                log.info("gateway metrics: recovered")
            self.failure = error
