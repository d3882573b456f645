"""How many exports may run, and for how long.

An export streams for as long as its client reads, holding a connection and a transaction
of the export pool (:class:`api.runtime.ExportPools`) all the while. So:

- **Slots.** Each export takes a slot of its principal (``api.exports_per_principal``) and
  one of all (``api.exports_total``), counted in Redis for every API process; past either,
  429 before anything is read. A slot is a sorted-set member that expires a little after
  the deadline, so a process that dies mid-export gives its slots back on its own.
- **Deadline.** The whole response, however slowly the client reads, ends at
  ``api.export_deadline_seconds``: the stream is cut (the client sees a truncated body and
  the connection closes), the rows being read are closed and the database connection goes
  back to its pool. The export pool's ``idle_in_transaction_session_timeout`` is the same
  deadline, should anything in this process stop tending the stream.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio
from redis.asyncio import Redis
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api.problems import Problem
from core.settings import ApiSettings

log = logging.getLogger(__name__)
SLOT_GRACE_SECONDS = 60.0

# KEYS: the principal's slots, every slot. ARGV: now, expiry, slot id, per principal, total.
# Expired slots are dropped first; 0 = taken, 1 = principal full, 2 = all full.
ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 1 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 2 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
local ttl = math.ceil(tonumber(ARGV[2]) - tonumber(ARGV[1]))
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return 0
"""
TOTAL_KEY = "opsdeck:exports:all"
REFUSALS = {
    1: "this principal already runs {per} exports; wait for one to finish",
    2: "{total} exports are running; retry shortly",
}


class ExportSlots:
    def __init__(self, redis: Redis, settings: ApiSettings) -> None:
        self._redis = redis
        self._settings = settings

    @staticmethod
    def _key(principal: str) -> str:
        return f"opsdeck:exports:principal:{principal}"

    async def acquire(self, principal: str) -> Callable[[], Awaitable[None]]:
        """Take a slot (or raise a 429 problem); returns what gives it back."""
        s = self._settings
        now = time.time()
        slot = uuid.uuid4().hex
        expires = now + s.export_deadline_seconds + SLOT_GRACE_SECONDS
        keys = (self._key(principal), TOTAL_KEY)
        args = (now, expires, slot, s.exports_per_principal, s.exports_total)
        verdict = int(await self._redis.eval(ACQUIRE, 2, *keys, *args))
        if verdict:
            detail = REFUSALS[verdict].format(per=s.exports_per_principal, total=s.exports_total)
            raise Problem(429, detail, headers={"Retry-After": "10"})

        async def release() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                for key in keys:
                    pipe.zrem(key, slot)
                await pipe.execute()

        return release


class DeadlineStreamingResponse(StreamingResponse):
    """A streamed export that ends at ``deadline_seconds`` whatever the client does, then
    closes ``content`` and the generators it reads (``resources``, whose ``finally`` gives
    the database connection back) and its slot (``release``), on every way out.

    Each step of ``content`` runs shielded from the deadline, so the cut always lands
    between two chunks (in the ``send`` a stalled client blocks), never inside a fetch that
    would then be left half done; one step is bounded by the statement timeout."""

    def __init__(
        self,
        content: AsyncGenerator[Any, None],
        *,
        resources: Sequence[AsyncGenerator[Any, None]],
        deadline_seconds: float,
        release: Callable[[], Awaitable[None]],
        media_type: str,
        headers: Mapping[str, str],
    ) -> None:
        super().__init__(_shielded(content), media_type=media_type, headers=headers)
        self._generators = (content, *resources)
        self._deadline = deadline_seconds
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            with anyio.move_on_after(self._deadline) as cut:
                await super().__call__(scope, receive, send)
            if cut.cancelled_caught:
                log.warning("export cut at its deadline of %g s", self._deadline)
        finally:
            with anyio.CancelScope(shield=True):
                for generator in self._generators:
                    await generator.aclose()
                await self._release()


async def _shielded(content: AsyncGenerator[Any, None]) -> AsyncIterator[Any]:
    while True:
        with anyio.CancelScope(shield=True):
            try:
                chunk = await anext(content)
            except StopAsyncIteration:
                return
        yield chunk
