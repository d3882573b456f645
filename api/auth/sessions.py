"""Browser sessions: a random id in Redis (expiring, revocable), sent as a signed cookie.

The cookie is HttpOnly, SameSite=Strict and expires with the session; revoking deletes the
Redis key, so a stolen cookie dies with it. Each user's sessions are indexed so that a role
change, a disabled account or ``opsdeck users revoke-sessions`` ends all of them.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from itsdangerous import BadSignature, TimestampSigner
from redis.asyncio import Redis

COOKIE = "opsdeck_session"


def session_key(session_id: str) -> str:
    return f"opsdeck:session:{session_id}"


def user_sessions_key(user_id: int) -> str:
    return f"opsdeck:user-sessions:{user_id}"


@dataclass(frozen=True)
class Session:
    id: str
    user_id: int
    username: str
    role: str


class SessionStore:
    def __init__(self, redis_client: Redis, signer: TimestampSigner, ttl_seconds: float) -> None:
        self._redis = redis_client
        self._signer = signer
        self.ttl = int(ttl_seconds)

    async def create(self, user_id: int, username: str, role: str) -> tuple[Session, str]:
        """A new session and the cookie value that names it."""
        session = Session(secrets.token_urlsafe(32), user_id, username, role)
        data = {"user_id": user_id, "username": username, "role": role, "at": time.time()}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(session_key(session.id), json.dumps(data), ex=self.ttl)
            pipe.sadd(user_sessions_key(user_id), session.id)
            pipe.expire(user_sessions_key(user_id), self.ttl)
            await pipe.execute()
        return session, self._signer.sign(session.id).decode()

    async def load(self, cookie: str) -> Session | None:
        try:
            session_id = self._signer.unsign(cookie, max_age=self.ttl).decode()
        except BadSignature:
            return None
        raw = await self._redis.get(session_key(session_id))
        if raw is None:
            return None
        data = json.loads(raw)
        return Session(session_id, int(data["user_id"]), str(data["username"]), str(data["role"]))

    async def revoke(self, session: Session) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(session_key(session.id))
            pipe.srem(user_sessions_key(session.user_id), session.id)
            await pipe.execute()


def revoke_user_sessions(client: redis.Redis, user_id: int) -> int:
    """End every session of a user (from the CLI); returns how many there were."""
    members: Iterable[Any] = client.smembers(user_sessions_key(user_id))
    ids = [i.decode() if isinstance(i, bytes) else str(i) for i in members]
    pipe = client.pipeline(transaction=True)
    for session_id in ids:
        pipe.delete(session_key(session_id))
    pipe.delete(user_sessions_key(user_id))
    results = pipe.execute()
    return sum(int(r) for r in results[: len(ids)])
