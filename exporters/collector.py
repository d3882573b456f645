"""What a KPI collector is: it folds the platform events of one time window into changes.

The engine gives every collector a window ``[since, until)`` of *event time* in which every
event is already visible (``until`` is the commit horizon, see ``horizon.py``) and none has
been folded before (``since`` is where the last committed fold stopped). A collector reads
just those events, through indexes on their event-time columns, and reports increments to
counters and new values of gauges. The engine persists them with the cursor in one
transaction, so a window is folded exactly once.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, SupportsFloat

import psycopg

from core.settings import Settings
from exporters.families import Family

SeriesKey = tuple[str, tuple[str, ...]]


@dataclass
class Changes:
    """Counter increments and gauge values produced by one fold."""

    increments: dict[SeriesKey, float] = field(default_factory=lambda: defaultdict(float))
    gauges: dict[SeriesKey, float] = field(default_factory=dict)

    def inc(self, family: Family, labels: Sequence[str], amount: SupportsFloat = 1.0) -> None:
        # SQL sums of bigint arrive as Decimal: every value is a float from here on.
        if amount:
            self.increments[(family.name, tuple(labels))] += float(amount)

    def set(self, family: Family, labels: Sequence[str], value: SupportsFloat) -> None:
        self.gauges[(family.name, tuple(labels))] = float(value)

    def observe(
        self,
        family: Family,
        labels: Sequence[str],
        per_bucket: Sequence[float],
        total: SupportsFloat,
    ) -> None:
        """Add observations to a histogram: ``per_bucket[i]`` observations fell in bucket i
        (not cumulative; the last entry is the +Inf overflow), their sum is ``total``.

        Buckets are kept per bucket, not cumulative: a fold writes only the buckets its
        observations fell in (a few per route rather than all of them), and the exposition
        adds them up into Prometheus's cumulative ``le`` buckets and ``_count``."""
        assert len(per_bucket) == len(family.buckets) + 1
        for bound, count in zip((*family.buckets, math.inf), per_bucket, strict=True):
            self.inc(_bucket(family), (*labels, le_label(bound)), count)
        self.inc(_sum(family), labels, total)


def histogram_series(family: Family, labels: Sequence[str]) -> list[SeriesKey]:
    """The stored series of one histogram child: its per-bucket counts and its sum."""
    bounds = (*family.buckets, math.inf)
    return [
        *((family.name + "_bucket", (*labels, le_label(b))) for b in bounds),
        (family.name + "_sum", tuple(labels)),
    ]


def le_label(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _bucket(family: Family) -> Family:
    return Family(family.name + "_bucket", "counter", family.help, (*family.labels, "le"))


def _sum(family: Family) -> Family:
    return Family(family.name + "_sum", "counter", family.help, family.labels)


class FoldContext:
    """A collector's view of one fold: a REPEATABLE READ platform transaction, the ops
    transaction the results commit in, and the settings.

    The ops transaction starts, under the leader's fence, only when the fold first uses
    it: a fold with nothing to write costs the ops database nothing."""

    def __init__(
        self,
        platform: psycopg.Connection[Any],
        ops: psycopg.Connection[Any],
        settings: Settings,
        fence: Callable[[psycopg.Connection[Any]], datetime],
    ) -> None:
        self.platform = platform
        self.settings = settings
        self._ops = ops
        self._fence = fence
        self._now: datetime | None = None

    @property
    def ops(self) -> psycopg.Connection[Any]:
        """The ops connection, fenced: this fold may write under the leader's epoch."""
        self._fenced()
        return self._ops

    @property
    def now(self) -> datetime:
        """The ops database's clock when the fold first used it."""
        return self._fenced()

    @property
    def opened(self) -> bool:
        """Whether the fold has used the ops connection."""
        return self._now is not None

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.platform.execute(sql, params).fetchall()

    def _fenced(self) -> datetime:
        if self._now is None:
            self._now = self._fence(self._ops)
        return self._now


class Collector(ABC):
    """A named group of KPI families computed from a few platform tables."""

    name: str
    # Whether a fold's queries must see one snapshot (a REPEATABLE READ transaction). A
    # collector whose fold is a single query, and whose gauges need not agree with it, runs
    # each query in a transaction of its own and saves a BEGIN and a COMMIT per fold.
    one_snapshot: bool = True
    # Whether a gauge's value moves with the clock as well as with commits (a window of the
    # last 24 h, an age threshold): then it refreshes every gauge interval even when the
    # platform commits nothing.
    gauges_slide: bool = True

    def __init__(self, settings: Settings, families: dict[str, Family]) -> None:
        self.settings = settings
        self.families = families

    @property
    @abstractmethod
    def owned(self) -> tuple[str, ...]:
        """Names of the families this collector produces."""

    def family(self, name: str) -> Family:
        return self.families[name]

    @abstractmethod
    def earliest(self, platform: psycopg.Connection[Any]) -> datetime | None:
        """The oldest event time this collector would fold (where a first fold starts)."""

    @abstractmethod
    def fold(self, ctx: FoldContext, since: datetime, until: datetime, changes: Changes) -> None:
        """Fold the events with event time in ``[since, until)``."""

    def refresh_gauges(self, ctx: FoldContext, changes: Changes) -> None:  # noqa: B027 - optional hook
        """Recompute state gauges with bounded queries; most collectors have none."""

    @property
    def has_gauges(self) -> bool:
        return type(self).refresh_gauges is not Collector.refresh_gauges

    def zero_series(self) -> Iterable[SeriesKey]:
        """Series that exist from the start (at zero): known label combinations."""
        return ()


def earliest_of(platform: psycopg.Connection[Any], sql: str) -> datetime | None:
    """Run a ``SELECT least(min(...), ...)`` over indexed event columns."""
    row = platform.execute(sql).fetchone()
    return row[0] if row else None
