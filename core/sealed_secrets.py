"""Secrets opsdeck keeps in its database (TOTP secrets, webhook signing secrets), sealed
with a key that is never there: ``secrets_key`` (Fernet: AES-128-CBC + HMAC-SHA256).

A stored value is ``sealed:`` and a Fernet token; the tables refuse anything else (CHECK
constraints, migration 0020), so a plaintext secret cannot be written by mistake and a
dump of the database (a backup, a replica, a stolen disk) holds none. A rotation keeps the
old key readable under ``secrets_previous_keys`` while :func:`reseal_all` writes every
value again under the new one (``opsdeck secrets reseal``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.queries import sealed_secrets as sql
from core.settings import Settings, SettingsError, setting_label

PREFIX = "sealed:"
KEY_SETTING = setting_label(("secrets_key",))


class UnreadableSecret(Exception):
    """A stored value that is not sealed, or sealed under none of the configured keys."""


def new_key() -> str:
    return Fernet.generate_key().decode()


class SecretBox:
    """Seals under the current key; opens under the current and the previous ones."""

    def __init__(self, key: str, previous: Sequence[str] = ()) -> None:
        self._current = Fernet(key)
        self._all = MultiFernet([self._current, *(Fernet(k) for k in previous)])

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox | None:
        """The box of ``secrets_key`` (and its previous keys), or None when it is not set."""
        if settings.secrets_key is None:
            return None
        previous = [k.get_secret_value() for k in settings.secrets_previous_keys]
        return cls(settings.secrets_key.get_secret_value(), previous)

    @classmethod
    def required(cls, settings: Settings, needed_by: str) -> SecretBox:
        box = cls.from_settings(settings)
        if box is None:
            raise SettingsError(
                KEY_SETTING,
                f"not set, and {needed_by} needs it: TOTP and webhook signing secrets are "
                "stored encrypted (make a key with `opsdeck secrets new-key`)",
            )
        return box

    def seal(self, secret: str) -> str:
        return PREFIX + self._current.encrypt(secret.encode()).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            raise UnreadableSecret("a stored secret is not sealed")
        try:
            return self._all.decrypt(stored.removeprefix(PREFIX).encode()).decode()
        except InvalidToken:
            raise UnreadableSecret(
                "a stored secret was sealed under a key that is neither secrets_key nor one "
                "of secrets_previous_keys"
            ) from None

    def resealed(self, stored: str) -> str | None:
        """``stored`` sealed under the current key, or None when it is already."""
        token = stored.removeprefix(PREFIX).encode()
        try:
            self._current.decrypt(token)
        except InvalidToken:
            return self.seal(self.open(stored))
        return None


def reseal_all(conn: psycopg.Connection[Any], box: SecretBox) -> int:
    """Write every stored secret sealed under the current key (after a key rotation), in
    ``conn``'s transaction; how many were rewritten. A value no configured key opens stops
    it (:class:`UnreadableSecret`) before anything is written."""
    changes: list[tuple[str, int, str]] = []
    for table, select in sql.SEALED.items():
        for row_id, stored in conn.execute(select).fetchall():
            fresh = box.resealed(str(stored))
            if fresh is not None:
                changes.append((table, int(row_id), fresh))
    for table, row_id, fresh in changes:
        conn.execute(sql.UPDATE[table], {"id": row_id, "sealed": fresh})
    return len(changes)
