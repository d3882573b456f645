"""Users, API keys and PII unmask grants (schema ops)."""

from __future__ import annotations

USER_COLUMNS = "id, username, role, password_hash, totp_secret, disabled_at, session_version"
USER_BY_NAME = f"SELECT {USER_COLUMNS} FROM ops.users WHERE lower(username) = lower(%(username)s)"
USER_BY_ID = f"SELECT {USER_COLUMNS} FROM ops.users WHERE id = %(id)s"
USERS = (
    "SELECT id, username, role, totp_secret IS NOT NULL AS two_factor, created_at, "
    "last_sign_in_at, disabled_at FROM ops.users ORDER BY lower(username)"
)
INSERT_USER = (
    "INSERT INTO ops.users (username, role, password_hash, totp_secret) "
    "VALUES (%(username)s, %(role)s, %(password_hash)s, %(totp_secret)s) RETURNING id"
)
UPDATE_USER = (
    "UPDATE ops.users SET role = coalesce(%(role)s, role), "
    "password_hash = coalesce(%(password_hash)s, password_hash), "
    "totp_secret = CASE WHEN %(clear_totp)s::boolean THEN NULL "
    "ELSE coalesce(%(totp_secret)s, totp_secret) END, "
    "disabled_at = CASE WHEN %(disable)s::boolean IS NULL THEN disabled_at "
    "WHEN %(disable)s::boolean THEN coalesce(disabled_at, now()) ELSE NULL END, "
    # Every account change ends the user's sessions: the API compares this version.
    "session_version = session_version + 1, "
    "updated_at = now() WHERE lower(username) = lower(%(username)s) "
    "RETURNING id, session_version"
)
END_SESSIONS = (
    "UPDATE ops.users SET session_version = session_version + 1 "
    "WHERE lower(username) = lower(%(username)s) RETURNING id, session_version"
)
# What a session's user is now (api.auth.session_users), read on load.
SESSION_USER = (
    "SELECT username, role, disabled_at IS NOT NULL AS disabled, session_version "
    "FROM ops.users WHERE id = %(id)s"
)
SIGNED_IN = (
    "UPDATE ops.users SET last_sign_in_at = now(), "
    "password_hash = coalesce(%(password_hash)s, password_hash) WHERE id = %(id)s"
)
# The device of a two-factor enrolment, saved only for the account it was offered to as it
# was then: still without a device, not disabled, at the same session version.
ENROL_TOTP = (
    "UPDATE ops.users SET totp_secret = %(totp_secret)s, updated_at = now() "
    "WHERE id = %(id)s AND totp_secret IS NULL AND disabled_at IS NULL "
    f"AND session_version = %(version)s RETURNING {USER_COLUMNS}"
)

# A key with its owner: authentication refuses a disabled owner on every request.
API_KEY_BY_PREFIX = (
    "SELECT k.id, k.prefix, k.secret_hash, k.name, k.role, k.scopes, k.revoked_at, "
    "k.expires_at, k.expires_at <= now() AS expired, k.rate_limit_per_minute, "
    "u.id AS user_id, u.username, u.role AS user_role, u.disabled_at "
    "FROM ops.api_keys k JOIN ops.users u ON u.id = k.user_id WHERE k.prefix = %(prefix)s"
)
API_KEY_BY_REF = (
    "SELECT id, prefix, name, role, scopes, user_id, revoked_at FROM ops.api_keys "
    "WHERE prefix = %(key)s OR id::text = %(key)s"
)
API_KEYS = (
    "SELECT k.id, k.prefix, u.username, k.name, k.role, k.scopes, k.created_by, k.created_at, "
    "k.last_used_at, k.revoked_at FROM ops.api_keys k JOIN ops.users u ON u.id = k.user_id "
    "WHERE %(username)s::text IS NULL OR lower(u.username) = lower(%(username)s) "
    "ORDER BY lower(u.username), k.id"
)
INSERT_API_KEY = (
    "INSERT INTO ops.api_keys (prefix, secret_hash, name, role, scopes, user_id, created_by) "
    "VALUES (%(prefix)s, %(secret_hash)s, %(name)s, %(role)s, %(scopes)s, %(user_id)s, "
    "%(created_by)s) RETURNING id"
)
REVOKE_API_KEY = (
    "UPDATE ops.api_keys SET revoked_at = coalesce(revoked_at, now()), "
    "replaced_by = coalesce(%(replaced_by)s, replaced_by) "
    "WHERE (id::text = %(key)s OR prefix = %(key)s) AND revoked_at IS NULL "
    "RETURNING id, prefix, name, role, scopes"
)
TOUCH_API_KEY = "UPDATE ops.api_keys SET last_used_at = now() WHERE id = %(id)s"

ACTIVE_GRANTS = (
    "SELECT subject_type, subject_id FROM ops.pii_unmask_grants "
    "WHERE actor = %(actor)s AND expires_at > now()"
)
INSERT_GRANT = (
    "INSERT INTO ops.pii_unmask_grants (actor, subject_type, subject_id, reason, expires_at) "
    "VALUES (%(actor)s, %(subject_type)s, %(subject_id)s, %(reason)s, "
    "now() + make_interval(secs => %(ttl)s)) RETURNING id, created_at, expires_at"
)

# Slack users -> opsdeck users (Slack's team and user ids, never a display name).
SLACK_USER = (
    "SELECT u.id, u.username, u.role, u.disabled_at FROM ops.slack_users s "
    "JOIN ops.users u ON u.id = s.user_id "
    "WHERE s.team_id = %(team_id)s AND s.slack_user_id = %(slack_user_id)s"
)
MAP_SLACK_USER = (
    "INSERT INTO ops.slack_users (team_id, slack_user_id, user_id, created_by) "
    "VALUES (%(team_id)s, %(slack_user_id)s, %(user_id)s, %(created_by)s) "
    "ON CONFLICT (team_id, slack_user_id) DO UPDATE "
    "SET user_id = excluded.user_id, created_by = excluded.created_by, created_at = now()"
)
UNMAP_SLACK_USER = (
    "DELETE FROM ops.slack_users WHERE team_id = %(team_id)s "
    "AND slack_user_id = %(slack_user_id)s RETURNING user_id"
)
SLACK_USERS = (
    "SELECT s.team_id, s.slack_user_id, u.username, u.role, u.disabled_at, s.created_by, "
    "s.created_at FROM ops.slack_users s JOIN ops.users u ON u.id = s.user_id "
    "ORDER BY s.team_id, s.slack_user_id"
)
