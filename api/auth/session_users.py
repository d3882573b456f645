"""Who a session's user is now: name, role, disabled state and session version, read from
``ops.users`` and kept in this process for ``api.session_recheck_seconds`` at most.

A session is good only while its user exists, is not disabled and still has the session
version the session was made at; the role is always the row's, never the session's. A
version newer than the cached one (a sign-in just after a revocation) is read afresh
rather than refused, since versions only grow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from api.auth.sessions import Session
from api.queries import access as sql
from api.rbac import Role

# Past this many cached users, entries older than the recheck time are dropped first.
CACHE_LIMIT = 4096


@dataclass(frozen=True)
class SessionUser:
    username: str
    role: Role
    disabled: bool
    version: int


class SessionUsers:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        recheck_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._recheck = recheck_seconds
        self._clock = clock
        self._cache: dict[int, tuple[float, SessionUser | None]] = {}

    async def _read(self, user_id: int) -> SessionUser | None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(sql.SESSION_USER, {"id": user_id})
            row = await cursor.fetchone()
        if row is None:
            return None
        username, role, disabled, version = row
        return SessionUser(str(username), Role(role), bool(disabled), int(version))

    def _remember(self, user_id: int, now: float, user: SessionUser | None) -> None:
        if len(self._cache) >= CACHE_LIMIT:
            fresh = now - self._recheck
            self._cache = {k: v for k, v in self._cache.items() if v[0] > fresh}
        if len(self._cache) < CACHE_LIMIT:
            self._cache[user_id] = (now, user)

    async def _current(self, session: Session) -> SessionUser | None:
        now = self._clock()
        cached = self._cache.get(session.user_id)
        if cached is not None and now - cached[0] < self._recheck:
            user = cached[1]
            if user is None or user.version >= session.version:
                return user
        user = await self._read(session.user_id)
        self._remember(session.user_id, now, user)
        return user

    async def check(self, session: Session) -> SessionUser | None:
        """The session's user, or None when the session no longer holds: the user is gone
        or disabled, or their sessions were ended after this one was made."""
        user = await self._current(session)
        if user is None or user.disabled or user.version != session.version:
            return None
        return user
