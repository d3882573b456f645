"""``opsdeck worker``: delivers outbound webhooks, processes inbound PSP events, tails
platform events into messages, and serves the gateway's metrics.

:class:`Worker` composes the steps, each a part with its own contract:

- **claim** (:mod:`gateway.claims`): due deliveries ``FOR UPDATE SKIP LOCKED``, within
  each endpoint's rate limit and concurrency cap, under a lease; inbound events are
  claimed the same way by :mod:`gateway.inbound_processing`;
- **attempt** (:mod:`gateway.attempts`): sign and send, at most ``concurrency`` at a
  time per process (attempts in flight plus results not yet recorded);
- **record** (:mod:`gateway.outcomes`, :mod:`gateway.recorder`): results in batches, one
  transaction each;
- **heartbeat** (:mod:`gateway.heartbeat`): leases of everything still in hand are
  extended every ``heartbeat_seconds``; a worker that dies stops extending them, and once
  they expire another worker takes the deliveries over (at least once: the ``webhook-id``
  is the same);
- **wake-up** (:mod:`gateway.wakeup`): LISTEN/NOTIFY on ``opsdeck_webhooks`` (sent by the
  outbox at commit), with polling every ``poll_interval_seconds`` as the backup;
- **SIGTERM** (``stop``): stop claiming, let the attempts in flight finish (up to
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

import psycopg

from core.application_names import GATEWAY, WORKER
from core.background import cancelled_on_exit
from core.database import async_pool
from core.failures import FailureReporter
from core.sealed_secrets import SecretBox
from core.settings import Settings
from gateway.attempts import Claimed, perform
from gateway.claims import Claims
from gateway.heartbeat import Heartbeat, Held
from gateway.inbound_processing import InboundProcessor
from gateway.metrics import GatewayCollector
from gateway.outcomes import Outcomes
from gateway.tail import PlatformTail
from gateway.telemetry import Telemetry
from gateway.transport import WebhookTransport
from gateway.wakeup import WakeUp, retry_backoff

log = logging.getLogger(__name__)
OPS_POOL_SIZE = 6
PLATFORM_POOL_SIZE = 2


class Worker:
    """One process's gateway worker: the parts above, its pools, and the attempts in flight."""

    def __init__(self, settings: Settings, concurrency: int | None = None) -> None:
        self.settings = settings
        self.hooks = settings.webhooks
        self.concurrency = concurrency or self.hooks.concurrency
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.ops_url = settings.require("database_url", "opsdeck worker")
        self.platform_url = settings.platform_url or self.ops_url
        self.ops = async_pool(self.ops_url, WORKER, OPS_POOL_SIZE)
        # Inbound processing writes the platform under the name the commit horizon waits for.
        self.gateway = async_pool(self.platform_url, GATEWAY, PLATFORM_POOL_SIZE)
        self.transport = WebhookTransport(self.hooks, self.concurrency)
        self.collector = GatewayCollector(self.hooks.latency_buckets_seconds)
        self.telemetry = Telemetry(self.ops_url, self.hooks, self.collector)
        self.inbound = InboundProcessor(self.hooks, self.ops, self.gateway, self.name)
        self.wakeup = WakeUp(self.ops_url)
        box = SecretBox.required(settings, "opsdeck worker")
        self.claims = Claims(self.ops, self.hooks, self.name, box)
        self.outcomes = Outcomes(self.ops, self.hooks, self.name, self.wakeup)
        self.heartbeat = Heartbeat(self.ops, self.hooks, self.name, self.held)
        self.rng = random.Random()
        self.sending: dict[asyncio.Task[None], Claimed] = {}
        self.claim_failures = FailureReporter("claim", log)
        self.inbound_failures = FailureReporter("inbound", log)

    def held(self) -> Held:
        """What this worker holds: deliveries in flight or unrecorded, inbound events."""
        outbound = [c.delivery_id for c in self.sending.values()]
        return Held(outbound + self.outcomes.delivery_ids(), sorted(self.inbound.in_flight))

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        await self.ops.open(wait=False)
        await self.gateway.open(wait=False)
        tail_stop = threading.Event()
        background = [
            asyncio.create_task(self.wakeup.listen(), name="listen"),
            asyncio.create_task(self.outcomes.run(), name="record"),
            asyncio.create_task(self.heartbeat.run(), name="heartbeat"),
            asyncio.create_task(self._inbound_loop(stop), name="inbound"),
            asyncio.create_task(self.telemetry.run(), name="telemetry"),
        ]
        if self.hooks.tail_enabled:
            tail = PlatformTail(self.settings, self.ops_url, self.platform_url)
            background.append(asyncio.create_task(asyncio.to_thread(tail.run, tail_stop)))
        log.info("worker %s: delivering with concurrency %d", self.name, self.concurrency)
        try:
            async with cancelled_on_exit(background):
                await self._claim_loop(stop)
                await self._drain()
        finally:
            tail_stop.set()  # the tail's thread outlives its cancelled task until told
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
            await self.claims.release([c.delivery_id for c in unfinished])
        await self.outcomes.drain()

    # -- outbound: claim, attempt ---------------------------------------------------------

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        backoff = retry_backoff()
        wake = self.wakeup
        while not stop.is_set():
            room = self.concurrency - len(self.sending) - len(self.outcomes)
            if room <= 0:
                await wake.wait(stop, wake.recorded, self.hooks.poll_interval_seconds)
                continue
            wanted = min(room, self.hooks.claim_batch)
            try:
                claimed, retry_in = await self.claims.claim(wanted)
                self.claim_failures.recovered()
                backoff.reset()
            except (psycopg.Error, TimeoutError) as exc:
                self.claim_failures.failed(exc)
                await wake.wait(stop, None, backoff.next())
                continue
            for item in claimed:
                self.sending[asyncio.create_task(self._attempt(item))] = item
            self.collector.in_flight = len(self.sending)
            if claimed and len(claimed) >= wanted:
                continue
            await wake.wait(stop, wake.outbound, retry_in or self.hooks.poll_interval_seconds)

    async def _attempt(self, claimed: Claimed) -> None:
        task = asyncio.current_task()
        try:
            if not claimed.secrets:
                log.error(
                    "endpoint %d has no active signing secret",
                    claimed.endpoint_id,
                    extra={"delivery_id": claimed.delivery_id},
                )
            self.outcomes.add(await perform(self.transport, claimed, self.hooks, self.rng))
        finally:
            if task is not None:
                self.sending.pop(task, None)
            self.collector.in_flight = len(self.sending)

    # -- inbound --------------------------------------------------------------------------

    async def _inbound_loop(self, stop: asyncio.Event) -> None:
        backoff = retry_backoff()
        while not stop.is_set():
            try:
                held = await self.inbound.run_once()
                self.inbound_failures.recovered()
                backoff.reset()
            except (psycopg.Error, TimeoutError) as exc:
                self.inbound_failures.failed(exc)
                await asyncio.sleep(backoff.next())
                continue
            if not held:
                await self.wakeup.wait(stop, self.wakeup.inbound, self.hooks.poll_interval_seconds)
