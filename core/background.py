"""Background tasks that live exactly as long as the block they serve.

The API's loops (the usage roll-up, audit retention, the escalation engine and its leader
lock) and the gateway worker's (listen, record, heartbeat, inbound, telemetry, the platform
tail) run beside the work they serve and never end on their own. :func:`cancelled_on_exit`
is how each of them ends: when the block exits, normally or by an exception, every task is
cancelled first and then awaited, so none outlives the block and each task's own clean-up
(a connection closed, a lock released) has run before the caller goes on. A task that
fails with anything other than its cancellation raises that error here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any


@asynccontextmanager
async def cancelled_on_exit(tasks: Sequence[asyncio.Task[Any]]) -> AsyncIterator[None]:
    """Runs the block beside ``tasks``, then cancels and awaits every one of them."""
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
