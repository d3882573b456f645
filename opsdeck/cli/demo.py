"""``opsdeck demo``: run the whole stack locally; embedded stores when no URLs are set."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from core.settings import Settings
from opsdeck.cli.errors import CommandError

# Payment attempts a second on average over a day (seasonality makes the afternoon
# busier): about 21,600 a day, twice the small scale's, so 30 days of history at that rate
# load in about a minute on 2 cores, and the dashboards still move.
DEMO_RATE = 0.25


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo", help="run the simulated platform and every opsdeck service locally"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEMO_RATE,
        help="payment attempts per second, of the live traffic and of the history loaded on "
        "the first run (the same daily rate, so normal traffic raises no alert)",
    )
    parser.add_argument(
        "--backfill-days", type=float, default=30.0, help="history loaded on the first run"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from core import running_demo
    from opsdeck.demo import Demo, DemoPlan
    from opsdeck.supervisor import ServiceFailed

    running = running_demo.running_pid(settings.data_dir)
    if running is not None:
        raise CommandError(
            f"a demo is running from {settings.data_dir} already (process {running}): "
            "stop it first, or start this one with another OPSDECK_DATA_DIR"
        )
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
