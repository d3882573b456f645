"""The values /metrics serves, in memory: a scrape never waits for the database.

A new leader loads everything from ops once, on election; from then on it replaces a
collector's series with what each fold committed, so it holds the committed state. Every
change of the values bumps ``version``, which :mod:`exporters.metrics_page` waits on to
render them once per change rather than once per scrape; ``loaded_version`` is the version
of the last load, which no page may serve anything older than.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from exporters.collector import SeriesKey


@dataclass(frozen=True)
class Health:
    up: bool = False
    duration: float = 0.0
    horizon: datetime | None = None  # every event before it is counted


@dataclass(frozen=True)
class View:
    values: dict[str, dict[SeriesKey, float]]
    health: dict[str, Health]


class Snapshot:
    def __init__(self, collectors: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._version = 0
        self._loaded_version = 0
        self._names = tuple(collectors)
        self._values: dict[str, dict[SeriesKey, float]] = {n: {} for n in self._names}
        self._health: dict[str, Health] = {n: Health() for n in self._names}
        self._closed = False

    def load(
        self,
        values: Iterable[tuple[Any, ...]],
        cursors: Iterable[tuple[Any, ...]],
        *,
        source_ok: bool,
    ) -> None:
        """Replace everything with the rows of ops.kpi_values and ops.kpi_cursors."""
        by_collector: dict[str, dict[SeriesKey, float]] = defaultdict(dict)
        for collector, metric, labels, value in values:
            by_collector[collector][(metric, tuple(labels))] = float(value)
        health = {n: Health() for n in self._names}
        for collector, horizon, _folded_at, last_ok, _error, duration in cursors:
            if collector in health:
                health[collector] = Health(bool(last_ok) and source_ok, float(duration), horizon)
        with self._lock:
            self._values = {n: by_collector.get(n, {}) for n in self._names}
            self._health = health
            self._bump()
            self._loaded_version = self._version

    def apply(self, collector: str, rows: Iterable[tuple[Any, ...]], health: Health) -> None:
        with self._lock:
            values = self._values[collector]
            changed = False
            for metric, labels, value in rows:
                values[(metric, tuple(labels))] = float(value)
                changed = True
            self._health[collector] = health
            if changed:
                self._bump()

    def mark_down(self, collector: str) -> None:
        with self._lock:
            self._health[collector] = replace(self._health[collector], up=False)

    def mark_all_down(self) -> None:
        with self._lock:
            self._health = {n: replace(h, up=False) for n, h in self._health.items()}

    def view(self) -> View:
        with self._lock:
            return View(
                values={n: dict(v) for n, v in self._values.items()},
                health=dict(self._health),
            )

    def health_view(self) -> View:
        """Health only: what every scrape of a leader renders afresh."""
        with self._lock:
            return View({}, dict(self._health))

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    @property
    def loaded_version(self) -> int:
        """The version of the last :meth:`load` (0 before the first)."""
        with self._lock:
            return self._loaded_version

    def wait_changed(self, seen: int, timeout: float) -> int:
        """The values' version, once it differs from ``seen``, after ``timeout``, or at once
        when closed."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or self._version != seen, timeout)
            return self._version

    def close(self) -> None:
        """The exporter is stopping: wake every waiter now rather than at its timeout."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _bump(self) -> None:
        self._version += 1
        self._changed.notify_all()
