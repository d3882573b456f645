"""The demo's sign-in: a super admin made on the demo's first run, whose password is printed
once. It has no two-factor device yet: the API's sign-in enrols one the first time it is
used (a QR code for an authenticator app), as for any new account."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from api.accounts import Admin, add_user
from api.queries import access as sql
from api.rbac import Role
from core.application_names import DEMO
from core.database import connect
from core.sealed_secrets import SecretBox
from opsdeck.cli.admin import actor

DEMO_USER = "admin"
PASSWORD_BYTES = 15  # 20 URL-safe characters


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str | None  # only on the run that made the account


def ensure_account(url: str, box: SecretBox) -> DemoAccount:
    """The demo's super admin, made now unless it exists (audited as whoever runs the
    demo; the audit chain's key must be in use)."""
    with connect(url, application_name=DEMO) as conn:
        if conn.execute(sql.USER_BY_NAME, {"username": DEMO_USER}).fetchone() is not None:
            return DemoAccount(DEMO_USER, None)
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        add_user(Admin(actor(), conn, None, box), DEMO_USER, Role.SUPER_ADMIN, password, False)
    return DemoAccount(DEMO_USER, password)


def sign_in_lines(account: DemoAccount, api_url: str) -> list[str]:
    """What to tell the person who started the demo about signing in."""
    if account.password is not None:
        password = f"{account.password}   (shown only now)"
    else:
        password = (
            f"set on the first run; for a new one: opsdeck users reset-password {account.username}"
        )
    return [
        "sign in to the API:",
        f"  {'open':<13} {api_url}/login",
        f"  {'user':<13} {account.username}",
        f"  {'password':<13} {password}",
        f"  {'two-factor':<13} enrolled at the first sign-in: scan the QR code it shows "
        "with an authenticator app",
    ]
