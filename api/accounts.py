"""Account administration behind ``opsdeck users`` and ``opsdeck api-keys``: every change is
a setting change, audited in the same transaction, and ends the sessions it invalidates.

Ending a user's sessions is the database's doing: the user's session version goes up in the
same transaction, and every API process refuses older sessions within
``api.session_recheck_seconds``. Deleting them from Redis as well is tidying up, done when
Redis is configured and reachable, and reported either way."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
import redis

from api.auth import api_keys, passwords, totp
from api.auth.sessions import revoke_user_sessions
from api.queries import access as sql
from api.rbac import Role
from core.audit import AuditEntry, record_in_sync
from core.sealed_secrets import KEY_SETTING, SecretBox

log = logging.getLogger(__name__)


class AccountError(Exception):
    """A change that cannot be made; the message says why."""


@dataclass(frozen=True)
class SessionsEnded:
    """What ending a user's sessions did: the user's new session version (older sessions
    are refused from now on), and how many sessions were deleted from Redis (None when
    Redis was not configured or could not be reached: ``redis_problem`` says which)."""

    version: int
    deleted: int | None
    redis_problem: str | None = None


@dataclass(frozen=True)
class Admin:
    """Who makes changes, and where the database and sessions are."""

    actor: str
    conn: psycopg.Connection[Any]
    sessions: redis.Redis | None
    # Seals TOTP secrets for storage (core.sealed_secrets); a change that makes one needs it.
    box: SecretBox | None = None

    def sealed(self, secret: str | None) -> str | None:
        """A new TOTP secret as stored: sealed in ``box``."""
        if secret is None:
            return None
        if self.box is None:
            raise AccountError(
                f"{KEY_SETTING} is not set: TOTP secrets are stored encrypted with it "
                "(make one with `opsdeck secrets new-key`)"
            )
        return self.box.seal(secret)

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

    def end_sessions(self, user_id: int, version: int) -> SessionsEnded:
        """Delete the sessions of a user whose session version went up (committed) from
        Redis too, when Redis is there."""
        if self.sessions is None:
            return SessionsEnded(version, None, "REDIS_URL is not set")
        try:
            return SessionsEnded(version, revoke_user_sessions(self.sessions, user_id))
        except redis.RedisError as exc:
            log.warning("could not delete the sessions of user %s from Redis: %s", user_id, exc)
            return SessionsEnded(version, None, f"Redis did not answer ({exc})")


def add_user(
    admin: Admin, username: str, role: Role, password: str, two_factor: bool
) -> str | None:
    """Create a user; with ``two_factor``, with a TOTP device now (its secret is returned),
    else the user enrols one at their first sign-in (:mod:`api.enrolment`)."""
    try:
        password_hash = passwords.hash_password(password)
    except passwords.WeakPassword as exc:
        raise AccountError(str(exc)) from None
    secret = totp.new_secret() if two_factor else None
    try:
        admin.conn.execute(
            sql.INSERT_USER,
            {
                "username": username,
                "role": role,
                "password_hash": password_hash,
                "totp_secret": admin.sealed(secret),
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


def _update(admin: Admin, username: str, **changes: Any) -> tuple[int, int]:
    """Change a user and end their sessions (in the open transaction): (id, new version)."""
    values: dict[str, Any] = {
        "role": None,
        "password_hash": None,
        "totp_secret": None,
        "clear_totp": False,
        "disable": None,
    }
    values.update(changes)
    values["totp_secret"] = admin.sealed(values["totp_secret"])
    row = admin.conn.execute(sql.UPDATE_USER, {"username": username, **values}).fetchone()
    if row is None:
        raise AccountError(f"no user {username!r}")
    return int(row[0]), int(row[1])


def set_role(admin: Admin, username: str, role: Role) -> tuple[str | None, SessionsEnded]:
    """Change a role and end the user's sessions; a new super admin gets a TOTP secret if
    they had none (returned)."""
    user = admin.conn.execute(sql.USER_BY_NAME, {"username": username}).fetchone()
    if user is None:
        raise AccountError(f"no user {username!r}")
    secret = totp.new_secret() if role == Role.SUPER_ADMIN and user[4] is None else None
    user_id, version = _update(admin, username, role=role, totp_secret=secret)
    admin.audit("user.role", "user", username, role=role, previous=user[2])
    admin.conn.commit()
    return secret, admin.end_sessions(user_id, version)


def set_disabled(admin: Admin, username: str, disabled: bool) -> SessionsEnded:
    user_id, version = _update(admin, username, disable=disabled)
    admin.audit("user.disable" if disabled else "user.enable", "user", username)
    admin.conn.commit()
    return admin.end_sessions(user_id, version)


def reset_password(admin: Admin, username: str, password: str) -> SessionsEnded:
    try:
        password_hash = passwords.hash_password(password)
    except passwords.WeakPassword as exc:
        raise AccountError(str(exc)) from None
    user_id, version = _update(admin, username, password_hash=password_hash)
    admin.audit("user.password", "user", username)
    admin.conn.commit()
    return admin.end_sessions(user_id, version)


def reset_totp(admin: Admin, username: str) -> tuple[str, SessionsEnded]:
    secret = totp.new_secret()
    user_id, version = _update(admin, username, totp_secret=secret)
    admin.audit("user.totp", "user", username)
    admin.conn.commit()
    return secret, admin.end_sessions(user_id, version)


def revoke_sessions(admin: Admin, username: str) -> SessionsEnded:
    row = admin.conn.execute(sql.END_SESSIONS, {"username": username}).fetchone()
    if row is None:
        raise AccountError(f"no user {username!r}")
    admin.audit("user.sessions_revoked", "user", username, session_version=int(row[1]))
    admin.conn.commit()
    return admin.end_sessions(int(row[0]), int(row[1]))


def list_users(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(sql.USERS).fetchall()


def key_owner(admin: Admin, username: str) -> tuple[int, str, Role]:
    """(id, username, role) of the user a key is made for; a disabled user gets none."""
    user = admin.conn.execute(sql.USER_BY_NAME, {"username": username}).fetchone()
    if user is None:
        raise AccountError(f"no user {username!r}: a key acts for a user (opsdeck users add)")
    if user[5] is not None:
        raise AccountError(f"user {user[1]!r} is disabled")
    return int(user[0]), str(user[1]), Role(user[2])


def _insert_key(
    admin: Admin, user_id: int, name: str, role: Role, scopes: list[str]
) -> tuple[api_keys.NewKey, int]:
    key = api_keys.generate()
    row = admin.conn.execute(
        sql.INSERT_API_KEY,
        {
            "prefix": key.prefix,
            "secret_hash": key.secret_hash,
            "name": name,
            "role": role,
            "scopes": scopes,
            "user_id": user_id,
            "created_by": admin.actor,
        },
    ).fetchone()
    assert row is not None
    return key, int(row[0])


def create_key(
    admin: Admin, username: str, name: str, role: Role, scopes: list[str]
) -> tuple[str, str]:
    """A new API key of ``username``, within their role: (the token, shown only now; its
    prefix)."""
    user_id, owner, owner_role = key_owner(admin, username)
    try:
        api_keys.check_owner(role, owner_role)
        checked = api_keys.check_scopes(role, scopes)
    except ValueError as exc:
        raise AccountError(str(exc)) from None
    key, _ = _insert_key(admin, user_id, name, role, checked)
    admin.audit(
        "api_key.create", "api_key", key.prefix, user=owner, name=name, role=role, scopes=checked
    )
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
    """Replace a key by a new one of the same user, name, role and scopes; the old one stops
    working at once."""
    old = admin.conn.execute(sql.API_KEY_BY_REF, {"key": key}).fetchone()
    if old is None or old[6] is not None:
        raise AccountError(f"no active API key {key!r} (give its id or prefix)")
    _, prefix, name, role, scopes, user_id, _ = old
    new, new_id = _insert_key(admin, user_id, name, Role(role), scopes)
    revoke_key(admin, prefix, replaced_by=new_id)
    admin.audit("api_key.rotate", "api_key", prefix, replaced_by=new.prefix)
    admin.conn.commit()
    return new.token, new.prefix


def list_keys(conn: psycopg.Connection[Any], username: str | None = None) -> list[tuple[Any, ...]]:
    """Keys with their users' names, user by user; only ``username``'s when given."""
    return conn.execute(sql.API_KEYS, {"username": username}).fetchall()
