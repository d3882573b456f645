"""0021: a super admin may exist without a TOTP device (it enrols at sign-in), and sessions
made by a password alone before it end."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import sqlalchemy.exc
from alembic import command

from core.migrate import alembic_config

BEFORE = "0019_session_versions"  # what 0021 revises
DEVICELESS_SUPER_ADMIN = (
    "INSERT INTO ops.users (username, role, password_hash) VALUES ('sue', 'super_admin', 'h')"
)


def _sql(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query)
        return cursor.fetchall() if cursor.description else []


def test_0021_drops_the_device_check_and_ends_password_only_sessions(db_url: str) -> None:
    config = alembic_config(db_url)
    command.downgrade(config, BEFORE)
    with pytest.raises(psycopg.errors.CheckViolation):
        _sql(db_url, DEVICELESS_SUPER_ADMIN)
    _sql(
        db_url,
        "INSERT INTO ops.users (username, role, password_hash, totp_secret) VALUES "
        "('pat', 'ops', 'h', NULL), ('sam', 'super_admin', 'h', 'sealed:x')",
    )
    command.upgrade(config, "0021_totp_enrolment")
    versions = _sql(db_url, "SELECT username, session_version FROM ops.users ORDER BY username")
    assert versions == [("pat", 2), ("sam", 1)]
    _sql(db_url, DEVICELESS_SUPER_ADMIN)
    # Going back cannot keep the old rule while a super admin waits for a device.
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        command.downgrade(config, BEFORE)
    _sql(db_url, "DELETE FROM ops.users WHERE username = 'sue'")
    command.downgrade(config, BEFORE)
    command.upgrade(config, "heads")
