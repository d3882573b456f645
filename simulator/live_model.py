"""What the live platform does next: new rows, and the follow-ups each one schedules.

Pure functions of a per-writer ``random.Random``; the writers turn them into SQL. Rows are
column lists (one list per column), the shape the ``unnest`` inserts take.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from simulator import vocabulary
from simulator.world import CURRENCY_FACTOR

if TYPE_CHECKING:
    from simulator.occupancy import Slot

log = logging.getLogger(__name__)
Columns = list[list[object]]


def weighted(rng: random.Random, table: Sequence[tuple[object, float]]) -> object:
    return rng.choices([row[0] for row in table], weights=[row[1] for row in table])[0]


def columns(count: int) -> Columns:
    return [[] for _ in range(count)]


@dataclass
class Intent:
    """A payment intent being attempted; retries keep its id and card."""

    intent_id: str
    customer_id: int
    amount: int
    currency: str
    livemode: bool
    booking_id: int | None
    card: tuple[str, str, str]
    attempt: int = 1


@dataclass(frozen=True)
class Attempt:
    intent: Intent
    status: str  # 'authorized' or 'failed'
    failure_code: str | None
    psp: str
    psp_id: str
    fraud_score: int | None


@dataclass(frozen=True)
class PaymentTrouble:
    """How injected anomalies change payment attempts at one moment."""

    first_attempt_failure_share: float = vocabulary.ATTEMPT_FAILURE_SHARE
    psp_down: str | None = None  # every attempt at this PSP fails


@dataclass
class Anomalies:
    """Injected trouble that changes the live stream until its deadline (monotonic time)."""

    api_5xx_until: float = 0.0
    service_down_until: float = 0.0  # the booking API's checks fail
    webhook_handler_down_until: float = 0.0
    calendar_sync_down_until: float = 0.0
    processing_stuck_until: float = 0.0
    checks_stopped_until: float = 0.0  # the health checker is dead: no check rows at all
    payment_failures_until: float = 0.0
    psp_outage_until: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)  # unknown kinds, already reported

    def refresh(self, active: Mapping[str, float], now: float) -> None:
        """Take the stream flags of ``ops.simulator_anomalies``: kind → seconds left.

        Every stream kind is read (one no longer listed ends now). A kind this stream does
        not know (injected by a newer opsdeck) is reported once, never silently unobeyed;
        the stream keeps running on the kinds it knows."""
        for kind in sorted(set(active) - set(STREAM_FLAGS) - self.refused):
            log.warning("live stream cannot obey injected anomaly %r: unknown kind", kind)
            self.refused.add(kind)
        for kind, attribute in STREAM_FLAGS.items():
            setattr(self, attribute, now + float(active.get(kind, 0.0)))

    def services_down(self, now: float) -> set[str]:
        """The services whose health checks fail at ``now``."""
        return {s for s, attribute in SERVICE_DOWN.items() if getattr(self, attribute) > now}

    def payments(self, now: float) -> PaymentTrouble:
        """What payment attempts suffer at ``now``."""
        spike = self.payment_failures_until > now
        return PaymentTrouble(
            vocabulary.SPIKE_ATTEMPT_FAILURE_SHARE if spike else vocabulary.ATTEMPT_FAILURE_SHARE,
            vocabulary.OUTAGE_PSP if self.psp_outage_until > now else None,
        )


# The injections a running live stream obeys, and the deadline each one sets.
STREAM_FLAGS = {
    "api-5xx-burst": "api_5xx_until",
    "service-down": "service_down_until",
    "webhook-handler-down": "webhook_handler_down_until",
    "calendar-sync-down": "calendar_sync_down_until",
    "stuck-bookings": "processing_stuck_until",
    "checks-stop": "checks_stopped_until",
    "payment-failure-spike": "payment_failures_until",
    "psp-outage": "psp_outage_until",
}
# Each service and the deadline until which its health checks fail.
SERVICE_DOWN = {
    "booking_api": "service_down_until",
    "payment_webhook_handler": "webhook_handler_down_until",
    "calendar_sync": "calendar_sync_down_until",
}


def new_card(rng: random.Random) -> tuple[str, str, str]:
    brand = str(weighted(rng, vocabulary.CARD_BRANDS))
    country = str(weighted(rng, vocabulary.CARD_COUNTRIES))
    return brand, f"{rng.randrange(10_000):04d}", country


def booking_row(rng: random.Random, slot: Slot, customers: int) -> tuple[object, ...]:
    """Columns of INSERT_BOOKINGS (without the id) for one new booking in ``slot``."""
    resource = slot.resource
    amount = resource.hourly_price * slot.minutes // 60 // 100 * 100
    customer = rng.randrange(1, customers + 1)
    return (
        resource.id,
        customer,
        resource.location_id,
        resource.staff_id,
        slot.start,
        slot.minutes,
        amount,
        resource.currency,
    )


def standalone_intent(rng: random.Random, customers: int, test_share: float, serial: str) -> Intent:
    currency = str(weighted(rng, vocabulary.CURRENCIES))
    amount = int(rng.randrange(5, 400) * 100 * CURRENCY_FACTOR[currency])
    return Intent(
        intent_id=serial,
        customer_id=rng.randrange(1, customers + 1),
        amount=amount,
        currency=currency,
        livemode=rng.random() >= test_share,
        booking_id=None,
        card=new_card(rng),
    )


def attempt_outcome(
    rng: random.Random, intent: Intent, serial: str, trouble: PaymentTrouble = PaymentTrouble()
) -> Attempt:
    """First attempts fail at the vocabulary's rate (or an injected spike's); retries recover
    at the retry rate; at a PSP that is out, every attempt fails with a processing error."""
    fail_share = (
        trouble.first_attempt_failure_share
        if intent.attempt == 1
        else 1 - vocabulary.RETRY_SUCCESS_SHARE
    )
    psp = vocabulary.PSP_BY_CURRENCY[intent.currency]
    failed = rng.random() < fail_share or psp == trouble.psp_down
    code = str(weighted(rng, vocabulary.FAILURE_CODES)) if failed else None
    if psp == trouble.psp_down:
        code = vocabulary.OUTAGE_FAILURE_CODE
    score = (
        None
        if rng.random() < 0.03
        else int(min(100, rng.betavariate(2, 6 if failed else 12) * 100))
    )
    return Attempt(
        intent=intent,
        status="failed" if failed else "authorized",
        failure_code=code,
        psp=psp,
        psp_id=("ps_" if psp == "paystack" else "ch_") + serial,
        fraud_score=score,
    )


def api_log_row(
    rng: random.Random,
    serial: str,
    accounts: int,
    test_share: float,
    server_error_share: float | None,
) -> tuple[object, ...]:
    """Columns of INSERT_API_LOGS for one request."""
    route = rng.choices(vocabulary.ROUTES, weights=[r.weight for r in vocabulary.ROUTES])[0]
    duration = route.median_ms * rng.lognormvariate(0.0, route.sigma)
    if rng.random() < vocabulary.LATENCY_TAIL_SHARE:
        duration *= 1 + vocabulary.LATENCY_TAIL_FACTOR * rng.random()
    if server_error_share is not None and rng.random() < server_error_share:
        status = rng.choice(vocabulary.SERVER_ERROR_CODES)
    else:
        status = int(weighted(rng, vocabulary.STATUS_CODES))  # type: ignore[call-overload]
    object_id = rng.randrange(1, 5_000_000)
    kind = route.route.split("/")[2]
    path = route.route.replace("{id}", f"{kind[:3]}_{object_id}")
    webhook = route.route.startswith("/v1/webhooks")
    account = None if webhook or status == 401 else rng.randrange(accounts)
    error_type, error_message = vocabulary.ERROR_TYPES.get(status, (None, None))
    trace = (
        vocabulary.STACK_TRACE.format(handler=kind, line=120, line2=40, error="OperationalError")
        if status >= 500
        else None
    )
    request_body = (
        None if route.method == "GET" else f'{{"resource_id": {object_id}, "quantity": 1}}'
    )
    response_body = f'{{"object": "{kind}", "id": "{kind}_{object_id}", "livemode": true}}'
    return (
        f"req_{serial}",
        round(duration, 3),
        route.method,
        path,
        route.route,
        status,
        None if account is None else f"key_{account * 3 + rng.randrange(3):013d}",
        None if account is None else f"acct_{account:013d}",
        f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        rng.random() >= test_share,
        str(weighted(rng, vocabulary.API_VERSIONS)),
        f"idk_{serial}" if route.method == "POST" and rng.random() < 0.7 else None,
        error_type,
        error_message,
        trace,
        f"usr_{rng.randrange(50_000)}" if rng.random() < 0.3 else None,
        request_body,
        response_body,
    )


def calendar_sync_row(rng: random.Random, resource_id: int) -> tuple[object, ...]:
    provider, _, fail_share = rng.choices(
        vocabulary.CALENDAR_PROVIDERS, weights=[p[1] for p in vocabulary.CALENDAR_PROVIDERS]
    )[0]
    failed = rng.random() < fail_share
    return (
        provider,
        f"cal_{resource_id}",
        resource_id,
        round(rng.lognormvariate(7.0, 0.8), 3),
        "failed" if failed else "ok",
        rng.choice(vocabulary.CALENDAR_ERRORS) if failed else None,
    )


def ticket_row(rng: random.Random, customers: int, age_seconds: float = 0.0) -> tuple[object, ...]:
    return (
        rng.randrange(1, customers + 1),
        rng.choice(vocabulary.TICKET_SUBJECTS),
        str(weighted(rng, vocabulary.TICKET_PRIORITIES)),
        age_seconds,
    )


def ticket_resolution_seconds(rng: random.Random) -> float:
    """Many tickets are answered within minutes; the rest take hours (median about 4 h)."""
    if rng.random() < 0.4:
        return rng.uniform(30, 900)
    return rng.lognormvariate(9.6, 0.9)
