"""Secrets at rest: TOTP secrets and webhook signing secrets are stored sealed.

A copy of the database (a backup, a replica, a disk) used to hold every user's second
factor and every endpoint's signing secret in clear. From here on both columns hold only
``sealed:`` values (core.sealed_secrets: Fernet under ``secrets_key``, a key that is never
in the database), and CHECK constraints refuse anything else. The signing secrets' list
showed their first characters from the secret itself; it now reads them from ``hint``,
kept when the secret is made.

Rows that exist in clear are sealed here, with ``secrets_key`` from the settings; when
there are some and no key is set, the revision stops and says so (nothing is changed).

Revision ID: 0020_secrets_at_rest
Revises: 0004_access, 0005_webhooks
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

from core.sealed_secrets import SecretBox
from core.settings import load_settings

revision = "0020_secrets_at_rest"
down_revision = ("0004_access", "0005_webhooks")
branch_labels = None
depends_on = None

PLAINTEXT = {
    "users": "SELECT id, totp_secret FROM ops.users "
    "WHERE totp_secret IS NOT NULL AND totp_secret NOT LIKE 'sealed:%' FOR UPDATE",
    "webhook_endpoint_secrets": "SELECT id, secret FROM ops.webhook_endpoint_secrets "
    "WHERE secret NOT LIKE 'sealed:%' FOR UPDATE",
}
SEAL = {
    "users": "UPDATE ops.users SET totp_secret = :sealed WHERE id = :id",
    "webhook_endpoint_secrets": "UPDATE ops.webhook_endpoint_secrets "
    "SET secret = :sealed, hint = left(secret, 10) WHERE id = :id",
}


def _seal_existing() -> None:
    bind = op.get_bind()
    found = {table: bind.execute(text(query)).fetchall() for table, query in PLAINTEXT.items()}
    if not any(found.values()):
        return
    box = SecretBox.required(load_settings(), "this migration (secrets stored in clear exist)")
    for table, rows in found.items():
        for row_id, secret in rows:
            bind.execute(text(SEAL[table]), {"id": row_id, "sealed": box.seal(secret)})


def upgrade() -> None:
    op.execute(
        text(
            "ALTER TABLE ops.webhook_endpoint_secrets "
            "DROP CONSTRAINT webhook_endpoint_secrets_secret_check, ADD COLUMN hint text"
        )
    )
    _seal_existing()
    op.execute(
        text(
            "ALTER TABLE ops.webhook_endpoint_secrets ADD CONSTRAINT "
            "webhook_endpoint_secrets_sealed CHECK (secret LIKE 'sealed:%')"
        )
    )
    op.execute(
        text(
            "ALTER TABLE ops.users ADD CONSTRAINT users_totp_secret_sealed "
            "CHECK (totp_secret IS NULL OR totp_secret LIKE 'sealed:%')"
        )
    )


def downgrade() -> None:
    # Sealed values stay sealed: a downgrade cannot read them back without the key.
    op.execute(text("ALTER TABLE ops.users DROP CONSTRAINT users_totp_secret_sealed"))
    op.execute(
        text(
            "ALTER TABLE ops.webhook_endpoint_secrets "
            "DROP CONSTRAINT webhook_endpoint_secrets_sealed, DROP COLUMN hint"
        )
    )
