"""``opsdeck users``: local accounts of the drilldown API (argon2 passwords, TOTP)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from api.rbac import ROLES, Role
from core.settings import Settings
from opsdeck.cli.admin import admin_session, read_password

if TYPE_CHECKING:
    from api.accounts import SessionsEnded


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("users", help="manage sign-in accounts")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="create a user (a TOTP device now with --totp, and always for super admins; "
        "otherwise enrolled at the first sign-in)",
    )
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[r.value for r in ROLES])
    add.add_argument(
        "--totp",
        action="store_true",
        help="issue the TOTP device now (secret and QR code printed here) instead of at the "
        "first sign-in",
    )
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    actions.add_parser("list", help="list users")
    role = actions.add_parser("set-role", help="change a role (ends the user's sessions)")
    role.add_argument("username")
    role.add_argument("role", choices=[r.value for r in ROLES])
    for name, text in (
        ("disable", "stop a user signing in (ends their sessions)"),
        ("enable", "let a disabled user sign in again"),
        ("reset-totp", "issue a new TOTP secret (ends the user's sessions)"),
        ("revoke-sessions", "end every session of a user"),
    ):
        actions.add_parser(name, help=text).add_argument("username")
    password = actions.add_parser("reset-password", help="set a new password (ends sessions)")
    password.add_argument("username")
    password.add_argument("--password-stdin", action="store_true")
    parser.set_defaults(handler=run)


def _show_totp(username: str, secret: str | None) -> None:
    from api.auth.totp import provisioning_qr, provisioning_uri

    if secret:
        print(f"TOTP secret (add it to an authenticator app now; it is not shown again): {secret}")
        print(f"otpauth URI: {provisioning_uri(secret, username)}")
        print("or scan it:", flush=True)
        provisioning_qr(secret, username).terminal(out=sys.stdout, compact=True)


def _ended(username: str, ended: SessionsEnded) -> str:
    """What ending a user's sessions did, as it happened: refused by the database always,
    deleted from Redis only when Redis was there."""
    refused = (
        f"ended the sessions of {username} (session version {ended.version}: every API "
        "process refuses older sessions within api.session_recheck_seconds)"
    )
    if ended.deleted is not None:
        return f"{refused}; deleted {ended.deleted} session(s) from Redis"
    return f"{refused}; none deleted from Redis ({ended.redis_problem}): they expire there unused"


def run(args: argparse.Namespace, settings: Settings) -> int:
    from api import accounts

    with admin_session(settings, f"opsdeck users {args.action}") as admin:
        if args.action == "add":
            role = Role(args.role)
            password = read_password(args.password_stdin)
            device = args.totp or role == Role.SUPER_ADMIN
            secret = accounts.add_user(admin, args.username, role, password, device)
            print(f"created {args.username} ({args.role})")
            _show_totp(args.username, secret)
            if secret is None:
                print("two-factor: enrolled at the first sign-in, from a QR code the page shows")
        elif args.action == "list":
            print(f"{'user':<24}{'role':<13}{'2fa':<5}{'last sign-in':<27}disabled")
            for _, name, role, two_factor, _, last, disabled in accounts.list_users(admin.conn):
                factor, seen = "yes" if two_factor else "no", str(last or "-")
                print(f"{name:<24}{role:<13}{factor:<5}{seen:<27}{disabled or ''}")
        elif args.action == "set-role":
            secret, ended = accounts.set_role(admin, args.username, Role(args.role))
            _show_totp(args.username, secret)
            print(f"{args.username} is now {args.role}; {_ended(args.username, ended)}")
        elif args.action in ("disable", "enable"):
            ended = accounts.set_disabled(admin, args.username, args.action == "disable")
            print(f"{args.username} {args.action}d; {_ended(args.username, ended)}")
        elif args.action == "reset-password":
            password = read_password(args.password_stdin)
            ended = accounts.reset_password(admin, args.username, password)
            print(f"password of {args.username} changed; {_ended(args.username, ended)}")
        elif args.action == "reset-totp":
            secret, ended = accounts.reset_totp(admin, args.username)
            _show_totp(args.username, secret)
            print(_ended(args.username, ended))
        else:
            print(_ended(args.username, accounts.revoke_sessions(admin, args.username)))
    return 0
