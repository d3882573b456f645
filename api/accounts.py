"""Account administration behind ``opsdeck users`` and ``opsdeck api-keys``: every change is
a setting change, audited in the same transaction, and ends the sessions it invalidates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import redis

from api.auth import api_keys, passwords, totp
from api.auth.sessions import revoke_user_sessions
from api.queries import access as sql
from api.rbac import Role
from core.audit import AuditEntry, record_in_sync


class AccountError(Exception):
    """A change that cannot be made; the message says why."""


@dataclass(frozen=True)
class Admin:
    """Who makes changes, and where the database and sessions are."""

    actor: str
    conn: psycopg.Connection[Any]
    sessions: redis.Redis | None

    def audit(self, action: str, target_type: str, target_id: str, **details: Any) -> None:
        record_in_sync(
            self.conn,
            AuditEntry(
                actor=self.actor,
                action=action,
                target_type=target_type,
                target_id=target_id,
                details=details,
            ),
        )

    def end_sessions(self, user_id: int) -> int:
        return revoke_user_sessions(self.sessions, user_id) if self.sessions is not None else 0


def add_user(
    admin: Admin, username: str, role: Role, password: str, two_factor: bool
) -> str | None:
    """Create a user; returns the new TOTP secret (always for super admins), if any."""
    try:
        password_hash = passwords.hash_password(password)
    except passwords.WeakPassword as exc:
        raise AccountError(str(exc)) from None
    secret = totp.new_secret() if two_factor or role == Role.SUPER_ADMIN else None
    try:
        admin.conn.execute(
            sql.INSERT_USER,
            {
                "username": username,
                "role": role,
                "password_hash": password_hash,
                "totp_secret": secret,
            },
        )
    except psycopg.errors.UniqueViolation:
        admin.conn.rollback()
        raise AccountError(f"user {username!r} exists already") from None
    except psycopg.errors.CheckViolation:
        admin.conn.rollback()
        raise AccountError(
            f"{username!r} is not a valid user name (letters, digits, . _ @ + -)"
        ) from None
    admin.audit("user.create", "user", username, role=role, two_factor=secret is not None)
    admin.conn.commit()
    return secret


def _update(admin: Admin, username: str, **changes: Any) -> int:
    values = {
        "role": None,
        "password_hash": None,
        "totp_secret": None,
        "clear_totp": False,
        "disable": None,
    }
    values.update(changes)
    try:
        row = admin.conn.execute(sql.UPDATE_USER, {"username": username, **values}).fetchone()
    except psycopg.errors.CheckViolation:
        admin.conn.rollback()
        raise AccountError("a super admin needs two-factor sign-in: run reset-totp first") from None
    if row is None:
        raise AccountError(f"no user {username!r}")
    return int(row[0])


def set_role(admin: Admin, username: str, role: Role) -> str | None:
    """Change a role and end the user's sessions; a new super admin gets a TOTP secret if
    they had none (returned)."""
    user = admin.conn.execute(sql.USER_BY_NAME, {"username": username}).fetchone()
    if user is None:
        raise AccountError(f"no user {username!r}")
    secret = totp.new_secret() if role == Role.SUPER_ADMIN and user[4] is None else None
    user_id = _update(admin, username, role=role, totp_secret=secret)
    admin.audit("user.role", "user", username, role=role, previous=user[2])
    admin.conn.commit()
    admin.end_sessions(user_id)
    return secret


def set_disabled(admin: Admin, username: str, disabled: bool) -> None:
    user_id = _update(admin, username, disable=disabled)
    admin.audit("user.disable" if disabled else "user.enable", "user", username)
    admin.conn.commit()
    if disabled:
        admin.end_sessions(user_id)


def reset_password(admin: Admin, username: str, password: str) -> None:
    try:
        password_hash = passwords.hash_password(password)
    except passwords.WeakPassword as exc:
        raise AccountError(str(exc)) from None
    user_id = _update(admin, username, password_hash=password_hash)
    admin.audit("user.password", "user", username)
    admin.conn.commit()
    admin.end_sessions(user_id)


def reset_totp(admin: Admin, username: str) -> str:
    secret = totp.new_secret()
    user_id = _update(admin, username, totp_secret=secret)
    admin.audit("user.totp", "user", username)
    admin.conn.commit()
    admin.end_sessions(user_id)
    return secret


def revoke_sessions(admin: Admin, username: str) -> int:
    user = admin.conn.execute(sql.USER_BY_NAME, {"username": username}).fetchone()
    if user is None:
        raise AccountError(f"no user {username!r}")
    ended = admin.end_sessions(int(user[0]))
    admin.audit("user.sessions_revoked", "user", username, sessions=ended)
    admin.conn.commit()
    return ended


def list_users(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(sql.USERS).fetchall()


def create_key(admin: Admin, name: str, role: Role, scopes: list[str]) -> tuple[str, str]:
    """A new API key: (the token, shown only now; its prefix)."""
    try:
        checked = api_keys.check_scopes(role, scopes)
    except ValueError as exc:
        raise AccountError(str(exc)) from None
    key = api_keys.generate()
    admin.conn.execute(
        sql.INSERT_API_KEY,
        {
            "prefix": key.prefix,
            "secret_hash": key.secret_hash,
            "name": name,
            "role": role,
            "scopes": checked,
            "created_by": admin.actor,
        },
    )
    admin.audit("api_key.create", "api_key", key.prefix, name=name, role=role, scopes=checked)
    admin.conn.commit()
    return key.token, key.prefix


def revoke_key(admin: Admin, key: str, replaced_by: int | None = None) -> tuple[Any, ...]:
    row = admin.conn.execute(
        sql.REVOKE_API_KEY, {"key": key, "replaced_by": replaced_by}
    ).fetchone()
    if row is None:
        raise AccountError(f"no active API key {key!r} (give its id or prefix)")
    admin.audit("api_key.revoke", "api_key", row[1], name=row[2])
    return tuple(row)


def rotate_key(admin: Admin, key: str) -> tuple[str, str]:
    """Replace a key by a new one with the same name, role and scopes; the old one stops
    working at once."""
    old = admin.conn.execute(
        sql.API_KEY_BY_PREFIX + " OR id::text = %(prefix)s", {"prefix": key}
    ).fetchone()
    if old is None or old[6] is not None:
        raise AccountError(f"no active API key {key!r} (give its id or prefix)")
    new = api_keys.generate()
    new_id = admin.conn.execute(
        sql.INSERT_API_KEY,
        {
            "prefix": new.prefix,
            "secret_hash": new.secret_hash,
            "name": old[3],
            "role": old[4],
            "scopes": old[5],
            "created_by": admin.actor,
        },
    ).fetchone()
    revoke_key(admin, old[1], replaced_by=new_id[0] if new_id else None)
    admin.audit("api_key.rotate", "api_key", old[1], replaced_by=new.prefix)
    admin.conn.commit()
    return new.token, new.prefix


def list_keys(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(sql.API_KEYS).fetchall()
