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
from api.problems import Problem
from api.queries import access as sql
from api.rbac import Role, permissions_of
from api.runtime import Runtime

log = logging.getLogger(__name__)
KEY_TOUCH_SECONDS = 60


@dataclass(frozen=True)
class Principal:
    name: str  # the username, or "api-key:<prefix>"
    role: Role
    permissions: frozenset[str]
    via: Literal["session", "api_key", "proxy"]
    session: Session | None = None

    def can(self, permission: str) -> bool:
        return permission in self.permissions


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
        role = Role(key["role"])
        # Scopes outside the role (after a change of the table) are dropped, never granted.
        scopes = frozenset(key["scopes"]) & permissions_of(role)
        if await runtime.redis.set(
            f"opsdeck:key-touch:{key['id']}", "1", nx=True, ex=KEY_TOUCH_SECONDS
        ):
            await conn.execute(sql.TOUCH_API_KEY, {"id": key["id"]})
    return Principal(f"api-key:{prefix}", role, scopes, "api_key")


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
    return Principal(user["username"], role, permissions_of(role), "proxy")


async def authenticate(runtime: Runtime, request: Request) -> Principal | None:
    header = request.headers.get("authorization")
    if header is not None:
        return await _from_api_key(runtime, header)
    client = request.client.host if request.client else None
    proxied = runtime.proxy.identity(client, request.headers)
    if proxied is not None:
        return await _from_proxy(runtime, proxied)
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    session = await runtime.sessions.load(cookie)
    if session is None:
        return None
    role = Role(session.role)
    return Principal(session.username, role, permissions_of(role), "session", session)
