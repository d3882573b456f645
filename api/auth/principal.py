"""Who is asking: an API key (``Authorization: Bearer``), the trusted auth proxy, or a session
cookie, in that order. A bad credential is an error, never a fall-back to another one."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from psycopg.rows import dict_row
from starlette.requests import Request

from api.auth import api_keys
from api.auth.sessions import COOKIE, Session
from api.middleware.client_address import peer_host
from api.problems import Problem
from api.queries import access as sql
from api.rbac import Role, permissions_of
from api.runtime import Runtime

log = logging.getLogger(__name__)
KEY_TOUCH_SECONDS = 60


@dataclass(frozen=True)
class Principal:
    name: str  # the username, or "<username> (api-key:<prefix>)"
    role: Role
    permissions: frozenset[str]
    via: Literal["session", "api_key", "proxy"]
    session: Session | None = None
    user_id: int | None = None  # the person: a key's owner, the proxied user
    key_id: int | None = None  # the API key asking, if one is
    rate_limit: int | None = None  # requests a minute, when the key has its own limit

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def person(self) -> int | None:
        """The id of the user who acts, whatever the credential: what two-person rules
        compare."""
        if self.user_id is None and self.session is not None:
            return self.session.user_id
        return self.user_id


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="opsdeck"'})


async def _from_api_key(runtime: Runtime, header: str) -> Principal:
    scheme, _, token = header.partition(" ")
    prefix = api_keys.prefix_of(token.strip()) if scheme.lower() == "bearer" else None
    if prefix is None:
        raise _unauthorized("the Authorization header does not carry an opsdeck API key")
    async with runtime.ops.connection() as conn:
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(sql.API_KEY_BY_PREFIX, {"prefix": prefix})
        key: dict[str, Any] | None = await cursor.fetchone()
        if key is None or key["revoked_at"] is not None:
            raise _unauthorized("unknown or revoked API key")
        if not api_keys.matches(token.strip(), key["secret_hash"]):
            raise _unauthorized("unknown or revoked API key")
        if key["disabled_at"] is not None:
            raise _unauthorized("the API key's user is disabled")
        if key["expired"]:
            raise _unauthorized(f"the API key expired at {key['expires_at'].isoformat()}")
        role = Role(key["role"])
        # Scopes outside the key's role or its user's present role (after a change of the
        # table, or a demotion) are dropped, never granted.
        scopes = api_keys.effective_scopes(key["scopes"], role, Role(key["user_role"]))
        if await runtime.redis.set(
            f"opsdeck:key-touch:{key['id']}", "1", nx=True, ex=KEY_TOUCH_SECONDS
        ):
            await conn.execute(sql.TOUCH_API_KEY, {"id": key["id"]})
    name = api_keys.principal_name(key["username"], prefix)
    return Principal(
        name,
        role,
        scopes,
        "api_key",
        user_id=key["user_id"],
        key_id=key["id"],
        rate_limit=key["rate_limit_per_minute"],
    )


async def _user(runtime: Runtime, username: str) -> dict[str, Any] | None:
    async with runtime.ops.connection() as conn:
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(sql.USER_BY_NAME, {"username": username})
        user: dict[str, Any] | None = await cursor.fetchone()
    if user is None or user["disabled_at"] is not None:
        return None
    return user


async def _from_proxy(runtime: Runtime, username: str) -> Principal:
    user = await _user(runtime, username)
    if user is None:
        raise Problem(403, f"the auth proxy named {username!r}, who has no opsdeck account")
    role = Role(user["role"])
    return Principal(user["username"], role, permissions_of(role), "proxy", user_id=user["id"])


async def authenticate(runtime: Runtime, request: Request) -> Principal | None:
    header = request.headers.get("authorization")
    if header is not None:
        return await _from_api_key(runtime, header)
    # The auth proxy is known by the connection itself, never by a forwarded address.
    proxied = runtime.proxy.identity(peer_host(request.scope), request.headers)
    if proxied is not None:
        return await _from_proxy(runtime, proxied)
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    return await _from_session(runtime, cookie)


async def _from_session(runtime: Runtime, cookie: str) -> Principal | None:
    """The session's user as the database has them now; a session its user no longer
    backs (disabled, demoted, signed out everywhere) ends here."""
    session = await runtime.sessions.load(cookie)
    if session is None:
        return None
    user = await runtime.session_users.check(session)
    if user is None:
        await runtime.sessions.revoke(session)
        return None
    return Principal(user.username, user.role, permissions_of(user.role), "session", session)
