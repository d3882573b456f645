"""Which slots of which resources are taken: live bookings go where there is room.

A real platform checks availability before it takes a booking, so double bookings are
rare accidents (and the ``double-booking`` injection), not the normal case. The live
writers share one Occupancy, filled at start with the future bookings already in the
database, on a 15-minute grid.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from simulator import vocabulary

UNIT = timedelta(minutes=15)
LEAD_DAYS = 60  # how far ahead customers book
TRIES = 25
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _unit(moment: datetime) -> int:
    return int((moment - EPOCH) / UNIT)


@dataclass(frozen=True)
class Resource:
    id: int
    location_id: int
    staff_id: int | None
    currency: str
    hourly_price: int


@dataclass(frozen=True)
class Slot:
    resource: Resource
    start: datetime
    minutes: int

    def units(self) -> range:
        first = _unit(self.start)
        return range(first, first + -(-self.minutes // 15))


class Occupancy:
    def __init__(
        self, resources: Sequence[Resource], taken: Iterable[tuple[int, datetime, datetime]]
    ) -> None:
        self._resources = list(resources)
        self._lock = threading.Lock()
        self._taken: set[tuple[int, int]] = set()
        self._held: dict[int, Slot] = {}
        for resource_id, start, end in taken:
            for unit in range(_unit(start), _unit(end - timedelta(microseconds=1)) + 1):
                self._taken.add((resource_id, unit))

    def reserve(self, rng: random.Random, now: datetime) -> Slot | None:
        """A free slot (reserved for the caller), or None when a few tries find none."""
        open_units = (vocabulary.CLOSE_HOUR - vocabulary.OPEN_HOUR) * 4
        for _ in range(TRIES):
            minutes = rng.choice((30, 45, 60))
            day = (now + timedelta(days=min(int(rng.expovariate(0.12)), LEAD_DAYS))).replace(
                hour=vocabulary.OPEN_HOUR, minute=0, second=0, microsecond=0
            )
            start = day + rng.randrange(open_units - minutes // 15 + 1) * UNIT
            if start < now + timedelta(minutes=30):
                continue
            slot = Slot(self._resources[rng.randrange(len(self._resources))], start, minutes)
            keys = [(slot.resource.id, u) for u in slot.units()]
            with self._lock:
                if not any(k in self._taken for k in keys):
                    self._taken.update(keys)
                    return slot
        return None

    def hold(self, booking_id: int, slot: Slot) -> None:
        with self._lock:
            self._held[booking_id] = slot

    def release(self, booking_id: int | None = None, slot: Slot | None = None) -> None:
        """Free the slot of a booking that was cancelled or failed (or never inserted)."""
        with self._lock:
            if booking_id is not None:
                slot = self._held.pop(booking_id, None)
            if slot is not None:
                self._taken.difference_update((slot.resource.id, u) for u in slot.units())
