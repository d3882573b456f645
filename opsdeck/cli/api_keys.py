"""``opsdeck api-keys``: keys for automation. The key is shown once; only its hash and
prefix are stored."""

from __future__ import annotations

import argparse
from typing import Any

from api.rbac import PERMISSIONS, ROLES, Role
from core.settings import Settings
from opsdeck.cli.admin import admin_session


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("api-keys", help="manage API keys")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key (printed once)")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=[r.value for r in ROLES])
    create.add_argument(
        "--scope",
        action="append",
        default=[],
        choices=sorted(PERMISSIONS),
        help="a permission of the role (repeatable; default: all of the role's)",
    )
    actions.add_parser("list", help="list keys (prefixes, never secrets)")
    for name, text in (("revoke", "stop a key working"), ("rotate", "replace a key by a new one")):
        actions.add_parser(name, help=text).add_argument("key", help="id or prefix")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from api import accounts

    with admin_session(settings, f"opsdeck api-keys {args.action}") as admin:
        if args.action == "create":
            token, prefix = accounts.create_key(admin, args.name, Role(args.role), args.scope)
            print(f"created key {prefix} ({args.role}); store it now, it is not shown again:")
            print(token)
        elif args.action == "list":
            print(f"{'id':<6}{'prefix':<14}{'name':<20}{'role':<13}{'last used':<27}revoked")
            for row in accounts.list_keys(admin.conn):
                key_id, prefix, name, role, _, _, _, last, revoked = row
                used = str(last or "-")
                print(f"{key_id:<6}{prefix:<14}{name:<20}{role:<13}{used:<27}{revoked or ''}")
        elif args.action == "revoke":
            row = accounts.revoke_key(admin, args.key)
            admin.conn.commit()
            print(f"revoked key {row[1]} ({row[2]})")
        else:
            token, prefix = accounts.rotate_key(admin, args.key)
            print(f"rotated: the old key no longer works; new key {prefix}, shown once:")
            print(token)
    return 0
