"""``opsdeck worker``: the webhook gateway's worker (outbound delivery, inbound processing,
the platform-event tail) and its /metrics endpoint."""

from __future__ import annotations

import argparse
from typing import Any

from core.settings import Settings
from opsdeck.cli.errors import CommandError


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "worker", help="deliver outbound webhooks, process inbound PSP webhooks, serve /metrics"
    )
    parser.add_argument(
        "--concurrency", type=int, help="deliveries in flight (default: webhooks.concurrency)"
    )
    parser.add_argument("--metrics-host", help="listen address (default: webhooks.metrics_host)")
    parser.add_argument(
        "--metrics-port",
        type=int,
        help="/metrics port, 0 for none (default: webhooks.metrics_port)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.server import run as run_worker

    if args.concurrency is not None and not 1 <= args.concurrency <= 5000:
        raise CommandError("--concurrency takes 1 to 5000", 2)
    from core.service_needs import require_service

    require_service(settings, "worker")
    hooks = settings.webhooks
    port = hooks.metrics_port if args.metrics_port is None else args.metrics_port
    run_worker(settings, args.concurrency, args.metrics_host or hooks.metrics_host, port)
    return 0
