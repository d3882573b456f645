"""API keys as their pages read and change them, and their usage per day (schema ops)."""

from __future__ import annotations

_KEY = (
    "SELECT k.id, k.prefix, k.name, k.role, k.scopes, k.user_id, u.username, "
    "u.role AS user_role, k.created_by, k.created_at, k.last_used_at, k.revoked_at, "
    "k.expires_at, k.expires_at <= now() AS expired, k.rate_limit_per_minute, "
    "r.prefix AS replaced_by "
    "FROM ops.api_keys k JOIN ops.users u ON u.id = k.user_id "
    "LEFT JOIN ops.api_keys r ON r.id = k.replaced_by"
)
# Active keys first, then the newest.
KEYS = (
    f"{_KEY} WHERE %(user_id)s::bigint IS NULL OR k.user_id = %(user_id)s "
    "ORDER BY lower(u.username), k.revoked_at IS NOT NULL, k.id DESC"
)
KEY = f"{_KEY} WHERE k.id = %(id)s"
OWNER = (
    "SELECT id, username, role, disabled_at FROM ops.users "
    "WHERE id = %(id)s OR lower(username) = lower(%(username)s)"
)
INSERT_KEY = (
    "INSERT INTO ops.api_keys (prefix, secret_hash, name, role, scopes, user_id, created_by, "
    "expires_at, rate_limit_per_minute) VALUES (%(prefix)s, %(secret_hash)s, %(name)s, "
    "%(role)s, %(scopes)s, %(user_id)s, %(created_by)s, %(expires_at)s, %(rate_limit)s) "
    "RETURNING id"
)
# The key as it is while it changes: a revoke and a rotate of one key never both run.
KEY_FOR_UPDATE = (
    "SELECT id, prefix, name, role, scopes, user_id, revoked_at, expires_at, "
    "expires_at <= now() AS expired, rate_limit_per_minute FROM ops.api_keys "
    "WHERE id = %(id)s FOR UPDATE"
)
REVOKE = (
    "UPDATE ops.api_keys SET revoked_at = now(), replaced_by = %(replaced_by)s "
    "WHERE id = %(id)s AND revoked_at IS NULL"
)
SET_LIMITS = (
    "UPDATE ops.api_keys SET expires_at = %(expires_at)s, "
    "rate_limit_per_minute = %(rate_limit)s WHERE id = %(id)s AND revoked_at IS NULL"
)

USAGE = (
    "SELECT day, calls, client_errors, server_errors FROM ops.api_key_usage_daily "
    "WHERE api_key_id = %(id)s AND day > (now() AT TIME ZONE 'UTC')::date - %(days)s "
    "ORDER BY day DESC"
)
# One flush of the API process's counts (api.auth.key_usage): keys that are gone are
# skipped, counts already there are added to.
ADD_USAGE = (
    "INSERT INTO ops.api_key_usage_daily (api_key_id, day, calls, client_errors, "
    "server_errors) SELECT u.key, u.day, u.calls, u.client_errors, u.server_errors "
    "FROM unnest(%(key)s::bigint[], %(day)s::date[], %(calls)s::bigint[], "
    "%(client_errors)s::bigint[], %(server_errors)s::bigint[]) "
    "AS u(key, day, calls, client_errors, server_errors) "
    "JOIN ops.api_keys k ON k.id = u.key "
    "ON CONFLICT (api_key_id, day) DO UPDATE SET "
    "calls = ops.api_key_usage_daily.calls + excluded.calls, "
    "client_errors = ops.api_key_usage_daily.client_errors + excluded.client_errors, "
    "server_errors = ops.api_key_usage_daily.server_errors + excluded.server_errors"
)
