"""Browser sessions: a random id in Redis (expiring, revocable), sent as a signed cookie.

The cookie is HttpOnly, SameSite=Strict and expires with the session. It signs the session
id together with the user's id and the user's session version (``ops.users``), and Redis
holds exactly the same two numbers under the id: nothing about the person (name, role) is
read from Redis, and a value written into Redis by anyone without the API's secret key
cannot move a cookie to another user or another version. Whether that user may still act,
and as what, is the database's answer (:mod:`api.auth.session_users`).

Revoking deletes the Redis key, so a stolen cookie dies with it; each user's sessions are
indexed so that the CLI can delete them all. Ending a user's sessions does not depend on
that: the CLI adds one to the user's session version, which no existing session carries.
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
_SEPARATOR = "."  # token_urlsafe ids and decimal numbers never contain it


def session_key(session_id: str) -> str:
    return f"opsdeck:session:{session_id}"


def user_sessions_key(user_id: int) -> str:
    return f"opsdeck:user-sessions:{user_id}"


@dataclass(frozen=True)
class Session:
    """A session as the signed cookie and Redis agree on it; not yet checked against the
    user's row."""

    id: str
    user_id: int
    version: int


def _parse(payload: str) -> Session | None:
    session_id, user_id, version = ([*payload.split(_SEPARATOR), "", ""])[:3]
    if not session_id or not user_id.isdecimal() or not version.isdecimal():
        return None
    return Session(session_id, int(user_id), int(version))


def _stored(raw: str | bytes | None) -> tuple[int, int] | None:
    """(user id, version) of a Redis value, or None when it is not one this API wrote."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return int(data["user_id"]), int(data["version"])
    except (ValueError, TypeError, KeyError):
        return None


class SessionStore:
    def __init__(self, redis_client: Redis, signer: TimestampSigner, ttl_seconds: float) -> None:
        self._redis = redis_client
        self._signer = signer
        self.ttl = int(ttl_seconds)

    async def create(self, user_id: int, version: int) -> tuple[Session, str]:
        """A new session of ``user_id`` at session ``version``, and the cookie naming it."""
        session = Session(secrets.token_urlsafe(32), user_id, version)
        data = {"user_id": user_id, "version": version, "at": time.time()}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(session_key(session.id), json.dumps(data), ex=self.ttl)
            pipe.sadd(user_sessions_key(user_id), session.id)
            pipe.expire(user_sessions_key(user_id), self.ttl)
            await pipe.execute()
        payload = _SEPARATOR.join((session.id, str(user_id), str(version)))
        return session, self._signer.sign(payload).decode()

    async def load(self, cookie: str) -> Session | None:
        """The session a cookie names, if Redis still holds it unchanged."""
        try:
            session = _parse(self._signer.unsign(cookie, max_age=self.ttl).decode())
        except BadSignature:
            return None
        if session is None:
            return None
        stored = _stored(await self._redis.get(session_key(session.id)))
        if stored != (session.user_id, session.version):
            return None
        return session

    async def revoke(self, session: Session) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(session_key(session.id))
            pipe.srem(user_sessions_key(session.user_id), session.id)
            await pipe.execute()

    async def revoke_user(self, user_id: int) -> int:
        """Delete every session of a user (whose session version went up already);
        returns how many there were."""
        members = await self._redis.smembers(user_sessions_key(user_id))
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in members]
        async with self._redis.pipeline(transaction=True) as pipe:
            for session_id in ids:
                pipe.delete(session_key(session_id))
            pipe.delete(user_sessions_key(user_id))
            results = await pipe.execute()
        return sum(int(r) for r in results[: len(ids)])


def revoke_user_sessions(client: redis.Redis, user_id: int) -> int:
    """Delete every session of a user from Redis (from the CLI); returns how many there were."""
    members: Iterable[Any] = client.smembers(user_sessions_key(user_id))
    ids = [i.decode() if isinstance(i, bytes) else str(i) for i in members]
    pipe = client.pipeline(transaction=True)
    for session_id in ids:
        pipe.delete(session_key(session_id))
    pipe.delete(user_sessions_key(user_id))
    results = pipe.execute()
    return sum(int(r) for r in results[: len(ids)])
