"""The sealed secrets' columns, read and rewritten by ``opsdeck secrets reseal``."""

from __future__ import annotations

SEALED = {
    "users": "SELECT id, totp_secret FROM ops.users WHERE totp_secret IS NOT NULL FOR UPDATE",
    "webhook_endpoint_secrets": (
        "SELECT id, secret FROM ops.webhook_endpoint_secrets "
        "WHERE expires_at IS NULL OR expires_at > now() FOR UPDATE"
    ),
}
UPDATE = {
    "users": "UPDATE ops.users SET totp_secret = %(sealed)s WHERE id = %(id)s",
    "webhook_endpoint_secrets": (
        "UPDATE ops.webhook_endpoint_secrets SET secret = %(sealed)s WHERE id = %(id)s"
    ),
}
