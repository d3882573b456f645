"""When the worker's loops wake up: the worker's **wake-up** step.

Contract: the outbox sends ``NOTIFY opsdeck_webhooks`` when it commits (payload
``inbound`` for an inbound event, anything else for outbound deliveries), and
:meth:`WakeUp.listen` turns each into :attr:`WakeUp.inbound` or :attr:`WakeUp.outbound`.
The LISTEN connection reconnects for as long as it takes (waits from
:func:`retry_backoff`); each time it is (re)connected both events are set, because what
was notified while nobody listened is due now. Notifications are only a shortcut:
:meth:`WakeUp.wait` always returns after its timeout (``poll_interval_seconds`` for the
loops), so deliveries go out when notifications are lost, only later.
:attr:`WakeUp.recorded` wakes a claim loop that waits for room after results were recorded.
Nothing is read from a notification but which queue it names.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg

from core.application_names import WORKER
from core.database import async_connect
from core.failures import Backoff, FailureReporter
from gateway.queries.outbox import CHANNEL

log = logging.getLogger(__name__)
# A loop that keeps failing waits 0.2 s, then twice as long each time, up to 5 s.
RETRY_INITIAL_SECONDS = 0.2
RETRY_MAX_SECONDS = 5.0


def retry_backoff() -> Backoff:
    """The waits of a worker loop that keeps failing."""
    return Backoff(RETRY_INITIAL_SECONDS, RETRY_MAX_SECONDS)


class WakeUp:
    """The worker's wake-up events and the LISTEN connection that sets them."""

    def __init__(self, ops_url: str) -> None:
        self.ops_url = ops_url
        self.outbound = asyncio.Event()
        self.inbound = asyncio.Event()
        self.recorded = asyncio.Event()
        self.failures = FailureReporter("listen", log)

    def recorded_some(self) -> None:
        """Results were recorded: room for more claims, and retries may be due."""
        self.recorded.set()
        self.outbound.set()

    async def wait(self, stop: asyncio.Event, event: asyncio.Event | None, timeout: float) -> None:
        """Until ``stop`` or ``event`` is set, or ``timeout`` passed; ``event`` is cleared."""
        waiters = [asyncio.create_task(stop.wait())]
        if event is not None:
            waiters.append(asyncio.create_task(event.wait()))
        _, pending = await asyncio.wait(waiters, timeout=timeout, return_when="FIRST_COMPLETED")
        for waiter in pending:
            waiter.cancel()
        if event is not None:
            event.clear()

    async def listen(self) -> None:
        """LISTEN for the outbox's NOTIFY until cancelled; reconnects for as long as it takes."""
        backoff = retry_backoff()
        while True:
            try:
                conn = await async_connect(self.ops_url, application_name=WORKER, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.failures.recovered()
                    backoff.reset()
                    # Whatever was notified while we were not listening is due now.
                    self.outbound.set()
                    self.inbound.set()
                    async for notify in conn.notifies():
                        (self.inbound if notify.payload == "inbound" else self.outbound).set()
            except psycopg.Error as exc:
                self.failures.failed(exc)
                await asyncio.sleep(backoff.next())
