"""``opsdeck check-config``: would these settings start a service? Answered without starting it.

A container platform (docker-compose, Kubernetes) learns that a service is misconfigured
only when it crash-loops; this command says so beforehand, for every problem at once. It
loads the settings as every command does (environment, ``*_FILE`` files, the secrets
directory, the YAML file: a bad value or an unreadable file stops it with one line), then
checks each service against :data:`core.service_needs.SERVICE_NEEDS`, the one table of what
each service needs (``require_service`` raises from it for a command at start). It
opens no connection: a reachable database is the service's health check, not its
configuration.

Exit status 0 with ``ok: <service>`` per service on stdout, or 2 with one line per problem
on stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.service_needs import SERVICE_NEEDS, service_problems
from core.settings import Settings


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "check-config",
        help="check the settings each service needs, without starting it or connecting",
    )
    parser.add_argument(
        "--service",
        action="append",
        choices=sorted(SERVICE_NEEDS),
        help="the command whose needs to check (repeatable; default: every service)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    services = args.service or sorted(SERVICE_NEEDS)
    failed = False
    for service in dict.fromkeys(services):
        problems = service_problems(settings, service)
        for problem in problems:
            print(f"opsdeck check-config: {service}: {problem}", file=sys.stderr)
        if problems:
            failed = True
        else:
            print(f"ok: {service}")
    return 2 if failed else 0
