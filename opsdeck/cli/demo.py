"""``opsdeck demo``: run the whole stack locally; embedded stores when no URLs are set."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from core.settings import Settings
from opsdeck.cli.errors import CommandError


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo", help="run the simulated platform and every opsdeck service locally"
    )
    parser.add_argument("--rate", type=float, default=20.0, help="payment attempts per second")
    parser.add_argument(
        "--backfill-days", type=float, default=30.0, help="history loaded on the first run"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from opsdeck.demo import Demo, DemoPlan
    from opsdeck.supervisor import ServiceFailed

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    plan = DemoPlan(
        settings=settings,
        data_dir=settings.data_dir,
        rate=args.rate,
        backfill_days=args.backfill_days,
    )
    try:
        return Demo(plan, lambda line: print(line, flush=True)).run(stop)
    except ServiceFailed as exc:
        raise CommandError(str(exc)) from exc
