"""Limits kept in Redis, shared by every API process: fixed-window rate limits, and a
backoff that grows with repeated failures.

Both are checked before any database work, so a client over its limit costs one Redis
round trip and nothing else. A rate limit outlives a Redis outage: until Redis answers
again each process counts its own windows (the limit then holds per process), and the
outage and the recovery are logged once each.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


# Windows a process keeps counting on its own during a Redis outage, at most.
LOCAL_WINDOWS = 100_000


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int


class RateLimiter:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._local: dict[str, int] = {}  # window key → count, while Redis is away
        self._outage = False

    @staticmethod
    def _window(name: str, window_seconds: int) -> tuple[str, int]:
        now = int(time.time())
        window = now // window_seconds
        return f"opsdeck:rate:{name}:{window}", max(1, (window + 1) * window_seconds - now)

    async def hit(self, name: str, limit: int, window_seconds: int) -> Verdict:
        """Count one event against ``name``; refused once ``limit`` is passed in the window."""
        key, retry_after = self._window(name, window_seconds)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, window_seconds + 1)
                count, _ = await pipe.execute()
        except RedisError as exc:
            count = self._count_here(key, exc)
        else:
            self._back()
        return Verdict(int(count) <= limit, retry_after)

    def _count_here(self, key: str, exc: RedisError) -> int:
        if not self._outage:
            self._outage = True
            log.warning("rate limits counted per process: Redis is unreachable (%s)", exc)
        if key not in self._local and len(self._local) >= LOCAL_WINDOWS:
            self._local.clear()  # a flood of addresses: forget, rather than grow
        self._local[key] = self._local.get(key, 0) + 1
        return self._local[key]

    def _back(self) -> None:
        if self._outage:
            self._outage = False
            self._local.clear()
            log.warning("rate limits shared through Redis again")

    async def clear(self, name: str, window_seconds: int) -> None:
        key, _ = self._window(name, window_seconds)
        await self._redis.delete(key)


@dataclass(frozen=True)
class BackoffPolicy:
    """After ``free_failures`` failures the next try waits ``base_seconds``, and each further
    failure doubles the wait up to ``max_seconds``. Failures are forgotten ``window_seconds``
    after the last one."""

    free_failures: int
    base_seconds: float
    max_seconds: float
    window_seconds: int

    def delay(self, failures: int) -> float:
        if failures < self.free_failures:
            return 0.0
        exponent = min(failures - self.free_failures, 62)
        return min(self.max_seconds, self.base_seconds * 2.0**exponent)


class Backoff:
    """Exponential backoff per name (a user at an address, an address): a wait, never a
    lock that outlasts ``max_seconds``."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    @staticmethod
    def _keys(name: str) -> tuple[str, str]:
        return f"opsdeck:backoff:{name}:failures", f"opsdeck:backoff:{name}:until"

    async def wait(self, names: Sequence[str]) -> int | None:
        """Whole seconds until every one of ``names`` may try again, or None when all may."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.pttl(self._keys(name)[1])
            remaining = [int(ms) for ms in await pipe.execute()]
        longest = max((ms for ms in remaining if ms > 0), default=0)
        return math.ceil(longest / 1000) if longest else None

    async def failed(self, name: str, policy: BackoffPolicy) -> None:
        failures_key, until_key = self._keys(name)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(failures_key)
            pipe.expire(failures_key, policy.window_seconds)
            failures, _ = await pipe.execute()
        delay = policy.delay(int(failures))
        if delay > 0:
            await self._redis.set(until_key, "1", px=max(1, int(delay * 1000)))

    async def succeeded(self, name: str) -> None:
        await self._redis.delete(*self._keys(name))
