"""One live writer: gathers a tick's work, writes it in one transaction, schedules what
follows. Follow-ups are scheduled only after the commit, so nothing acts on rows that were
rolled back."""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg

from core.application_names import SIMULATOR
from core.database import close_quietly, connect
from simulator import vocabulary
from simulator.live_model import (
    Attempt,
    Intent,
    api_log_row,
    attempt_outcome,
    booking_row,
    calendar_sync_row,
    new_card,
    standalone_intent,
    ticket_resolution_seconds,
    ticket_row,
)
from simulator.occupancy import Slot
from simulator.queries import live as q

if TYPE_CHECKING:
    from simulator.live_context import WriterContext


log = logging.getLogger(__name__)
SERVER_ERROR_SHARE_DURING_BURST = 0.06
SWEEP_EVERY_SECONDS = 30.0
MAX_FOLLOW_UPS_PER_TICK = 5_000


@dataclass
class Batch:
    """A tick's work for one transaction, and the ids it got."""

    bookings: list[tuple[object, ...]] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)  # reserved for the new bookings
    held: dict[int, Slot] = field(default_factory=dict)  # of the bookings inserted as pending
    ended: list[int] = field(default_factory=list)  # bookings the sweep cancelled
    intents: list[Intent] = field(default_factory=list)
    api_logs: list[tuple[object, ...]] = field(default_factory=list)
    sessions: list[int | None] = field(default_factory=list)
    syncs: list[tuple[object, ...]] = field(default_factory=list)
    tickets: list[tuple[object, ...]] = field(default_factory=list)
    checks: list[tuple[str, bool, float]] = field(default_factory=list)
    confirm: list[tuple[int, Intent | None, int | None]] = field(default_factory=list)
    cancel: list[tuple[int, Intent | None, int | None]] = field(default_factory=list)
    fail_bookings: list[int] = field(default_factory=list)
    capture: list[tuple[int, Intent]] = field(default_factory=list)
    void: list[int] = field(default_factory=list)
    refunds: list[tuple[int, int, str]] = field(default_factory=list)
    chargebacks: list[tuple[int, int, str]] = field(default_factory=list)
    psp: list[tuple[object, ...]] = field(default_factory=list)
    pend_tickets: list[int] = field(default_factory=list)
    resolve_tickets: list[int] = field(default_factory=list)
    sweep: bool = False
    booking_ids: list[int] = field(default_factory=list)  # those inserted as pending
    attempts: list[tuple[int, Attempt]] = field(default_factory=list)
    ticket_ids: list[int] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


# Follow-up kinds and the Batch list each one joins.
FOLLOW_UPS = {
    "attempt": "intents",
    "capture": "capture",
    "void": "void",
    "confirm": "confirm",
    "cancel": "cancel",
    "fail_booking": "fail_bookings",
    "refund": "refunds",
    "chargeback": "chargebacks",
    "psp": "psp",
    "pend_ticket": "pend_tickets",
    "resolve_ticket": "resolve_tickets",
}


def _transpose(rows: Sequence[tuple[object, ...]], width: int) -> list[list[object]]:
    return (
        [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]
    )


