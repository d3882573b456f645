"""Backfilled bookings: seasonal arrivals, free slots per resource, the status lifecycle.

Every booking takes a one-hour slot of its resource; collisions are re-drawn a few times
and what still collides fails (the slot was taken), so overlaps come only from the small,
deliberate share of double bookings that feed the conflict KPI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from simulator import vocabulary
from simulator.clock import DAY, HOUR, MINUTE, SECOND
from simulator.columns import Bools, Ints, nullable_ints, pick, timestamps
from simulator.seasonality import sample_times
from simulator.world import World

PENDING, CONFIRMED, CANCELLED, FAILED = 0, 1, 2, 3
STATUS_NAMES = ("pending", "confirmed", "cancelled", "failed")
SLOTS_PER_DAY = vocabulary.CLOSE_HOUR - vocabulary.OPEN_HOUR
DOUBLE_BOOKING_SHARE = 0.0003
NONE = -1


@dataclass(frozen=True)
class BookingHistory:
    """What later tables need to know about the bookings (index i is booking id i + 1)."""

    created: Ints
    confirmed: Ints  # NONE when never confirmed
    status: Ints
    amount: Ints
    currency: Ints  # index into vocabulary.CURRENCIES
    customer: Ints  # customer id
    failed_payment: Bools  # failed because the payment failed (not because of the slot)
    table: pa.Table


def _draw_slots(rng: np.random.Generator, created: Ints, count: int) -> Ints:
    lead = np.minimum(rng.geometric(0.3, count) - 1, vocabulary.MAX_LEAD_DAYS)
    slot = rng.integers(0, SLOTS_PER_DAY, count)
    start = (created // DAY + lead) * DAY + (vocabulary.OPEN_HOUR + slot) * HOUR
    return np.where(start < created + 30 * MINUTE, start + DAY, start)


def _free_slots(
    rng: np.random.Generator, resource: Ints, created: Ints, rounds: int = 10
) -> tuple[Ints, Bools]:
    """Start times that are unique per resource; the mask marks bookings left colliding."""
    start = _draw_slots(rng, created, len(created))
    base_hour = int(start.min() // HOUR)
    collided = np.zeros(len(created), dtype=bool)
    for attempt in range(rounds + 1):
        key = (resource << 24) | (start // HOUR - base_hour)
        order = np.argsort(key, kind="stable")
        dup = order[1:][key[order][1:] == key[order][:-1]]
        if attempt == rounds or len(dup) == 0:
            collided[dup] = True
            break
        start[dup] = _draw_slots(rng, created[dup], len(dup))
    return start, collided


def _lifecycle(
    rng: np.random.Generator, created: Ints, collided: Bools
) -> tuple[Ints, Ints, Ints, Bools]:
    """status, confirmed_at and cancelled_at (NONE when unset), and payment failures."""
    count = len(created)
    draw = rng.random(count)
    payment_failed = ~collided & (draw < vocabulary.BOOKING_FAIL_SHARE)
    failed = collided | payment_failed
    expired = ~failed & (draw < vocabulary.BOOKING_FAIL_SHARE + vocabulary.BOOKING_EXPIRE_SHARE)

    confirmed = created + 2 * SECOND + rng.exponential(25 * SECOND, count).astype(np.int64)
    confirmed[failed | expired] = NONE
    cancelled = np.full(count, NONE, dtype=np.int64)
    # The platform gives up on unpaid bookings after 8 minutes, before they count as stuck.
    cancelled[expired] = created[expired] + 8 * MINUTE
    status = np.full(count, CONFIRMED, dtype=np.int64)
    status[failed] = FAILED
    status[expired] = CANCELLED
    return status, confirmed, cancelled, payment_failed


def build_bookings(
    world: World, seed: int, start_us: int, end_us: int, days: float
) -> BookingHistory:
    rng = np.random.default_rng([seed, 10])
    count = round(world.scale.bookings_per_day * days)
    created = sample_times(rng, count, start_us, end_us)
    resource = pick(rng, world.resource_popularity, count)
    start, collided = _free_slots(rng, resource, created)
    status, confirmed, cancelled, payment_failed = _lifecycle(rng, created, collided)

    # Later cancellations of confirmed bookings, between confirmation and the slot.
    cancel_later = (status == CONFIRMED) & (rng.random(count) < vocabulary.BOOKING_CANCEL_SHARE)
    cancel_at = confirmed + (rng.random(count) * (start - confirmed)).astype(np.int64)
    cancel_later &= cancel_at < end_us
    cancelled[cancel_later] = cancel_at[cancel_later]
    status[cancel_later] = CANCELLED

    # What has not happened by the end of the window is still pending.
    not_yet = (confirmed >= end_us) | (cancelled >= end_us)
    confirmed[confirmed >= end_us] = NONE
    cancelled[cancelled >= end_us] = NONE
    status[not_yet & (status != FAILED)] = PENDING

    _add_double_bookings(rng, resource, start, created, confirmed)
    duration = np.asarray([30, 45, 60])[pick(rng, [0.5, 0.2, 0.3], count)] * MINUTE
    location = world.resource_location[resource]
    currency_names = [row[0] for row in vocabulary.CURRENCIES]
    currency = np.asarray(
        [
            currency_names.index(world.location_currency[i])
            for i in range(len(world.location_currency))
        ]
    )[location]
    amount = (world.resource_price[resource] * duration // HOUR // 100) * 100
    customer = np.minimum(rng.zipf(1.3, count), world.customers) - 1
    customer = (customer * 7919 + rng.integers(0, world.customers, count)) % world.customers + 1

    updated = np.maximum.reduce([created + SECOND, confirmed, cancelled])
    staff = world.resource_staff[resource]
    table = pa.table(
        {
            "id": pa.array(np.arange(1, count + 1)),
            "resource_id": pa.array(resource + 1),
            "customer_id": pa.array(customer),
            "location_id": pa.array(location + 1),
            "staff_id": nullable_ints(staff + 1, staff < 0),
            "start_at": timestamps(start),
            "end_at": timestamps(start + duration),
            "status": pa.array(STATUS_NAMES).take(pa.array(status)),
            "amount_cents": pa.array(amount),
            "currency": pa.array(currency_names).take(pa.array(currency)),
            "created_at": timestamps(created),
            "confirmed_at": timestamps(confirmed, confirmed == NONE),
            "cancelled_at": timestamps(cancelled, cancelled == NONE),
            "updated_at": timestamps(updated),
        }
    )
    return BookingHistory(
        created=created,
        confirmed=confirmed,
        status=status,
        amount=amount,
        currency=currency,
        customer=customer,
        failed_payment=payment_failed,
        table=table,
    )


def _add_double_bookings(
    rng: np.random.Generator, resource: Ints, start: Ints, created: Ints, confirmed: Ints
) -> None:
    """Move a few confirmed bookings onto the slot of the one confirmed just before them."""
    ever_confirmed = np.flatnonzero(confirmed != NONE)
    wanted = int(len(ever_confirmed) * DOUBLE_BOOKING_SHARE)
    if wanted == 0:
        return
    later = rng.choice(np.arange(1, len(ever_confirmed)), wanted, replace=False)
    second, first = ever_confirmed[later], ever_confirmed[later - 1]
    possible = start[first] > created[second] + 30 * MINUTE
    second, first = second[possible], first[possible]
    resource[second] = resource[first]
    start[second] = start[first]
