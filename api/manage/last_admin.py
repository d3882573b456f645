"""The guard rail of user management: the platform always keeps a super admin who can sign
in (enabled, with a second factor), so nobody disables, demotes or resets the last one."""

from __future__ import annotations

from typing import Any

import psycopg

from api.problems import Problem
from api.queries import user_admin as sql


async def keep_one(
    conn: psycopg.AsyncConnection[Any], user_id: int, username: str, doing: str
) -> None:
    """A 409 when user ``user_id`` is a super admin and no other super admin can sign in.
    Run inside the change's transaction: the super admins stay locked until it commits."""
    rows = await (await conn.execute(sql.SUPER_ADMINS)).fetchall()
    if not any(row[0] == user_id for row in rows):
        return
    if any(row[0] != user_id and row[1] for row in rows):
        return
    raise Problem(
        409,
        f"{username} is the last super admin who can sign in: {doing} would leave nobody "
        "able to manage users. Make another super admin (with a second factor) first.",
    )
