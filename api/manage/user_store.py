"""The account changes behind the user pages, on the API's ops pool. Each change ends the
user's sessions: their session version goes up in the change's transaction (every API
process refuses older sessions), then their sessions are deleted from Redis too."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import anyio
import psycopg
from psycopg.rows import dict_row
from redis.exceptions import RedisError

from api.auth import passwords
from api.manage import last_admin
from api.problems import Problem, invalid
from api.queries import user_admin as sql
from api.rbac import Role
from api.runtime import Runtime

log = logging.getLogger(__name__)
Conn = psycopg.AsyncConnection[Any]


async def users(runtime: Runtime) -> list[dict[str, Any]]:
    async with runtime.ops.connection() as conn:
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(sql.USERS)
        return await cursor.fetchall()


async def user(runtime: Runtime, user_id: int) -> dict[str, Any]:
    """The user, or a 404."""
    async with runtime.ops.connection() as conn:
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(sql.USER, {"id": user_id})
        found = await cursor.fetchone()
    if found is None:
        raise Problem(404, f"no user {user_id}")
    return found


async def password_hash(password: str) -> str:
    """argon2 off the event loop; a password too short is a 400 naming the field."""
    try:
        return await anyio.to_thread.run_sync(passwords.hash_password, password)
    except passwords.WeakPassword as exc:
        raise invalid("password", str(exc)) from None


async def add(runtime: Runtime, username: str, role: Role, hashed: str) -> int:
    """A new user (no second factor yet: they enrol one at their first sign-in)."""
    params = {"username": username, "role": role, "password_hash": hashed}
    try:
        async with runtime.ops.connection() as conn:
            row = await (await conn.execute(sql.INSERT_USER, params)).fetchone()
    except psycopg.errors.UniqueViolation:
        raise Problem(409, f"user {username!r} exists already") from None
    assert row is not None
    return int(row[0])


@dataclass(frozen=True)
class Update:
    """One UPDATE of :mod:`api.queries.user_admin` on a user; ``guarded`` names what it
    does when it may leave the platform without a super admin who can sign in."""

    query: str
    params: dict[str, Any]
    guarded: str | None = None


async def apply(runtime: Runtime, target: dict[str, Any], change: Update) -> int:
    """Make ``change`` to ``target`` and end their sessions; their new session version."""
    async with runtime.ops.connection() as conn, conn.transaction():
        if change.guarded is not None:
            await last_admin.keep_one(conn, target["id"], target["username"], change.guarded)
        cursor = await conn.execute(change.query, {**change.params, "id": target["id"]})
        row = await cursor.fetchone()
    if row is None:
        raise Problem(404, f"no user {target['id']}")
    await _forget_sessions(runtime, int(row[0]))
    return int(row[2])


async def _forget_sessions(runtime: Runtime, user_id: int) -> None:
    """Tidying only: the new session version has ended the sessions already."""
    try:
        await runtime.sessions.revoke_user(user_id)
    except RedisError as exc:
        log.warning("could not delete the sessions of user %s from Redis: %s", user_id, exc)
