"""What ``opsdeck users`` and ``opsdeck api-keys`` share: the acting admin (audited as
``cli:<login>``), the connection, the session store, and reading a password."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from core.application_names import CLI
from core.database import connect
from core.sealed_secrets import SecretBox
from core.settings import Settings
from opsdeck.cli.errors import CommandError

if TYPE_CHECKING:
    from api.accounts import Admin


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except OSError:
        return "cli:unknown"


@contextmanager
def admin_session(settings: Settings, command: str) -> Iterator[Admin]:
    import redis

    from api.accounts import AccountError, Admin

    url = settings.require("database_url", command)
    sessions = redis.Redis.from_url(settings.redis_url) if settings.redis_url else None
    try:
        with connect(url, application_name=CLI) as conn:
            yield Admin(actor(), conn, sessions, SecretBox.from_settings(settings))
    except AccountError as exc:
        raise CommandError(str(exc), status=1) from None
    finally:
        if sessions is not None:
            sessions.close()


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise CommandError("the passwords differ", status=2)
    return first
