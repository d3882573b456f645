"""``opsdeck worker``: delivers outbound webhooks, processes inbound PSP events, tails
platform events into messages, and serves the gateway's metrics.

Worker step contracts:

- **claim** (:mod:`gateway.queries.delivery`): due deliveries ``FOR UPDATE SKIP
  LOCKED``, within each endpoint's rate limit and concurrency cap, under a lease;
- **attempt** (:mod:`gateway.attempts`): sign and send, at most ``concurrency`` at a
  time per process;
- **record** (:mod:`gateway.recorder`): results in batches, one transaction each;
- **heartbeat**: leases of everything still in hand are extended every
  ``heartbeat_seconds``; a worker that dies stops extending them, and once they expire
  another worker takes the deliveries over (at least once: the ``webhook-id`` is the same);
- **wake-up**: LISTEN/NOTIFY on ``opsdeck_webhooks`` (sent by the outbox at commit), with
  polling every ``poll_interval_seconds`` as the backup;
- **SIGTERM**: stop claiming, let the attempts in flight finish (up to
  ``shutdown_grace_seconds``), record them, hand back the rest, exit.

Nothing here uses Redis. PostgreSQL going away stops claiming and recording until it is
back; results wait in memory and are recorded then.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import threading
import time
from contextlib import suppress
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from core.database import libpq_url
from core.failures import Backoff, FailureReporter
from core.settings import Settings
from gateway import endpoints
from gateway.attempts import Claimed, Result, perform
from gateway.inbound_processing import GATEWAY_APPLICATION, InboundProcessor
from gateway.metrics import GatewayCollector
from gateway.queries import delivery as sql
from gateway.queries import inbound as inbound_sql
from gateway.queries.outbox import CHANNEL
from gateway.recorder import record
from gateway.tail import PlatformTail
from gateway.telemetry import Telemetry
from gateway.transport import WebhookTransport

log = logging.getLogger(__name__)
APPLICATION = "opsdeck-worker"
MAX_ENDPOINTS_PER_CLAIM = 100
RECORD_BATCH = 500
BUSY_RETRY_SECONDS = 0.02
# A loop that keeps failing waits 0.2 s, then twice as long each time, up to 5 s.
RETRY_INITIAL_SECONDS = 0.2
RETRY_MAX_SECONDS = 5.0
RECORD_RETRY_SECONDS = 0.5


def _pool(url: str, name: str, size: int) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        libpq_url(url),
        min_size=1,
        max_size=size,
        kwargs={"autocommit": True, "application_name": name, "connect_timeout": 5},
        open=False,
        check=AsyncConnectionPool.check_connection,
        name=name,
    )


def _backoff() -> Backoff:
    return Backoff(RETRY_INITIAL_SECONDS, RETRY_MAX_SECONDS)


class Worker:
    def __init__(self, settings: Settings, concurrency: int | None = None) -> None:
        self.settings = settings
        self.hooks = settings.webhooks
        self.concurrency = concurrency or self.hooks.concurrency
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.ops_url = settings.require("database_url", "opsdeck worker")
        self.platform_url = settings.platform_url or self.ops_url
        self.ops = _pool(self.ops_url, APPLICATION, 6)
        self.gateway = _pool(self.platform_url, GATEWAY_APPLICATION, 2)
        self.transport = WebhookTransport(self.hooks, self.concurrency)
        self.collector = GatewayCollector(self.hooks.latency_buckets_seconds)
        self.telemetry = Telemetry(self.ops_url, self.hooks, self.collector)
        self.inbound = InboundProcessor(self.hooks, self.ops, self.gateway, self.name)
        self.rng = random.Random()
        self.sending: dict[asyncio.Task[None], Claimed] = {}
        self.results: list[Result] = []
        self.wake_outbound = asyncio.Event()
        self.wake_inbound = asyncio.Event()
        self.recorded = asyncio.Event()
        self.failures: dict[str, FailureReporter] = {}

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        await self.ops.open(wait=False)
        await self.gateway.open(wait=False)
        tail_stop = threading.Event()
        background = [
            asyncio.create_task(self._listen(), name="listen"),
            asyncio.create_task(self._record_loop(), name="record"),
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._inbound_loop(stop), name="inbound"),
            asyncio.create_task(self.telemetry.run(), name="telemetry"),
        ]
        if self.hooks.tail_enabled:
            tail = PlatformTail(self.settings, self.ops_url, self.platform_url)
            background.append(asyncio.create_task(asyncio.to_thread(tail.run, tail_stop)))
        log.info("worker %s: delivering with concurrency %d", self.name, self.concurrency)
        try:
            await self._claim_loop(stop)
            await self._drain()
        finally:
            tail_stop.set()
            for task in background:
                task.cancel()
            for task in background:
                with suppress(asyncio.CancelledError):
                    await task
            await self.transport.aclose()
            await self.gateway.close()
            await self.ops.close()
            log.info("worker %s: stopped", self.name)

    async def _drain(self) -> None:
        """SIGTERM: finish what is in flight, record it, hand back what never started."""
        if self.sending:
            log.info("finishing %d deliveries in flight", len(self.sending))
            _, late = await asyncio.wait(
                list(self.sending), timeout=self.hooks.shutdown_grace_seconds
            )
            unfinished = [self.sending[t] for t in late]
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            await self._release([c.delivery_id for c in unfinished])
        deadline = time.monotonic() + self.hooks.shutdown_grace_seconds
        while self.results and time.monotonic() < deadline:
            if not await self._record_some():
                await asyncio.sleep(0.5)
        if self.results:
            log.error(
                "stopping with %d attempts unrecorded (they will be retried)", len(self.results)
            )

    async def _release(self, ids: list[int]) -> None:
        if not ids:
            return
        try:
            async with self.ops.connection(timeout=5) as conn:
                await conn.execute(sql.RELEASE, {"ids": ids, "worker": self.name})
        except (psycopg.Error, TimeoutError) as exc:
            log.warning("could not hand back %d deliveries (leases expire): %s", len(ids), exc)

    # -- claiming -------------------------------------------------------------------------

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        backoff = _backoff()
        while not stop.is_set():
            room = self.concurrency - len(self.sending) - len(self.results)
            if room <= 0:
                await self._wait(stop, self.recorded, self.hooks.poll_interval_seconds)
                continue
            try:
                claimed, retry_in = await self._claim(min(room, self.hooks.claim_batch))
                self._ok("claim", backoff)
            except (psycopg.Error, TimeoutError) as exc:
                self._failed("claim", exc)
                await self._wait(stop, None, backoff.next())
                continue
            for item in claimed:
                task = asyncio.create_task(self._attempt(item))
                self.sending[task] = item
            self.collector.in_flight = len(self.sending)
            if claimed and len(claimed) >= min(room, self.hooks.claim_batch):
                continue
            await self._wait(stop, self.wake_outbound, retry_in or self.hooks.poll_interval_seconds)

    async def _wait(self, stop: asyncio.Event, event: asyncio.Event | None, timeout: float) -> None:
        waiters = [asyncio.create_task(stop.wait())]
        if event is not None:
            waiters.append(asyncio.create_task(event.wait()))
        _, pending = await asyncio.wait(waiters, timeout=timeout, return_when="FIRST_COMPLETED")
        for waiter in pending:
            waiter.cancel()
        if event is not None:
            event.clear()

    async def _claim(self, wanted: int) -> tuple[list[Claimed], float | None]:
        """One claim transaction; (claimed deliveries, seconds until a limit lets more go)."""
        async with self.ops.connection(timeout=10) as conn, conn.transaction():
            params = {
                "threshold": self.hooks.circuit_failure_threshold,
                "endpoints": MAX_ENDPOINTS_PER_CLAIM,
            }
            due = await (await conn.execute(sql.DUE_ENDPOINTS, params)).fetchall()
            if not due:
                busy = await (await conn.execute(sql.DUE_ELSEWHERE)).fetchone()
                return [], BUSY_RETRY_SECONDS if busy and busy[0] else None
            shares, retry_in = self._shares(due, wanted)
            ids = [int(r[0]) for r in due]
            counts = [shares[i] for i in ids]
            rows = await (
                await conn.execute(
                    sql.CLAIM,
                    {
                        "endpoints": ids,
                        "counts": counts,
                        "worker": self.name,
                        "lease": self.hooks.lease_seconds,
                    },
                )
            ).fetchall()
            spent = dict.fromkeys(ids, 0)
            for row in rows:
                spent[int(row[1])] += 1
            tokens = [float(r[3]) if r[3] is not None else 0.0 for r in due]
            await conn.execute(
                sql.SPEND_TOKENS,
                {"endpoints": ids, "tokens": tokens, "spent": [spent[i] for i in ids]},
            )
            secrets = await self._secrets(conn, [i for i in ids if spent[i]])
        urls = {int(r[0]): str(r[1]) for r in due}
        claimed = [
            Claimed(
                delivery_id=int(r[0]),
                endpoint_id=int(r[1]),
                attempt=int(r[2]),
                trigger=str(r[3]),
                uid=str(r[4]),
                body=str(r[5]),
                created_at=r[6],
                url=urls[int(r[1])],
                secrets=secrets.get(int(r[1]), ()),
            )
            for r in rows
        ]
        return claimed, retry_in

    def _shares(
        self, due: list[tuple[Any, ...]], wanted: int
    ) -> tuple[dict[int, int], float | None]:
        """What each endpoint may take now: its room (cap minus in flight; one probe while
        its circuit is half-open; its whole tokens), the batch split fairly between them."""
        room: dict[int, int] = {}
        retry_in: float | None = None
        for endpoint_id, _url, cap, tokens, probing, in_flight in due:
            free = max(0, int(cap) - int(in_flight))
            if probing:
                free = 1 if int(in_flight) == 0 else 0
            if tokens is not None:
                whole = int(float(tokens))
                free = min(free, whole)
                if whole < 1:
                    retry_in = min(retry_in or 1.0, 0.1)
            room[int(endpoint_id)] = free
        shares = dict.fromkeys(room, 0)
        left = wanted
        while left > 0:
            hungry = [i for i in room if shares[i] < room[i]]
            if not hungry:
                break
            each = max(1, left // len(hungry))
            for i in hungry:
                take = min(each, room[i] - shares[i], left)
                shares[i] += take
                left -= take
                if left <= 0:
                    break
        return shares, retry_in

    async def _secrets(
        self, conn: psycopg.AsyncConnection[Any], ids: list[int]
    ) -> dict[int, tuple[str, ...]]:
        if not ids:
            return {}
        found: dict[int, list[str]] = {}
        for endpoint_id, secret in await (
            await conn.execute(sql.SECRETS, {"endpoints": ids})
        ).fetchall():
            found.setdefault(int(endpoint_id), []).append(str(secret))
        return {k: tuple(v) for k, v in found.items()}

    # -- attempting and recording ---------------------------------------------------------

    async def _attempt(self, claimed: Claimed) -> None:
        task = asyncio.current_task()
        try:
            if not claimed.secrets:
                log.error(
                    "endpoint %d has no active signing secret",
                    claimed.endpoint_id,
                    extra={"delivery_id": claimed.delivery_id},
                )
            result = await perform(self.transport, claimed, self.hooks, self.rng)
            self.results.append(result)
        finally:
            if task is not None:
                self.sending.pop(task, None)
            self.collector.in_flight = len(self.sending)

    async def _record_loop(self) -> None:
        while True:
            await asyncio.sleep(self.hooks.flush_interval_seconds)
            if self.results:
                await self._record_some()

    async def _record_some(self) -> bool:
        batch = self.results[:RECORD_BATCH]
        try:
            async with self.ops.connection(timeout=10) as conn:
                recorded = await record(conn, self.name, batch, self.hooks)
            self._ok("record")
        except (psycopg.Error, TimeoutError) as exc:
            self._failed("record", exc)
            await asyncio.sleep(RECORD_RETRY_SECONDS)
            return False
        del self.results[: len(batch)]
        self.recorded.set()
        self.wake_outbound.set()
        for endpoint_id, reason in recorded.disable:
            await self._disable(endpoint_id, reason)
        return True

    async def _disable(self, endpoint_id: int, reason: str) -> None:
        try:
            async with self.ops.connection(timeout=10) as conn:
                parked = await endpoints.disable(
                    conn, endpoint_id, reason, actor=f"opsdeck-worker:{self.name}", incident=True
                )
        except (psycopg.Error, TimeoutError) as exc:
            log.error("could not disable endpoint %d (%s): %s", endpoint_id, reason, exc)
            return
        if parked is not None:
            log.error("endpoint %d disabled: %s; %d deliveries parked", endpoint_id, reason, parked)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.hooks.heartbeat_seconds)
            outbound = [c.delivery_id for c in self.sending.values()]
            outbound += [r.claimed.delivery_id for r in self.results]
            inbound = sorted(self.inbound.in_flight)
            lease = self.hooks.lease_seconds
            try:
                async with self.ops.connection(timeout=5) as conn:
                    if outbound:
                        params = {"ids": outbound, "worker": self.name, "lease": lease}
                        await conn.execute(sql.HEARTBEAT, params)
                    if inbound:
                        params = {"ids": inbound, "worker": self.name, "lease": lease}
                        await conn.execute(inbound_sql.HEARTBEAT, params)
                self._ok("heartbeat")
            except (psycopg.Error, TimeoutError) as exc:
                self._failed("heartbeat", exc)

    # -- inbound and wake-ups -------------------------------------------------------------

    async def _inbound_loop(self, stop: asyncio.Event) -> None:
        backoff = _backoff()
        while not stop.is_set():
            try:
                held = await self.inbound.run_once()
                self._ok("inbound", backoff)
            except (psycopg.Error, TimeoutError) as exc:
                self._failed("inbound", exc)
                await asyncio.sleep(backoff.next())
                continue
            if not held:
                await self._wait(stop, self.wake_inbound, self.hooks.poll_interval_seconds)

    async def _listen(self) -> None:
        """LISTEN for the outbox's NOTIFY; reconnects for as long as it takes."""
        backoff = _backoff()
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    libpq_url(self.ops_url), autocommit=True, application_name=APPLICATION
                )
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._ok("listen", backoff)
                    # Whatever was notified while we were not listening is due now.
                    self.wake_outbound.set()
                    self.wake_inbound.set()
                    async for notify in conn.notifies():
                        (
                            self.wake_inbound if notify.payload == "inbound" else self.wake_outbound
                        ).set()
            except psycopg.Error as exc:
                self._failed("listen", exc)
                await asyncio.sleep(backoff.next())

    # -- failure reporting ----------------------------------------------------------------

    def _reporter(self, what: str) -> FailureReporter:
        if what not in self.failures:
            self.failures[what] = FailureReporter(what, log)
        return self.failures[what]

    def _ok(self, what: str, backoff: Backoff | None = None) -> None:
        self._reporter(what).recovered()
        if backoff is not None:
            backoff.reset()

    def _failed(self, what: str, exc: BaseException) -> None:
        self._reporter(what).failed(exc)
