"""How many live streams a person may hold open, counted in Redis for every API process.

A stream takes a slot of its person (``live.streams_per_user``: a user's sessions and API
keys count together) and one of all (``live.streams_total``), with the export slots'
script (:data:`api.drilldowns.export_limits.ACQUIRE`). A slot is a sorted-set member that
expires :data:`LEASE_SECONDS` after its last renewal; the stream renews it at every session
recheck, so a process that dies gives its slots back on its own.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis

from api.auth.principal import Principal
from api.drilldowns.export_limits import ACQUIRE
from api.problems import Problem
from core.settings import LiveSettings

LEASE_SECONDS = 60.0
TOTAL_KEY = "opsdeck:live:all"


def person_of(principal: Principal) -> str:
    """Whose streams these are: the user, whatever the credential."""
    person = principal.person
    return f"user:{person}" if person is not None else f"name:{principal.name}"


@dataclass
class Slot:
    redis: Redis
    keys: tuple[str, str]
    member: str

    async def renew(self) -> None:
        expires = time.time() + LEASE_SECONDS
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in self.keys:
                pipe.zadd(key, {self.member: expires}, xx=True)
                pipe.expire(key, int(LEASE_SECONDS) + 1)
            await pipe.execute()

    async def release(self) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in self.keys:
                pipe.zrem(key, self.member)
            await pipe.execute()


async def acquire(redis: Redis, settings: LiveSettings, principal: Principal) -> Slot:
    """A slot for one more stream of the principal's person, or a 429 naming the cap."""
    now = time.time()
    keys = (f"opsdeck:live:{person_of(principal)}", TOTAL_KEY)
    member = uuid.uuid4().hex
    args = (now, now + LEASE_SECONDS, member, settings.streams_per_user, settings.streams_total)
    verdict = int(await redis.eval(ACQUIRE, 2, *keys, *args))
    if verdict == 1:
        detail = (
            f"at most {settings.streams_per_user} live streams per user "
            "(live.streams_per_user); close one first"
        )
        raise Problem(429, detail, headers={"Retry-After": "10"})
    if verdict == 2:
        detail = f"{settings.streams_total} live streams are open (live.streams_total)"
        raise Problem(429, detail + "; retry shortly", headers={"Retry-After": "10"})
    return Slot(redis, keys, member)