class Writer:
    def __init__(self, sim: WriterContext, index: int) -> None:
        self.sim = sim
        self.index = index
        self.rng = random.Random(sim.options.seed * 1000 + index)
        self.np_rng = np.random.default_rng([sim.options.seed, 99, index])
        self._last_gather = time.monotonic()
        self._last_checks = 0.0
        self._last_sweep = time.monotonic()

    # -- the loop ---------------------------------------------------------------------

    def loop(self, stop: Any) -> None:
        conn: psycopg.Connection[Any] | None = None
        tick = self.sim.options.tick_seconds
        next_tick = time.monotonic()
        failures = 0
        while not stop.is_set():
            batch: Batch | None = None
            try:
                if conn is None:
                    conn = connect(self.sim.platform_url, application_name=SIMULATOR)
                batch = self.gather()
                self.execute(conn, batch)
                self.follow_up(batch)
                self.sim.stats.add(batch.counts)
                failures = 0
            except psycopg.OperationalError as exc:
                for slot in batch.slots if batch else ():
                    self.sim.occupancy.release(slot=slot)  # the batch was rolled back
                failures += 1
                if failures == 1:
                    log.warning("writer %d: database unavailable (%s); retrying", self.index, exc)
                close_quietly(conn)
                conn = None
                time.sleep(min(5.0, 0.2 * failures))
            next_tick += tick
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.monotonic()
        close_quietly(conn)

    # -- what to write ----------------------------------------------------------------

    def gather(self) -> Batch:
        sim, opts = self.sim, self.sim.options
        now = datetime.now(UTC)
        mono = time.monotonic()
        elapsed, self._last_gather = mono - self._last_gather, mono
        share = elapsed / opts.writers
        batch = Batch()

        def arrivals(kind: str) -> int:
            return int(self.np_rng.poisson(opts.per_second(kind, now) * share))

        shape = sim.shape
        for _ in range(arrivals("bookings")):
            slot = sim.occupancy.reserve(self.rng, now)
            if slot is None:
                batch.counts["bookings_without_availability"] += 1
                continue
            batch.slots.append(slot)
            batch.bookings.append(booking_row(self.rng, slot, shape.customers))
        for _ in range(arrivals("intents")):
            batch.intents.append(
                standalone_intent(self.rng, shape.customers, opts.test_share, self._serial())
            )
        burst = SERVER_ERROR_SHARE_DURING_BURST if sim.anomalies.api_5xx_until > mono else None
        for _ in range(arrivals("api_logs")):
            batch.api_logs.append(
                api_log_row(self.rng, self._serial(), shape.accounts, opts.test_share, burst)
            )
        for _ in range(arrivals("site_sessions")):
            batch.sessions.append(
                self.rng.randrange(1, shape.customers + 1) if self.rng.random() < 0.45 else None
            )
        for _ in range(arrivals("calendar_syncs")):
            batch.syncs.append(
                calendar_sync_row(
                    self.rng, shape.resources[self.rng.randrange(len(shape.resources))].id
                )
            )
        for _ in range(arrivals("support_tickets")):
            batch.tickets.append(ticket_row(self.rng, shape.customers))
        self._periodic(batch, mono)
        for kind, payload in sim.scheduler.due(MAX_FOLLOW_UPS_PER_TICK):
            self._add_due(batch, kind, payload)
        return batch

    def _serial(self) -> str:
        return f"L{self.sim.run_tag}{self.index}x{self.sim.next_serial()}"

    def _periodic(self, batch: Batch, mono: float) -> None:
        if self.index != 0:
            return
        # A dead checker writes nothing, not even a failure: the services' last checks age.
        checker_alive = self.sim.anomalies.checks_stopped_until <= mono
        if checker_alive and mono - self._last_checks >= vocabulary.SERVICE_CHECK_INTERVAL_SECONDS:
            self._last_checks = mono
            down = self.sim.anomalies.services_down(mono)
            for service in vocabulary.SERVICES:
                ok = service not in down
                latency = self.rng.lognormvariate(3.0, 0.4) * (1 if ok else 40)
                batch.checks.append((service, ok, round(latency, 2)))
        stuck = self.sim.anomalies.processing_stuck_until > mono
        if not stuck and mono - self._last_sweep >= SWEEP_EVERY_SECONDS:
            self._last_sweep = mono
            batch.sweep = True

    def _add_due(self, batch: Batch, kind: str, payload: Any) -> None:
        field_name = FOLLOW_UPS.get(kind)
        if field_name is None:
            raise ValueError(f"unknown follow-up {kind!r}")
        getattr(batch, field_name).append(payload)

    # -- writing it -------------------------------------------------------------------

    def execute(self, conn: psycopg.Connection[Any], batch: Batch) -> None:
        with conn.cursor() as cur:
            self._insert_bookings(cur, batch)
            self._insert_attempts(cur, batch)
            self._transitions(cur, batch)
            self._activity(cur, batch)
        # Hold the transaction open a moment: other writers commit meanwhile.
        time.sleep(self.rng.uniform(0, self.sim.options.max_hold_seconds))
        conn.commit()

    def _ids(self, cur: psycopg.Cursor[Any], table: str, count: int) -> list[int]:
        cur.execute(q.NEXT_IDS, (f"platform.{table}", count))
        return [int(row[0]) for row in cur.fetchall()]

    def _insert_bookings(self, cur: psycopg.Cursor[Any], batch: Batch) -> None:
        if not batch.bookings:
            return
        ids = self._ids(cur, "bookings", len(batch.bookings))
        cur.execute(q.INSERT_BOOKINGS, [ids, *_transpose(batch.bookings, 8)])
        pending = {int(i) for i, status in cur.fetchall() if status == "pending"}
        rows = list(zip(ids, batch.bookings, batch.slots, strict=True))
        batch.booking_ids = [i for i, _, _ in rows if i in pending]
        batch.bookings = [b for i, b, _ in rows if i in pending]
        batch.held = {i: slot for i, _, slot in rows if i in pending}
        batch.counts["bookings"] += len(ids)

    def _insert_attempts(self, cur: psycopg.Cursor[Any], batch: Batch) -> None:
        if not batch.intents:
            return
        ids = self._ids(cur, "transactions", len(batch.intents))
        trouble = self.sim.anomalies.payments(time.monotonic())
        attempts = [
            attempt_outcome(self.rng, intent, str(tid), trouble)
            for tid, intent in zip(ids, batch.intents, strict=True)
        ]
        rows = [
            (
                a.intent.booking_id,
                a.intent.customer_id,
                a.intent.amount,
                a.intent.currency,
                a.status,
                a.failure_code,
                a.psp,
                f"{a.psp_id[:3]}L{tid}",
                a.intent.intent_id,
                a.intent.attempt,
                *a.intent.card,
                a.fraud_score,
                a.intent.livemode,
            )
            for tid, a in zip(ids, attempts, strict=True)
        ]
        cur.execute(q.INSERT_ATTEMPTS, [ids, *_transpose(rows, 15)])
        batch.attempts = list(zip(ids, attempts, strict=True))
        batch.counts["transactions"] += len(ids)

    def _transitions(self, cur: psycopg.Cursor[Any], batch: Batch) -> None:
        steps: list[tuple[str, str, list[Any]]] = [
            ("captures", q.CAPTURE, [[tid for tid, _ in batch.capture]]),
            ("voids", q.VOID, [batch.void]),
            ("confirmations", q.CONFIRM_BOOKINGS, [[b for b, _, _ in batch.confirm]]),
            ("cancellations", q.CANCEL_BOOKINGS, [[b for b, _, _ in batch.cancel]]),
            ("booking_failures", q.FAIL_BOOKINGS, [batch.fail_bookings]),
            ("refunds", q.INSERT_REFUNDS, _transpose(batch.refunds, 3)),
            ("chargebacks", q.INSERT_CHARGEBACKS, _transpose(batch.chargebacks, 3)),
            ("psp_transactions", q.UPSERT_PSP, _transpose(batch.psp, 6)),
            ("ticket_updates", q.PEND_TICKETS, [batch.pend_tickets]),
            ("ticket_resolutions", q.RESOLVE_TICKETS, [batch.resolve_tickets]),
        ]
        for name, statement, params in steps:
            if params and params[0]:
                cur.execute(statement, params)
                batch.counts[name] += len(params[0])
        if batch.sweep:
            cur.execute(q.SWEEP_UNPAID_BOOKINGS)
            batch.ended = [int(r[0]) for r in cur.fetchall()]

    def _activity(self, cur: psycopg.Cursor[Any], batch: Batch) -> None:
        if batch.api_logs:
            cur.execute(q.INSERT_API_LOGS, _transpose(batch.api_logs, 18))
            batch.counts["api_logs"] += len(batch.api_logs)
        if batch.sessions:
            cur.execute(q.INSERT_SESSIONS, [batch.sessions])
            batch.counts["site_sessions"] += len(batch.sessions)
        if batch.syncs:
            cur.execute(q.INSERT_CALENDAR_SYNCS, _transpose(batch.syncs, 6))
            batch.counts["calendar_syncs"] += len(batch.syncs)
        if batch.tickets:
            batch.ticket_ids = self._ids(cur, "support_tickets", len(batch.tickets))
            cur.execute(q.INSERT_TICKETS, [batch.ticket_ids, *_transpose(batch.tickets, 4)])
            batch.counts["support_tickets"] += len(batch.tickets)
        if batch.checks:
            cur.execute(q.INSERT_SERVICE_CHECKS, _transpose(batch.checks, 3))
            batch.counts["service_checks"] += len(batch.checks)

    # -- what follows -----------------------------------------------------------------

    def _free_slots(self, batch: Batch) -> None:
        """Keep the slots of bookings now pending; give back what was refused or ended."""
        occupancy = self.sim.occupancy
        for slot in batch.slots:
            if slot not in batch.held.values():
                occupancy.release(slot=slot)
        for booking_id, slot in batch.held.items():
            occupancy.hold(booking_id, slot)
        for booking_id in (*batch.fail_bookings, *(b for b, _, _ in batch.cancel), *batch.ended):
            occupancy.release(booking_id)

    def follow_up(self, batch: Batch) -> None:
        self._free_slots(batch)
        schedule, rng = self.sim.scheduler.add, self.rng
        for booking_id, row in zip(batch.booking_ids, batch.bookings, strict=True):
            if rng.random() < vocabulary.BOOKING_EXPIRE_SHARE:
                continue  # never paid: the platform's sweep cancels it after 8 minutes
            customer, amount, currency = row[1], row[6], row[7]
            assert isinstance(customer, int)
            assert isinstance(amount, int)
            assert isinstance(currency, str)
            intent = Intent(
                f"piL{booking_id}", customer, amount, currency, True, booking_id, new_card(rng)
            )
            if rng.random() < vocabulary.BOOKING_PAID_SHARE:
                schedule(rng.uniform(0.3, 2.0), "attempt", intent)
            else:
                schedule(rng.uniform(1.0, 5.0), "confirm", (booking_id, None, None))
        for tid, attempt in batch.attempts:
            self._after_attempt(tid, attempt)
        for tid, intent in batch.capture:
            self._after_capture(tid, intent)
        for confirmed in batch.confirm:
            if rng.random() < vocabulary.BOOKING_CANCEL_SHARE:
                schedule(rng.uniform(5.0, 600.0), "cancel", confirmed)
        for _, paid_by, payment in batch.cancel:
            if paid_by is not None and payment is not None:
                schedule(
                    rng.uniform(1.0, 30.0),
                    "refund",
                    (payment, paid_by.amount, "requested_by_customer"),
                )
        for ticket_id in batch.ticket_ids:
            if rng.random() < 0.3:
                schedule(rng.uniform(10.0, 120.0), "pend_ticket", ticket_id)
            schedule(ticket_resolution_seconds(rng), "resolve_ticket", ticket_id)

    def _after_attempt(self, tid: int, attempt: Attempt) -> None:
        schedule, rng = self.sim.scheduler.add, self.rng
        intent = attempt.intent
        self._report_to_psp(tid, attempt)
        if attempt.status == "failed":
            if intent.attempt < 3 and rng.random() < vocabulary.RETRY_SHARE:
                retry = replace(intent, attempt=intent.attempt + 1)
                schedule(rng.uniform(2.0, 8.0), "attempt", retry)
            elif intent.booking_id is not None:
                schedule(rng.uniform(0.5, 2.0), "fail_booking", intent.booking_id)
        elif intent.booking_id is None and rng.random() < vocabulary.VOID_SHARE:
            schedule(rng.uniform(1.0, 5.0), "void", tid)
        else:
            schedule(rng.uniform(0.3, 2.0), "capture", (tid, intent))

    def _report_to_psp(self, tid: int, attempt: Attempt) -> None:
        opts, rng = self.sim.options, self.rng
        if rng.random() < opts.psp_missing_share:
            return
        amount = attempt.intent.amount
        if rng.random() < opts.psp_different_share:
            amount = int(amount * (1 + rng.choice((-1, 1)) * rng.uniform(0.01, 0.25)))
        status = "failed" if attempt.status == "failed" else "succeeded"
        psp_id = f"{attempt.psp_id[:3]}L{tid}"
        delay = rng.lognormvariate(0.0, 0.6) * opts.psp_delay_seconds
        row = (
            psp_id,
            attempt.psp,
            amount,
            attempt.intent.currency,
            status,
            attempt.intent.livemode,
        )
        if self.sim.psp_sender is not None:
            # The delay is the speed-up's too: the sender is the PSP, the platform's clock.
            self.sim.psp_sender.submit(row, delay / opts.speedup)
            return
        self.sim.scheduler.add(delay, "psp", row)

    def _after_capture(self, tid: int, intent: Intent) -> None:
        schedule, rng = self.sim.scheduler.add, self.rng
        if intent.booking_id is not None:
            schedule(rng.uniform(0.2, 1.0), "confirm", (intent.booking_id, intent, tid))
        else:
            draw = rng.random()
            if draw < vocabulary.REFUND_SHARE:
                schedule(
                    rng.uniform(20.0, 600.0),
                    "refund",
                    (tid, intent.amount, "requested_by_customer"),
                )
            elif draw < vocabulary.REFUND_SHARE + vocabulary.PARTIAL_REFUND_SHARE:
                schedule(
                    rng.uniform(20.0, 600.0),
                    "refund",
                    (tid, max(1, intent.amount // 3), "duplicate"),
                )
        if rng.random() < vocabulary.CHARGEBACK_SHARE:
            reason = rng.choice(vocabulary.CHARGEBACK_REASONS)
            schedule(rng.uniform(60.0, 900.0), "chargeback", (tid, intent.amount, reason))
