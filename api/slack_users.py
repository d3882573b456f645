"""Who a Slack button click is: Slack's team id and user id (never the display name, which
its owner can change) mapped to an opsdeck user, behind ``opsdeck slack-users``. An
unmapped click acts as nobody and is refused; a mapped one acts with its user's role."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg

from api.accounts import AccountError, Admin
from api.queries import access as sql
from api.rbac import Role

SLACK_ID = re.compile(r"^[A-Z0-9]{1,32}$")


@dataclass(frozen=True)
class SlackPerson:
    """The opsdeck user a Slack user is mapped to."""

    user_id: int
    username: str
    role: Role
    disabled: bool


def _check_ids(team_id: str, slack_user_id: str) -> None:
    for what, value in (("team id", team_id), ("user id", slack_user_id)):
        if not SLACK_ID.match(value):
            raise AccountError(f"{value!r} is not a Slack {what} (like T0123ABCD / U0123ABCD)")


async def person_of(
    conn: psycopg.AsyncConnection[Any], team_id: str, slack_user_id: str
) -> SlackPerson | None:
    """The opsdeck user behind a Slack user, or None when unmapped."""
    cursor = await conn.execute(
        sql.SLACK_USER, {"team_id": team_id, "slack_user_id": slack_user_id}
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return SlackPerson(int(row[0]), str(row[1]), Role(row[2]), row[3] is not None)


def map_user(admin: Admin, team_id: str, slack_user_id: str, username: str) -> None:
    """Map a Slack user to an opsdeck user (replacing an earlier mapping), audited."""
    _check_ids(team_id, slack_user_id)
    user = admin.conn.execute(sql.USER_BY_NAME, {"username": username}).fetchone()
    if user is None:
        raise AccountError(f"no user {username!r}")
    params = {"team_id": team_id, "slack_user_id": slack_user_id, "user_id": user[0]}
    admin.conn.execute(sql.MAP_SLACK_USER, {**params, "created_by": admin.actor})
    admin.audit("slack_user.map", "slack_user", f"{team_id}/{slack_user_id}", user=user[1])
    admin.conn.commit()


def unmap_user(admin: Admin, team_id: str, slack_user_id: str) -> None:
    """Forget a Slack user: their clicks are refused from now on."""
    _check_ids(team_id, slack_user_id)
    params = {"team_id": team_id, "slack_user_id": slack_user_id}
    if admin.conn.execute(sql.UNMAP_SLACK_USER, params).fetchone() is None:
        raise AccountError(f"Slack user {team_id}/{slack_user_id} is not mapped")
    admin.audit("slack_user.unmap", "slack_user", f"{team_id}/{slack_user_id}")
    admin.conn.commit()


def list_users(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(sql.SLACK_USERS).fetchall()
