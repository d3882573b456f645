"""Users, API keys and PII unmask grants (schema ops)."""

from __future__ import annotations

USER_COLUMNS = "id, username, role, password_hash, totp_secret, disabled_at"
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
    "updated_at = now() WHERE lower(username) = lower(%(username)s) RETURNING id"
)
SIGNED_IN = (
    "UPDATE ops.users SET last_sign_in_at = now(), "
    "password_hash = coalesce(%(password_hash)s, password_hash) WHERE id = %(id)s"
)

API_KEY_BY_PREFIX = (
    "SELECT id, prefix, secret_hash, name, role, scopes, revoked_at FROM ops.api_keys "
    "WHERE prefix = %(prefix)s"
)
API_KEYS = (
    "SELECT id, prefix, name, role, scopes, created_by, created_at, last_used_at, revoked_at "
    "FROM ops.api_keys ORDER BY id"
)
INSERT_API_KEY = (
    "INSERT INTO ops.api_keys (prefix, secret_hash, name, role, scopes, created_by) "
    "VALUES (%(prefix)s, %(secret_hash)s, %(name)s, %(role)s, %(scopes)s, %(created_by)s) "
    "RETURNING id"
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
