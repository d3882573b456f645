"""Backfilled payments: intents and their attempts, the PSP's own feed, refunds, chargebacks,
payouts.

A payment intent has one or more attempts (rows of ``transactions``). Intents of bookings
end the way the booking did (captured before it was confirmed, failed when it failed);
stand-alone intents (memberships, gift cards, test-mode traffic) fill up the volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from simulator import vocabulary
from simulator.bookings_history import NONE, BookingHistory
from simulator.clock import DAY, HOUR, MINUTE, SECOND
from simulator.columns import (
    Bools,
    Ints,
    digits,
    join,
    nullable_ints,
    pick,
    pick_values,
    text_from,
    timestamps,
    tokens,
)
from simulator.seasonality import sample_times

CURRENCY_NAMES = tuple(row[0] for row in vocabulary.CURRENCIES)
FAILURE_NAMES = tuple(row[0] for row in vocabulary.FAILURE_CODES)
PSP_STATUS = {
    "pending": "pending",
    "authorized": "requires_capture",
    "captured": "succeeded",
    "failed": "failed",
    "refunded": "refunded",
    "partially_refunded": "partially_refunded",
    "voided": "canceled",
}
# Prior failed attempts of intents that end captured: mostly none.
PRIOR_FAILURES = (0.95, 0.04, 0.01)
# Attempts of intents that end failed.
FAILED_ATTEMPTS = (0.4, 0.35, 0.25)
STANDALONE_SUCCESS = 0.97


@dataclass(frozen=True)
class Intents:
    customer: Ints
    amount: Ints
    currency: Ints
    livemode: Bools
    booking: Ints  # booking id or NONE
    first_at: Ints  # when the first attempt happened
    last_at: Ints  # when the last attempt happened (the success, for succeeding intents)
    succeeds: Bools
    attempts: Ints


@dataclass(frozen=True)
class TransactionHistory:
    captured: Ints  # NONE when not captured (or voided)
    refund_at: Ints  # NONE when never refunded
    partial: Bools  # the refund was partial
    table: pa.Table


def _attempt_counts(rng: np.random.Generator, succeeds: Bools) -> Ints:
    prior = pick(rng, PRIOR_FAILURES, len(succeeds))
    failing = pick(rng, FAILED_ATTEMPTS, len(succeeds)) + 1
    return np.where(succeeds, prior + 1, failing)


def _booking_intents(
    rng: np.random.Generator, bookings: BookingHistory, paid_share: float
) -> Intents:
    ever_confirmed = bookings.confirmed != NONE
    eligible = (ever_confirmed | bookings.failed_payment) & (
        rng.random(len(bookings.created)) < paid_share
    )
    index = np.flatnonzero(eligible)
    succeeds = ever_confirmed[index]
    created = bookings.created[index]
    # Attempts fit between the booking's creation and its confirmation.
    last = np.where(
        succeeds,
        bookings.confirmed[index] - SECOND,
        created + rng.integers(20, 300, len(index)) * SECOND,
    )
    return Intents(
        customer=bookings.customer[index],
        amount=bookings.amount[index],
        currency=bookings.currency[index],
        livemode=np.ones(len(index), dtype=bool),
        booking=index + 1,
        first_at=np.minimum(created + SECOND, last),
        last_at=last,
        succeeds=succeeds,
        attempts=_attempt_counts(rng, succeeds),
    )


def _standalone_intents(
    rng: np.random.Generator,
    count: int,
    customers: int,
    window: tuple[int, int],
    test_share: float,
) -> Intents:
    start_us, end_us = window
    first = sample_times(rng, count, start_us, end_us)
    succeeds = rng.random(count) < STANDALONE_SUCCESS
    attempts = _attempt_counts(rng, succeeds)
    spacing = rng.integers(1, 30, count) * MINUTE
    currency = pick(rng, [row[1] for row in vocabulary.CURRENCIES], count)
    factor = np.asarray([1.0, 0.92, 0.8, 1500.0])[currency]
    return Intents(
        customer=rng.integers(1, customers + 1, count),
        amount=(rng.integers(5, 400, count) * 100 * factor).astype(np.int64),
        currency=currency,
        livemode=rng.random(count) >= test_share,
        booking=np.full(count, NONE, dtype=np.int64),
        first_at=first,
        last_at=first + (attempts - 1) * spacing,
        succeeds=succeeds,
        attempts=attempts,
    )


def _concat(parts: list[Intents]) -> Intents:
    fields = Intents.__dataclass_fields__
    return Intents(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in fields})


def plan_intents(
    bookings: BookingHistory,
    target_transactions: int,
    customers: int,
    window: tuple[int, int],
    seed: int,
    test_share: float,
) -> Intents:
    """Booking intents first, then stand-alone ones up to the scale's transaction volume."""
    rng = np.random.default_rng([seed, 11])
    linked_attempts_per_booking = 1.09
    candidates = int(((bookings.confirmed != NONE) | bookings.failed_payment).sum())
    paid_share = min(
        0.9, 0.95 * target_transactions / max(1.0, candidates * linked_attempts_per_booking)
    )
    linked = _booking_intents(rng, bookings, paid_share)
    remaining = target_transactions - int(linked.attempts.sum())
    standalone_count = max(0, int(remaining / 1.15))
    standalone = _standalone_intents(rng, standalone_count, customers, window, test_share)
    return _concat([linked, standalone])


