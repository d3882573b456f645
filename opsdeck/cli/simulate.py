"""``opsdeck simulate``: history (--backfill), live traffic (--live), anomalies (--inject)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.settings import Settings
from opsdeck.cli.errors import CommandError
from simulator.vocabulary import INJECTION_KINDS, SCALES

if TYPE_CHECKING:
    from simulator.copy_loader import LoadStats
    from simulator.psp_sender import PspWebhooks

REPORT_EVERY_SECONDS = 5.0
LIVE_RATE = 50.0  # payment attempts a second when --live is given no --rate
LIVE_TABLES = ("transactions", "bookings", "api_logs", "site_sessions", "psp_transactions")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "simulate", help="write realistic platform data: history, live traffic, anomalies"
    )
    parser.add_argument("--backfill", type=float, metavar="DAYS", help="load DAYS of history")
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--until", type=datetime.fromisoformat, help="end of the history (ISO time; default now)"
    )
    parser.add_argument("--live", action="store_true", help="write live traffic until stopped")
    parser.add_argument(
        "--rate",
        type=float,
        help="payment attempts per second: of the live stream (default "
        f"{LIVE_RATE:g}), and with --backfill the history's daily average (default: the "
        "scale's), so that history and live traffic have the same daily rate",
    )
    parser.add_argument("--writers", type=int, help="concurrent writer connections")
    parser.add_argument("--duration", type=float, help="stop live traffic after SECONDS")
    parser.add_argument("--flat", action="store_true", help="no daily/weekly seasonality")
    parser.add_argument(
        "--speedup",
        type=float,
        default=1.0,
        help="follow-ups (refunds, resolutions ...) N times sooner",
    )
    parser.add_argument("--inject", action="append", choices=INJECTION_KINDS, default=[])
    parser.add_argument("--inject-minutes", type=float, default=10.0)
    parser.add_argument(
        "--end",
        action="append",
        choices=INJECTION_KINDS,
        default=[],
        help="end a running stream anomaly now, as when the failing service comes back",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.backfill is None and not args.live and not args.inject and not args.end:
        raise CommandError(
            "say what to simulate: --backfill DAYS, --live, --inject KIND and/or --end KIND", 2
        )
    if args.backfill is not None and args.backfill <= 0:
        raise CommandError("--backfill takes a positive number of days", 2)
    if args.rate is not None and args.rate <= 0:
        raise CommandError("--rate must be positive", 2)
    from core.service_needs import require_service

    require_service(settings, "simulate")
    ops_url = settings.require("database_url", "opsdeck simulate")
    platform_url = settings.platform_url or ops_url
    _end_all(args.end, ops_url)
    if args.backfill is not None:
        _backfill(args, settings, platform_url)
    if args.live:
        _live(args, settings, platform_url, ops_url)
    elif args.inject:
        _inject_all(args, settings, platform_url, ops_url)
    return 0


def _backfill(args: argparse.Namespace, settings: Settings, url: str) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from simulator.backfill import BackfillPlan, BackfillRefused, run_backfill, scale_at_rate

    until = args.until or datetime.now(UTC).replace(microsecond=0)
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    scale = SCALES[args.scale]
    if args.rate is not None:
        scale = scale_at_rate(scale, args.rate)
    plan = BackfillPlan(days=args.backfill, scale=scale, seed=args.seed, until=until)
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description:>16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    started = time.perf_counter()
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        tasks: dict[str, Any] = {}
        expected = plan.expected_rows()

        def advance(table: str, rows: int) -> None:
            if table not in tasks:
                tasks[table] = progress.add_task(table, total=expected.get(table))
            progress.advance(tasks[table], rows)

        try:
            stats = run_backfill(url, plan, settings.simulator, advance)
        except BackfillRefused as exc:
            raise CommandError(str(exc)) from exc
    print_backfill_report(stats, time.perf_counter() - started)


def print_backfill_report(stats: list[LoadStats], total_seconds: float) -> None:
    print(f"{'table':<18}{'rows':>12}{'copy s':>9}{'rows/s':>12}")
    for s in stats:
        rate = s.rows / s.copy_seconds if s.copy_seconds else 0.0
        print(f"{s.table:<18}{s.rows:>12,}{s.copy_seconds:>9.2f}{rate:>12,.0f}")
    rows = sum(s.rows for s in stats)
    index_seconds = max((s.index_seconds for s in stats), default=0.0)
    print(f"indexes rebuilt after the load in {index_seconds:.1f} s")
    print(f"total {rows:,} rows in {total_seconds:.1f} s ({rows / total_seconds:,.0f} rows/s)")


def _inject_all(
    args: argparse.Namespace, settings: Settings, platform_url: str, ops_url: str
) -> None:
    from core.sealed_secrets import SecretBox
    from simulator.inject import STREAM_KINDS, InjectionError, inject

    box = SecretBox.from_settings(settings)
    for kind in args.inject:
        try:
            done = inject(
                kind,
                platform_url,
                ops_url,
                settings.thresholds,
                args.inject_minutes,
                args.seed,
                box,
            )
        except InjectionError as exc:
            raise CommandError(f"--inject {kind}: {exc}") from exc
        print(f"injected {kind}: {done}")
        if kind in STREAM_KINDS and not args.live:
            print(
                f"  ({kind} acts through the live stream: it reaches a running "
                "'opsdeck simulate --live' or 'opsdeck demo')"
            )


def _end_all(kinds: list[str], ops_url: str) -> None:
    from simulator.inject import InjectionError, end

    for kind in kinds:
        try:
            ended = end(kind, ops_url)
        except InjectionError as exc:
            raise CommandError(f"--end {kind}: {exc}", 2) from exc
        print(f"ended {kind}" if ended else f"{kind} was not running")


def _live(args: argparse.Namespace, settings: Settings, platform_url: str, ops_url: str) -> None:
    from simulator.live import LiveOptions, LiveSimulator

    sim_settings = settings.simulator
    options = LiveOptions(
        rate=args.rate or LIVE_RATE,
        writers=args.writers or sim_settings.writers,
        seed=args.seed,
        seasonal=not args.flat,
        speedup=args.speedup,
        test_share=sim_settings.test_mode_share,
        psp_missing_share=sim_settings.psp_missing_share,
        psp_different_share=sim_settings.psp_different_share,
        psp_delay_seconds=sim_settings.psp_delay_seconds,
        psp_webhooks=_psp_webhooks(settings),
    )
    simulator = LiveSimulator(platform_url, ops_url, options)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.duration:
        threading.Timer(args.duration, stop.set).start()
    if args.inject:
        _inject_all(args, settings, platform_url, ops_url)
    print(
        f"live traffic: {options.rate:g} payment attempts/s from {options.writers} writers "
        "(Ctrl-C stops)",
        flush=True,
    )
    reporter = _LiveReporter()
    totals = simulator.run(stop, reporter)
    elapsed = max(reporter.elapsed, 1e-9)
    rates = ", ".join(f"{t} {totals[t] / elapsed:,.0f}/s" for t in LIVE_TABLES)
    print(
        f"live traffic stopped after {elapsed:.0f} s: {rates}; {simulator.stats.commits:,} commits",
        flush=True,
    )


def _psp_webhooks(settings: Settings) -> PspWebhooks | None:
    """Where and how to send the PSPs' signed webhooks, when the settings ask for it."""
    from simulator.psp_sender import PspWebhooks

    sim = settings.simulator
    if sim.psp_webhook_url is None:
        return None
    if sim.stripe_webhook_secret is None or sim.paystack_secret_key is None:
        raise CommandError(
            "simulator.psp_webhook_url needs simulator.stripe_webhook_secret and "
            "simulator.paystack_secret_key",
            2,
        )
    return PspWebhooks(
        sim.psp_webhook_url,
        sim.stripe_webhook_secret.get_secret_value(),
        sim.paystack_secret_key.get_secret_value(),
        sim.psp_webhook_duplicate_share,
        sim.psp_webhook_bad_signature_share,
        sim.psp_webhook_reorder_share,
    )


class _LiveReporter:
    """Prints the rates of the last interval every few seconds."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self._last_print = 0.0
        self._last_counts: Counter[str] = Counter()

    def __call__(self, counts: Counter[str], elapsed: float) -> None:
        self.elapsed = elapsed
        interval = elapsed - self._last_print
        if interval < REPORT_EVERY_SECONDS:
            return
        delta = counts - self._last_counts
        rates = "  ".join(f"{t} {delta[t] / interval:,.0f}/s" for t in LIVE_TABLES)
        print(f"[{elapsed:5.0f}s] {rates}", file=sys.stdout, flush=True)
        self._last_print, self._last_counts = elapsed, counts
