"""``opsdeck oncall sync``: PagerDuty's schedules and escalation policy from the on-call file
(when PagerDuty is the pager of record; opsdeck then only fans out to Slack and email)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.settings import Settings
from opsdeck.cli.errors import CommandError


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "oncall", help="sync the on-call file to PagerDuty"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    sync_parser = actions.add_parser("sync", help="create or update PagerDuty schedules + policy")
    sync_parser.add_argument("--file", type=Path, help="on-call file (default: the repository's)")
    sync_parser.set_defaults(handler=sync)


def sync(args: argparse.Namespace, settings: Settings) -> int:
    from api.incidents.oncall_sync import SyncError, rest_client
    from api.incidents.oncall_sync import sync as run_sync
    from core.oncall import ONCALL_FILE, load_oncall

    secret = settings.incidents.pagerduty_api_token
    if secret is None:
        raise CommandError(
            "set OPSDECK_INCIDENTS__PAGERDUTY_API_TOKEN to a PagerDuty REST API key", status=2
        )
    oncall = load_oncall(args.file or settings.incidents.oncall_file or ONCALL_FILE)
    try:
        with rest_client(
            settings.incidents.pagerduty_api_url,
            secret.get_secret_value(),
            timeout=settings.incidents.request_timeout_seconds,
        ) as client:
            report = run_sync(client, oncall, settings.incidents.repeat_rounds)
    except SyncError as exc:
        raise CommandError(str(exc)) from exc
    for line in report.created:
        print(f"created {line}")
    for line in report.updated:
        print(f"updated {line}")
    if settings.incidents.pager_of_record != "pagerduty":
        print(
            "note: incidents.pager_of_record is 'opsdeck'; set it to 'pagerduty' so opsdeck "
            "stops paging people PagerDuty now pages"
        )
    return 0
