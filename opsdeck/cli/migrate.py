"""``opsdeck migrate``: bring the platform contract and the ops schema to their heads, then
set up the owner and service roles (core.database_roles). Run it with an administrator's
DATABASE_URL (one that may create roles); the services then connect as the service role."""

from __future__ import annotations

import argparse
from typing import Any

from core.settings import Settings


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "migrate", help="create or upgrade the platform and ops schemas"
    )
    parser.add_argument(
        "--ops-only",
        action="store_true",
        help="leave the platform schema alone (its tables belong to a real platform)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from core.migrate import migrate
    from core.service_needs import require_service

    require_service(settings, "migrate")
    ops_url = settings.require("database_url", "opsdeck migrate")
    platform_url = settings.platform_url or ops_url
    roles = settings.database_roles
    for branch in migrate(ops_url, platform_url, ops_only=args.ops_only, roles=roles):
        print(f"migrated {branch} to head")
    print(f"database roles ready: owner {roles.owner}, service {roles.service}")
    return 0
