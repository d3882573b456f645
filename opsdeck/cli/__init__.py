"""The ``opsdeck`` command: one entry point, a subcommand per job.

Every subcommand module exposes ``register(subparsers)``; its handler receives the parsed
arguments and validated settings. Expected failures become one line on stderr: status 2
for bad settings or arguments, 1 for everything else that went wrong outside our control.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import psycopg

from core import build_info
from core.audit import use_key
from core.log_format import FORMATS, configure_logging
from core.settings import SettingsError, load_settings
from opsdeck.cli import (
    api,
    api_keys,
    audit,
    check_config,
    dashboards,
    demo,
    exporter,
    migrate,
    oncall,
    secrets,
    simulate,
    slack_users,
    users,
    worker,
)
from opsdeck.cli.errors import CommandError

COMMANDS = (
    migrate,
    simulate,
    exporter,
    worker,
    demo,
    dashboards,
    api,
    users,
    api_keys,
    slack_users,
    audit,
    secrets,
    oncall,
    check_config,
)


# Processes that run until stopped log JSON for a log pipeline; one-shot commands log text.
LONG_RUNNING = frozenset({"exporter", "worker", "api"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opsdeck", description="Ops command center for a bookings + payments platform."
    )
    parser.add_argument("--version", action="version", version=build_info.describe())
    parser.add_argument("--config", type=Path, help="YAML settings file (or OPSDECK_CONFIG)")
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        help="log lines as JSON objects or text (default: json for exporter, worker and api; "
        "text for the other commands)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        use_key(settings.audit.chain_key)  # every command links and verifies with it
        log_format = args.log_format or ("json" if args.command in LONG_RUNNING else "text")
        configure_logging(args.command, log_format, settings.log_level)
        for chatty in ("alembic", "httpx", "httpcore"):
            logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.root.level))
        return int(args.handler(args, settings) or 0)
    except SettingsError as exc:
        print(f"opsdeck: {exc}", file=sys.stderr)
        return 2
    except CommandError as exc:
        print(f"opsdeck {args.command}: {exc}", file=sys.stderr)
        return exc.status
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"opsdeck {args.command}: database unavailable: {first_line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
