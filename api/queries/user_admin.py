"""Users as the management pages read and change them (schema ops). Every change to an
account adds one to its session version, which ends its sessions on every API process."""

from __future__ import annotations

_USER = (
    "SELECT u.id, u.username, u.role, u.disabled_at, u.totp_secret IS NOT NULL AS two_factor, "
    "u.last_sign_in_at, u.created_at, u.updated_at, "
    "(SELECT count(*) FROM ops.api_keys k WHERE k.user_id = u.id AND k.revoked_at IS NULL "
    "AND (k.expires_at IS NULL OR k.expires_at > now())) AS active_keys "
    "FROM ops.users u"
)
USERS = f"{_USER} ORDER BY lower(u.username)"
USER = f"{_USER} WHERE u.id = %(id)s"
USER_ID_BY_NAME = "SELECT id FROM ops.users WHERE lower(username) = lower(%(username)s)"

INSERT_USER = (
    "INSERT INTO ops.users (username, role, password_hash) "
    "VALUES (%(username)s, %(role)s, %(password_hash)s) RETURNING id"
)
# The super admins, locked until the change commits: two changes that would each leave
# the other the last one are taken one after the other.
SUPER_ADMINS = (
    "SELECT id, disabled_at IS NULL AND totp_secret IS NOT NULL AS can_sign_in "
    "FROM ops.users WHERE role = 'super_admin' ORDER BY id FOR UPDATE"
)
_CHANGED = (
    "session_version = session_version + 1, updated_at = now() WHERE id = %(id)s "
    "RETURNING id, username, session_version"
)
SET_ROLE = f"UPDATE ops.users SET role = %(role)s, {_CHANGED}"
SET_DISABLED = (
    "UPDATE ops.users SET disabled_at = CASE WHEN %(disabled)s::boolean "
    f"THEN coalesce(disabled_at, now()) END, {_CHANGED}"
)
SET_PASSWORD = f"UPDATE ops.users SET password_hash = %(password_hash)s, {_CHANGED}"
CLEAR_TOTP = f"UPDATE ops.users SET totp_secret = NULL, {_CHANGED}"
END_SESSIONS = f"UPDATE ops.users SET {_CHANGED}"
