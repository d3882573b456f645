"""``opsdeck slack-users``: which opsdeck user a Slack user's button clicks act as (Slack
team id + user id, never the display name). An unmapped Slack user's clicks are refused."""

from __future__ import annotations

import argparse
from typing import Any

from core.settings import Settings
from opsdeck.cli.admin import admin_session


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "slack-users", help="map Slack users to opsdeck users (for Slack buttons)"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    mapping = actions.add_parser("map", help="let a Slack user's clicks act as an opsdeck user")
    unmapping = actions.add_parser("unmap", help="refuse a Slack user's clicks from now on")
    for action in (mapping, unmapping):
        action.add_argument("team_id", metavar="TEAM_ID", help="Slack team id (T0123ABCD)")
        action.add_argument("slack_user_id", metavar="SLACK_USER_ID", help="Slack user id")
    mapping.add_argument("username", metavar="USERNAME", help="the opsdeck user")
    actions.add_parser("list", help="list the mappings")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from api import slack_users

    with admin_session(settings, f"opsdeck slack-users {args.action}") as admin:
        who = f"{args.team_id}/{args.slack_user_id}" if args.action != "list" else ""
        if args.action == "map":
            slack_users.map_user(admin, args.team_id, args.slack_user_id, args.username)
            print(f"Slack user {who} now acts as {args.username}")
        elif args.action == "unmap":
            slack_users.unmap_user(admin, args.team_id, args.slack_user_id)
            print(f"Slack user {who} is no longer mapped; their clicks are refused")
        else:
            print(f"{'team':<14}{'slack user':<14}{'user':<24}{'role':<13}disabled")
            for team, slack_user, name, role, disabled, _, _ in slack_users.list_users(admin.conn):
                print(f"{team:<14}{slack_user:<14}{name:<24}{role:<13}{disabled or ''}")
    return 0
