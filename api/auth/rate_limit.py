"""Fixed-window rate limits in Redis, shared by every API process."""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int


class RateLimiter:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def hit(self, name: str, limit: int, window_seconds: int) -> Verdict:
        """Count one event against ``name``; refused once ``limit`` is passed in the window."""
        now = int(time.time())
        window = now // window_seconds
        key = f"opsdeck:rate:{name}:{window}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_seconds + 1)
            count, _ = await pipe.execute()
        retry_after = (window + 1) * window_seconds - now
        return Verdict(int(count) <= limit, max(1, retry_after))

    async def clear(self, name: str, window_seconds: int) -> None:
        await self._redis.delete(f"opsdeck:rate:{name}:{int(time.time()) // window_seconds}")
