"""What a live writer is given: the run's options, the follow-up scheduler and the
statistics, and (:class:`WriterContext`) the shared state of the run it writes for.

Writers receive this small context instead of the whole simulator, so they depend on the
parts they use and :mod:`simulator.live` can assemble them without an import circle.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from core.settings import SimulatorSettings
from simulator import vocabulary
from simulator.live_model import Anomalies
from simulator.occupancy import Occupancy, Resource
from simulator.psp_sender import PspSender, PspWebhooks
from simulator.seasonality import intensity

# Rows per payment attempt, from the small scale's daily volumes.
_S = vocabulary.SCALES["small"]
PER_ATTEMPT = {
    "bookings": _S.bookings_per_day / _S.transactions_per_day,
    "api_logs": _S.api_logs_per_day / _S.transactions_per_day,
    "site_sessions": _S.sessions_per_day / _S.transactions_per_day,
    "calendar_syncs": _S.calendar_syncs_per_day / _S.transactions_per_day,
    "support_tickets": _S.tickets_per_day / _S.transactions_per_day,
}
# A first attempt fails at ATTEMPT_FAILURE_SHARE and is retried (twice at most) at
# RETRY_SHARE; a retry fails again at 1 - RETRY_SUCCESS_SHARE.
_RETRY = vocabulary.ATTEMPT_FAILURE_SHARE * vocabulary.RETRY_SHARE
ATTEMPTS_PER_INTENT = 1 + _RETRY * (
    1 + (1 - vocabulary.RETRY_SUCCESS_SHARE) * vocabulary.RETRY_SHARE
)
_SIMULATOR = SimulatorSettings()  # the defaults
PAID_BOOKING_SHARE = (1 - vocabulary.BOOKING_EXPIRE_SHARE) * vocabulary.BOOKING_PAID_SHARE


@dataclass(frozen=True)
class LiveOptions:
    rate: float  # payment attempts per second, on average over a day
    writers: int = 8
    seed: int = 1
    seasonal: bool = True
    tick_seconds: float = 0.05
    max_hold_seconds: float = 0.03
    test_share: float = 0.04
    psp_missing_share: float = _SIMULATOR.psp_missing_share
    psp_different_share: float = _SIMULATOR.psp_different_share
    psp_delay_seconds: float = 5.0
    speedup: float = 1.0  # follow-ups (captures, refunds, resolutions ...) come this much sooner
    psp_webhooks: PspWebhooks | None = None  # report charges as signed PSP webhooks instead

    def per_second(self, kind: str, now: datetime) -> float:
        """Mean arrivals per second of ``kind`` right now."""
        rate = self.rate * (intensity(now) if self.seasonal else 1.0)
        if kind == "intents":
            bookings = rate * PER_ATTEMPT["bookings"]
            booking_attempts = bookings * PAID_BOOKING_SHARE * ATTEMPTS_PER_INTENT
            return max(0.0, rate - booking_attempts) / ATTEMPTS_PER_INTENT
        return rate * PER_ATTEMPT[kind]


class Scheduler:
    """Follow-ups due at a monotonic time, shared by all writers. ``speedup`` makes every
    follow-up come that many times sooner (tests fast-forward the platform's day)."""

    def __init__(self, speedup: float = 1.0) -> None:
        self._speedup = speedup
        self._heap: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def add(self, delay: float, kind: str, payload: Any) -> None:
        with self._lock:
            due = time.monotonic() + delay / self._speedup
            heapq.heappush(self._heap, (due, next(self._seq), kind, payload))

    def due(self, limit: int) -> list[tuple[str, Any]]:
        now = time.monotonic()
        out: list[tuple[str, Any]] = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now and len(out) < limit:
                _, _, kind, payload = heapq.heappop(self._heap)
                out.append((kind, payload))
        return out

    def __len__(self) -> int:
        return len(self._heap)


class Stats:
    """Rows written per table and transitions per kind, for the progress lines."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.commits = 0
        self.errors = 0

    def add(self, counts: Counter[str]) -> None:
        with self._lock:
            self.counts.update(counts)
            self.commits += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)


@dataclass(frozen=True)
class PlatformShape:
    resources: list[Resource]
    customers: int
    accounts: int


class WriterContext(Protocol):
    """The state of a live run that its writers share (:class:`simulator.live.LiveSimulator`)."""

    platform_url: str
    options: LiveOptions
    scheduler: Scheduler
    stats: Stats
    anomalies: Anomalies
    occupancy: Occupancy
    psp_sender: PspSender | None
    shape: PlatformShape
    run_tag: str  # tells this run's rows from an earlier run's

    def next_serial(self) -> int: ...