def build_transactions(intents: Intents, seed: int, end_us: int) -> TransactionHistory:
    rng = np.random.default_rng([seed, 12])
    intent_index = np.repeat(np.arange(len(intents.attempts)), intents.attempts)
    offsets = np.repeat(np.cumsum(intents.attempts) - intents.attempts, intents.attempts)
    attempt = np.arange(len(intent_index)) - offsets + 1
    total = np.repeat(intents.attempts, intents.attempts)
    span = np.repeat(intents.last_at - intents.first_at, intents.attempts)
    at = np.repeat(intents.first_at, intents.attempts) + np.where(
        total > 1, span * (attempt - 1) // np.maximum(total - 1, 1), 0
    )
    keep = at < end_us
    intent_index, attempt, total, at = intent_index[keep], attempt[keep], total[keep], at[keep]
    order = np.argsort(at, kind="stable")
    intent_index, attempt, total, at = intent_index[order], attempt[order], total[order], at[order]
    count = len(at)

    is_last = attempt == total
    success = is_last & intents.succeeds[intent_index]
    captured = np.where(success, at + rng.integers(200, 2000, count) * 1000, NONE)
    status = np.where(success, "captured", "failed").astype(object)
    voided = (
        success
        & (intents.booking[intent_index] == NONE)
        & (rng.random(count) < vocabulary.VOID_SHARE)
    )
    status[voided] = "voided"
    captured[voided] = NONE
    not_yet = captured >= end_us
    status[not_yet] = "authorized"
    captured[not_yet] = NONE
    failed = status == "failed"
    failure = pick(rng, [row[1] for row in vocabulary.FAILURE_CODES], count)

    refund_draw = rng.random(count)
    refund_at = captured + rng.exponential(2 * DAY, count).astype(np.int64)
    refunded = (captured != NONE) & (refund_draw < vocabulary.REFUND_SHARE) & (refund_at < end_us)
    partial = (
        (captured != NONE)
        & (refund_draw >= vocabulary.REFUND_SHARE)
        & (refund_draw < vocabulary.REFUND_SHARE + vocabulary.PARTIAL_REFUND_SHARE)
        & (refund_at < end_us)
    )
    status[refunded] = "refunded"
    status[partial] = "partially_refunded"
    refund_at[~(refunded | partial)] = NONE

    ids = np.arange(1, count + 1)
    currency = intents.currency[intent_index]
    psp_is_paystack = np.asarray(CURRENCY_NAMES)[currency] == "NGN"
    psp = np.where(psp_is_paystack, "paystack", "stripe")
    psp_prefix = pa.array(np.where(psp_is_paystack, "ps_", "ch_").tolist())
    fraud = np.clip(
        np.where(failed, rng.beta(2, 6, count), rng.beta(2, 12, count)) * 100, 0, 100
    ).astype(np.int64)
    booking = intents.booking[intent_index]
    table = pa.table(
        {
            "id": pa.array(ids),
            "booking_id": nullable_ints(booking, booking == NONE),
            "customer_id": pa.array(intents.customer[intent_index]),
            "amount_cents": pa.array(intents.amount[intent_index]),
            "currency": pa.array(CURRENCY_NAMES).take(pa.array(currency)),
            "status": pa.array(status.tolist(), type=pa.string()),
            "failure_code": text_from(FAILURE_NAMES, failure, ~failed),
            "psp": pa.array(psp.tolist()),
            "psp_id": join(psp_prefix, tokens("", ids, seed)),
            "payment_intent_id": tokens("pi_", intent_index.astype(np.int64) + 1, seed + 1),
            "attempt": pa.array(attempt),
            "card_brand": pick_values(rng, vocabulary.CARD_BRANDS, count),
            "card_last4": digits(rng, count, 4),
            "card_country": pick_values(rng, vocabulary.CARD_COUNTRIES, count),
            "fraud_score": nullable_ints(fraud, rng.random(count) < 0.03),
            "livemode": pa.array(intents.livemode[intent_index]),
            "created_at": timestamps(at),
            "updated_at": timestamps(np.maximum.reduce([at, captured, refund_at])),
            "captured_at": timestamps(captured, captured == NONE),
            "failed_at": timestamps(at, ~failed),
        }
    )
    return TransactionHistory(
        captured=np.where(status == "voided", NONE, captured),
        refund_at=refund_at,
        partial=partial,
        table=table,
    )


