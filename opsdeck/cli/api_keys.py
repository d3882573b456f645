"""``opsdeck api-keys``: keys for automation, each acting for a user. The key is shown once;
only its hash and prefix are stored."""

from __future__ import annotations

import argparse
from typing import Any

import psycopg

from api.rbac import PERMISSIONS, ROLES, Role
from core.settings import Settings
from opsdeck.cli.admin import admin_session


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("api-keys", help="manage API keys")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key of a user (printed once)")
    create.add_argument("--user", required=True, help="the user the key acts for")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--role",
        required=True,
        choices=[r.value for r in ROLES],
        help="at most the user's role",
    )
    create.add_argument(
        "--scope",
        action="append",
        default=[],
        choices=sorted(PERMISSIONS),
        help="a permission of the role (repeatable; default: all of the role's)",
    )
    listing = actions.add_parser("list", help="list keys by user (prefixes, never secrets)")
    listing.add_argument("--user", help="only this user's keys")
    for name, text in (("revoke", "stop a key working"), ("rotate", "replace a key by a new one")):
        actions.add_parser(name, help=text).add_argument("key", help="id or prefix")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from api import accounts

    with admin_session(settings, f"opsdeck api-keys {args.action}") as admin:
        if args.action == "create":
            token, prefix = accounts.create_key(
                admin, args.user, args.name, Role(args.role), args.scope
            )
            made = f"created key {prefix} for {args.user} ({args.role})"
            print(f"{made}; store it now, it is not shown again:")
            print(token)
        elif args.action == "list":
            _list(admin.conn, args.user)
        elif args.action == "revoke":
            row = accounts.revoke_key(admin, args.key)
            admin.conn.commit()
            print(f"revoked key {row[1]} ({row[2]})")
        else:
            token, prefix = accounts.rotate_key(admin, args.key)
            print(f"rotated: the old key no longer works; new key {prefix}, shown once:")
            print(token)
    return 0


def _list(conn: psycopg.Connection[Any], username: str | None) -> None:
    from api import accounts

    head = f"{'user':<24}{'id':<6}{'prefix':<14}{'name':<20}{'role':<13}{'last used':<27}"
    print(head + "revoked")
    for row in accounts.list_keys(conn, username):
        key_id, prefix, user, name, role, _, _, _, last, revoked = row
        used = str(last or "-")
        line = f"{user:<24}{key_id:<6}{prefix:<14}{name:<20}{role:<13}{used:<27}"
        print(line + str(revoked or ""))
