"""The API keys behind their pages, on the API's ops pool: who may see a key, and the
changes (create, revoke, rotate, limits), each in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.auth import api_keys
from api.auth.principal import Principal
from api.problems import Problem
from api.queries import key_admin as sql
from api.runtime import Runtime

MANAGE_ALL = "users.manage"  # super admins manage everyone's keys
Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True)
class Limits:
    """When a key stops working (None: never) and its own requests a minute (None: the
    API's default)."""

    expires_at: datetime | None
    rate_limit: int | None


@dataclass(frozen=True)
class NewKey:
    id: int
    prefix: str
    token: str  # shown once


async def _rows(conn: Conn, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(query, params)
    return await cursor.fetchall()


def sees_all(principal: Principal) -> bool:
    return principal.can(MANAGE_ALL)


async def keys(runtime: Runtime, user_id: int | None) -> list[dict[str, Any]]:
    """The keys of ``user_id``, or everyone's (None)."""
    async with runtime.ops.connection() as conn:
        return await _rows(conn, sql.KEYS, {"user_id": user_id})


async def key(runtime: Runtime, principal: Principal, key_id: int) -> dict[str, Any]:
    """The key, when ``principal`` may see it: their own, or anyone's for a super admin.
    Another user's key is a 404, the same as a key that does not exist."""
    async with runtime.ops.connection() as conn:
        found = await _rows(conn, sql.KEY, {"id": key_id})
    if not found or not (found[0]["user_id"] == principal.person or sees_all(principal)):
        raise Problem(404, f"no API key {key_id}")
    return found[0]


async def find_user(
    runtime: Runtime, *, username: str | None = None, user_id: int | None = None
) -> dict[str, Any]:
    """A user by name or id, or a 404."""
    async with runtime.ops.connection() as conn:
        found = await _rows(conn, sql.OWNER, {"username": username, "id": user_id})
    if not found:
        raise Problem(404, f"no user {username or user_id!r}")
    return found[0]


async def owner(
    runtime: Runtime, *, username: str | None = None, user_id: int | None = None
) -> dict[str, Any]:
    """The user a new key acts for, by name or id: a 404 when unknown, a 409 when
    disabled."""
    user = await find_user(runtime, username=username, user_id=user_id)
    if user["disabled_at"] is not None:
        raise Problem(409, f"user {user['username']} is disabled: their keys would not work")
    return user


async def _insert(conn: Conn, values: dict[str, Any]) -> NewKey:
    made = api_keys.generate()
    params = {**values, "prefix": made.prefix, "secret_hash": made.secret_hash}
    row = await (await conn.execute(sql.INSERT_KEY, params)).fetchone()
    assert row is not None
    return NewKey(int(row[0]), made.prefix, made.token)


async def create(
    runtime: Runtime, user: dict[str, Any], name: str, scopes: list[str], limits: Limits, actor: str
) -> NewKey:
    """A new key of ``user`` with their present role and ``scopes`` (checked already)."""
    values = {
        "name": name,
        "role": user["role"],
        "scopes": scopes,
        "user_id": user["id"],
        "created_by": actor,
        "expires_at": limits.expires_at,
        "rate_limit": limits.rate_limit,
    }
    async with runtime.ops.connection() as conn:
        return await _insert(conn, values)


async def _locked(conn: Conn, key_id: int) -> dict[str, Any]:
    """The key, locked; a 409 when it no longer works."""
    found = await _rows(conn, sql.KEY_FOR_UPDATE, {"id": key_id})
    if not found:
        raise Problem(404, f"no API key {key_id}")
    if found[0]["revoked_at"] is not None:
        raise Problem(409, f"API key {found[0]['prefix']} is revoked already")
    return found[0]


async def revoke(runtime: Runtime, key_id: int) -> None:
    async with runtime.ops.connection() as conn, conn.transaction():
        await _locked(conn, key_id)
        await conn.execute(sql.REVOKE, {"id": key_id, "replaced_by": None})


async def rotate(runtime: Runtime, key_id: int, actor: str) -> NewKey:
    """A new key with the old one's user, name, role, scopes and limits; the old one is
    revoked in the same transaction, so it stops working the moment the new one exists."""
    async with runtime.ops.connection() as conn, conn.transaction():
        old = await _locked(conn, key_id)
        if old["expired"]:
            raise Problem(409, f"API key {old['prefix']} has expired: create a new key instead")
        values = {
            "name": old["name"],
            "role": old["role"],
            "scopes": old["scopes"],
            "user_id": old["user_id"],
            "created_by": actor,
            "expires_at": old["expires_at"],
            "rate_limit": old["rate_limit_per_minute"],
        }
        new = await _insert(conn, values)
        await conn.execute(sql.REVOKE, {"id": key_id, "replaced_by": new.id})
    return new


async def set_limits(runtime: Runtime, key_id: int, limits: Limits) -> None:
    params = {"id": key_id, "expires_at": limits.expires_at, "rate_limit": limits.rate_limit}
    async with runtime.ops.connection() as conn, conn.transaction():
        await _locked(conn, key_id)
        await conn.execute(sql.SET_LIMITS, params)


async def usage(runtime: Runtime, key_id: int, days: int) -> list[dict[str, Any]]:
    """Requests per day (newest first) over the last ``days`` days, as saved so far."""
    async with runtime.ops.connection() as conn:
        return await _rows(conn, sql.USAGE, {"id": key_id, "days": days})
