"""``opsdeck simulate --inject KIND``: the anomaly behind each alert.

Each injection writes exactly what its alert needs, sized from the current data and the
thresholds in settings (twice the threshold, so the alert fires without waiting for luck).
One-shot kinds write rows directly; stream kinds (``api-5xx-burst``, ``service-down``,
``webhook-handler-down``, ``calendar-sync-down``, ``stuck-bookings``, ``checks-stop``,
``payment-failure-spike``, ``psp-outage``) also leave a timed flag in
``ops.simulator_anomalies`` that every running live stream (``opsdeck simulate --live``,
``opsdeck demo``) obeys until it expires (:data:`simulator.live_model.STREAM_FLAGS`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from core.application_names import SIMULATOR_INJECT
from core.database import connect
from core.sealed_secrets import SecretBox
from core.settings import Thresholds
from simulator import vocabulary
from simulator.live_model import STREAM_FLAGS, ticket_row
from simulator.queries import live as q
from simulator.webhook_backlog import inject_backlog

APPLICATION = SIMULATOR_INJECT
MARGIN = 2.0  # inject twice what the threshold needs


@dataclass(frozen=True)
class InjectionContext:
    platform: psycopg.Connection[Any]
    ops: psycopg.Connection[Any]
    thresholds: Thresholds
    minutes: float
    rng: random.Random
    # Seals the signing secret of an endpoint an injection creates (core.sealed_secrets).
    box: SecretBox | None = None


Injection = Callable[[InjectionContext], str]


def _count(conn: psycopg.Connection[Any], sql: str, *params: object) -> int:
    row = conn.execute(sql, params or None).fetchone()
    return int(row[0]) if row else 0


def _flag(ctx: InjectionContext, kind: str) -> None:
    ctx.ops.execute(q.SET_ANOMALY, (kind, ctx.minutes * 60))


def double_booking(ctx: InjectionContext) -> str:
    """Confirm bookings on slots that are already taken, above the 24 h conflict rate."""
    confirmed = _count(ctx.platform, q.CONFIRMED_24H)
    rate = MARGIN * ctx.thresholds.booking_conflict_rate
    needed = math.ceil(rate * confirmed / (1 - rate)) + 1
    rows = ctx.platform.execute(q.INSERT_OVERLAPPING_BOOKINGS, (needed,)).fetchall()
    if len(rows) < needed:
        raise InjectionError(
            f"only {len(rows)} future confirmed bookings to overlap; need {needed}"
        )
    return f"{len(rows)} double bookings confirmed against {confirmed} confirmations in 24 h"


def psp_mismatch(ctx: InjectionContext) -> str:
    """Halve the PSP's amount for the biggest recent charges until 24 h drift passes the
    suspend-payouts threshold."""
    internal, delta = (
        int(v) for v in ctx.platform.execute(q.RECONCILIATION_24H).fetchone() or (0, 0)
    )
    target = MARGIN * ctx.thresholds.reconciliation_drift_suspend_payouts * internal
    skewed = 0
    while delta < target:
        batch = ctx.platform.execute(q.SKEW_PSP_AMOUNTS, (100,)).fetchall()
        if not batch:
            raise InjectionError("no matching PSP rows left in the last 24 h to skew")
        delta += sum(int(r[0]) for r in batch)  # each halved row adds half its amount
        skewed += len(batch)
    drift = delta / internal if internal else 0.0
    return f"{skewed} PSP amounts halved; 24 h drift now {drift:.2%}"


def chargeback_spike(ctx: InjectionContext) -> str:
    """Open chargebacks on recent live charges above the 30-day chargeback rate."""
    captured = _count(ctx.platform, q.CAPTURED_30D)
    existing = _count(ctx.platform, q.CHARGEBACKS_30D)
    needed = max(1, math.ceil(MARGIN * ctx.thresholds.chargeback_rate * captured) - existing)
    victims = ctx.platform.execute(q.RECENT_CAPTURED, (needed,)).fetchall()
    if len(victims) < needed:
        raise InjectionError(f"only {len(victims)} captured live charges in 24 h; need {needed}")
    reasons = [ctx.rng.choice(vocabulary.CHARGEBACK_REASONS) for _ in victims]
    ctx.platform.execute(
        q.INSERT_CHARGEBACKS, ([v[0] for v in victims], [v[1] for v in victims], reasons)
    )
    return f"{needed} chargebacks against {captured} captured charges in 30 d"


def stuck_bookings(ctx: InjectionContext) -> str:
    """Bookings pending past the threshold age, and booking processing paused meanwhile."""
    count = ctx.thresholds.unprocessed_bookings + 5
    _flag(ctx, "stuck-bookings")  # first: the stream stops processing, then they pile up
    resources = ctx.platform.execute(
        "SELECT id, location_id, staff_id FROM platform.resources ORDER BY random() LIMIT %s",
        (count,),
    ).fetchall()
    if not resources:
        raise InjectionError("the platform has no resources")
    picks = [resources[i % len(resources)] for i in range(count)]
    age = ctx.thresholds.unprocessed_after_seconds + 60
    ctx.platform.execute(
        q.INSERT_STUCK_BOOKINGS,
        (
            age,
            [r[0] for r in picks],
            [1] * count,
            [r[1] for r in picks],
            [r[2] for r in picks],
            ["tomorrow"] * count,
            [5000] * count,
            ["USD"] * count,
        ),
    )
    return (
        f"{count} bookings pending for {age / 60:.0f} min; "
        f"processing paused for {ctx.minutes:g} min"
    )


def slow_tickets(ctx: InjectionContext) -> str:
    """Resolve tickets that waited days, so average time to resolve passes the SLA in both
    the last hour and the last day."""
    slow = 4 * 86_400.0
    goal = MARGIN * ctx.thresholds.support_time_to_resolve_seconds
    needed = 1
    for window in (3_600, 86_400):
        count, total = ctx.platform.execute(q.RESOLUTIONS, (window,)).fetchone() or (0, 0)
        needed = max(needed, math.ceil((goal * int(count) - float(total)) / (slow - goal)) + 1)
    ids = [
        int(r[0]) for r in ctx.platform.execute(q.NEXT_IDS, ("platform.support_tickets", needed))
    ]
    rows = [ticket_row(ctx.rng, 1, slow) for _ in ids]
    ctx.platform.execute(q.INSERT_TICKETS, [ids, *[list(c) for c in zip(*rows, strict=True)]])
    ctx.platform.execute(q.RESOLVE_TICKETS, (ids,))
    return f"{needed} tickets resolved after {slow / 86_400:.0f} days"


def webhook_backlog(ctx: InjectionContext) -> str:
    """A partner endpoint that starts failing, with a queue above the retry-queue threshold."""
    needed = int(MARGIN * ctx.thresholds.webhook_queue_depth) + 1
    if ctx.box is None:
        raise InjectionError(
            "secrets_key is not set: the failing endpoint's signing secret is stored sealed "
            "with it (OPSDECK_SECRETS_KEY, as the worker has it)"
        )
    endpoint_id = inject_backlog(ctx.ops, needed, ctx.box)
    return (
        f"{needed} partner.notice webhooks queued for failing endpoint {endpoint_id} "
        f"(its host never resolves); the queue stays above "
        f"{ctx.thresholds.webhook_queue_depth} until it is disabled or the retries run out"
    )


def api_5xx_burst(ctx: InjectionContext) -> str:
    _flag(ctx, "api-5xx-burst")
    return f"live streams answer 6% of API requests with 5xx for {ctx.minutes:g} min"


def service_down(ctx: InjectionContext) -> str:
    _flag(ctx, "service-down")
    return f"booking_api health checks fail for {ctx.minutes:g} min"


def webhook_handler_down(ctx: InjectionContext) -> str:
    _flag(ctx, "webhook-handler-down")
    return f"payment_webhook_handler health checks fail for {ctx.minutes:g} min"


def calendar_sync_down(ctx: InjectionContext) -> str:
    _flag(ctx, "calendar-sync-down")
    return f"calendar_sync health checks fail for {ctx.minutes:g} min"


def payment_failure_spike(ctx: InjectionContext) -> str:
    """First payment attempts fail far more often, with every code, at both PSPs."""
    _flag(ctx, "payment-failure-spike")
    return (
        f"live streams fail {vocabulary.SPIKE_ATTEMPT_FAILURE_SHARE:.0%} of first payment "
        f"attempts (the usual mix of codes, both PSPs) for {ctx.minutes:g} min"
    )


def psp_outage(ctx: InjectionContext) -> str:
    """One PSP fails every attempt, as when it is down; the other keeps working."""
    _flag(ctx, "psp-outage")
    return (
        f"every live stream attempt at {vocabulary.OUTAGE_PSP} fails with "
        f"{vocabulary.OUTAGE_FAILURE_CODE} for {ctx.minutes:g} min"
    )


def checks_stop(ctx: InjectionContext) -> str:
    """The health checker dies, as it does with the booking API's host: no check row for
    any service, so the last checks age past the staleness threshold (failed or not)."""
    _flag(ctx, "checks-stop")
    return (
        f"no health checks for {ctx.minutes:g} min; services read down once their last "
        f"check is {ctx.thresholds.service_check_stale_seconds:g} s old"
    )


INJECTIONS: dict[str, Injection] = {
    "double-booking": double_booking,
    "psp-mismatch": psp_mismatch,
    "api-5xx-burst": api_5xx_burst,
    "service-down": service_down,
    "chargeback-spike": chargeback_spike,
    "stuck-bookings": stuck_bookings,
    "slow-tickets": slow_tickets,
    "webhook-backlog": webhook_backlog,
    "checks-stop": checks_stop,
    "webhook-handler-down": webhook_handler_down,
    "calendar-sync-down": calendar_sync_down,
    "payment-failure-spike": payment_failure_spike,
    "psp-outage": psp_outage,
}
STREAM_KINDS = frozenset(STREAM_FLAGS)
assert set(INJECTIONS) == set(vocabulary.INJECTION_KINDS)


class InjectionError(Exception):
    """The data an injection needs is not there (e.g. an empty platform)."""


def inject(
    kind: str,
    platform_url: str,
    ops_url: str,
    thresholds: Thresholds,
    minutes: float,
    seed: int,
    box: SecretBox | None = None,
) -> str:
    """Run one injection in its own transactions; return what it did."""
    if kind not in INJECTIONS:
        raise InjectionError(f"unknown kind {kind!r}; choose from {', '.join(INJECTIONS)}")
    with (
        connect(platform_url, application_name=APPLICATION) as platform,
        connect(ops_url, application_name=APPLICATION) as ops,
    ):
        ctx = InjectionContext(platform, ops, thresholds, minutes, random.Random(seed), box)
        done = INJECTIONS[kind](ctx)
        platform.commit()
        ops.commit()
    return done


def end(kind: str, ops_url: str) -> bool:
    """End a stream anomaly before its time, as when the failing service comes back: every
    running live stream is normal again within a second. Whether it was still running."""
    if kind not in STREAM_KINDS:
        raise InjectionError(
            f"{kind!r} is not a stream anomaly; those are {', '.join(sorted(STREAM_KINDS))}"
        )
    with connect(ops_url, application_name=APPLICATION) as ops:
        ended = ops.execute(q.END_ANOMALY, (kind,)).rowcount
        ops.commit()
    return ended > 0
