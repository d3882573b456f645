"""``opsdeck exporter``: the incremental KPI engine and its /metrics endpoint."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from core.settings import Settings


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "exporter", help="fold platform events into KPIs and serve them on /metrics"
    )
    parser.add_argument("--host", help="listen address (default from settings: exporter.host)")
    parser.add_argument(
        "--port", type=int, help="listen port (default from settings: exporter.port)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from core.service_needs import require_service
    from exporters.server import run_exporter

    require_service(settings, "exporter")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run_exporter(
        settings, args.host or settings.exporter.host, args.port or settings.exporter.port, stop
    )
    return 0