def psp_feed_table(
    transactions: pa.Table, seed: int, end_us: int, missing_share: float, different_share: float
) -> pa.Table:
    """What the PSPs report: most charges, a little late, a few missing or different."""
    rng = np.random.default_rng([seed, 13])
    count = transactions.num_rows
    created = pc.cast(transactions["created_at"], pa.int64()).to_numpy()
    received = created + (rng.lognormal(0.7, 0.6, count) * SECOND).astype(np.int64)
    draw = rng.random(count)
    keep = (received < end_us) & (draw >= missing_share)
    different = draw < missing_share + different_share
    amount = transactions["amount_cents"].to_numpy()
    drift = 1 + rng.uniform(0.01, 0.25, count) * np.where(rng.random(count) < 0.5, -1, 1)
    reported = np.where(different, (amount * drift).astype(np.int64), amount)
    status = pc.call_function(
        "index_in", [transactions["status"]], pc.SetLookupOptions(pa.array(list(PSP_STATUS)))
    )
    mask = pa.array(keep)
    return pa.table(
        {
            "psp_id": transactions["psp_id"].filter(mask),
            "psp": transactions["psp"].filter(mask),
            "amount_cents": pa.array(reported[keep]),
            "currency": transactions["currency"].filter(mask),
            "status": pa.array(list(PSP_STATUS.values())).take(status).filter(mask),
            "livemode": transactions["livemode"].filter(mask),
            "received_at": timestamps(received[keep]),
            "updated_at": timestamps(received[keep]),
        }
    )


def refunds_table(history: TransactionHistory, seed: int) -> pa.Table:
    rng = np.random.default_rng([seed, 14])
    index = np.flatnonzero(history.refund_at != NONE)
    amount = history.table["amount_cents"].to_numpy()[index]
    share = np.where(history.partial[index], rng.uniform(0.2, 0.8, len(index)), 1.0)
    refund_amount = np.maximum(1, (amount * share).astype(np.int64))
    at = history.refund_at[index]
    order = np.argsort(at, kind="stable")
    index, refund_amount, at = index[order], refund_amount[order], at[order]
    reasons = rng.integers(0, len(vocabulary.REFUND_REASONS), len(index))
    return pa.table(
        {
            "id": pa.array(np.arange(1, len(index) + 1)),
            "transaction_id": pa.array(index + 1),
            "amount_cents": pa.array(refund_amount),
            "reason": text_from(vocabulary.REFUND_REASONS, reasons),
            "created_at": timestamps(at),
            "updated_at": timestamps(at),
        }
    )


def chargebacks_table(history: TransactionHistory, seed: int, end_us: int) -> pa.Table:
    rng = np.random.default_rng([seed, 15])
    captured = history.captured
    chosen = (captured != NONE) & (rng.random(len(captured)) < vocabulary.CHARGEBACK_SHARE)
    at = captured + rng.integers(1, 20, len(captured)) * DAY + rng.integers(0, DAY, len(captured))
    index = np.flatnonzero(chosen & (at < end_us))
    at = at[index]
    order = np.argsort(at, kind="stable")
    index, at = index[order], at[order]
    status = pick_values(
        rng,
        (("needs_response", 0.4), ("under_review", 0.3), ("won", 0.15), ("lost", 0.15)),
        len(index),
    )
    reasons = rng.integers(0, len(vocabulary.CHARGEBACK_REASONS), len(index))
    return pa.table(
        {
            "id": pa.array(np.arange(1, len(index) + 1)),
            "transaction_id": pa.array(index + 1),
            "amount_cents": pa.array(history.table["amount_cents"].to_numpy()[index]),
            "reason": text_from(vocabulary.CHARGEBACK_REASONS, reasons),
            "status": status,
            "created_at": timestamps(at),
            "updated_at": timestamps(at),
        }
    )


def payouts_table(
    location_currency: tuple[str, ...], seed: int, start_us: int, end_us: int
) -> pa.Table:
    """One payout per location and day, paid at 02:00 UTC; the next two days scheduled."""
    rng = np.random.default_rng([seed, 16])
    days = np.arange(start_us // DAY, end_us // DAY + 3)
    location = np.tile(np.arange(len(location_currency)), len(days))
    scheduled = np.repeat(days, len(location_currency)) * DAY + 2 * HOUR
    count = len(scheduled)
    paid = scheduled < end_us
    draw = rng.random(count)
    status = np.where(paid, "paid", "scheduled").astype(object)
    status[paid & (draw < 0.01)] = "failed"
    held = paid & (draw >= 0.01) & (draw < 0.015)
    status[held] = "held"
    paid_at = np.where(status == "paid", scheduled + HOUR, NONE)
    factor = np.asarray([{"NGN": 1500.0}.get(c, 1.0) for c in location_currency])[location]
    return pa.table(
        {
            "id": pa.array(np.arange(1, count + 1)),
            "amount_cents": pa.array(
                (rng.integers(500, 20_000, count) * 100 * factor).astype(np.int64)
            ),
            "currency": pa.array([location_currency[i] for i in location]),
            "status": pa.array(status.tolist(), type=pa.string()),
            "scheduled_for": timestamps(scheduled),
            "paid_at": timestamps(paid_at, paid_at == NONE),
            "hold_reason": pa.array(["risk review" if h else None for h in held], type=pa.string()),
            "updated_at": timestamps(
                np.where(paid_at == NONE, np.minimum(scheduled, end_us - 1), paid_at)
            ),
        }
    )
