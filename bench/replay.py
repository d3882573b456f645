"""The exporter's KPI series replayed from a history's rows, one value per scrape instant.

For every step ``t`` of a :class:`Grid` a counter holds every row whose event time is at
or before ``t`` (all-time, so the first sample already carries everything before the
grid), exactly as the exporter's running totals would have read at ``t`` with no lag.
State gauges are rebuilt from the rows' transition times (:mod:`bench.replay_queries`).
The series are the exporter's own: its label sets, bounded by settings, plus its
zero-valued series (``Collector.zero_series``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from bench import replay_queries as q
from core.psp_webhooks import PROVIDERS
from core.settings import Settings
from exporters.collector import le_label
from exporters.families import kpi_families
from exporters.server import build_collectors

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs
Key = tuple[str, Labels]
Values = npt.NDArray[np.float64]
RECON_WINDOW = 86_400.0


@dataclass(frozen=True)
class Grid:
    """Sample instants ``first + k * step`` for ``k < count``; ``first`` is a multiple of
    ``step`` seconds since the epoch, as Prometheus's 15 s scrapes would roughly be."""

    first: int  # step number of the first sample
    count: int
    step: float

    @classmethod
    def ending(cls, end: datetime, days: float, step: float) -> Grid:
        """``days`` of samples, the last at or just after ``end``."""
        if step <= 0 or not float(step).is_integer():
            raise ValueError(f"the step must be a whole number of seconds, not {step}")
        last = math.ceil(end.timestamp() / step)
        count = round(days * 86_400 / step)
        return cls(last - count + 1, count, step)

    @property
    def end(self) -> datetime:
        return datetime.fromtimestamp((self.first + self.count - 1) * self.step, UTC)

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.first * self.step, UTC)

    def seconds(self) -> npt.NDArray[np.float64]:
        return (np.arange(self.count, dtype=np.float64) + self.first) * self.step

    def changes(self, buckets: str, values: str) -> Values:
        """Per-sample sums of ``values`` at step numbers ``buckets`` (both comma-separated;
        steps before the first sample count at the first)."""
        index = np.clip(numbers(buckets).astype(np.int64) - self.first, 0, self.count - 1)
        sums = np.bincount(index, weights=numbers(values), minlength=self.count)
        return np.asarray(sums, dtype=np.float64)


def numbers(text: str) -> Values:
    """A comma-separated list of numbers from SQL (see :mod:`bench.replay_queries`)."""
    return np.array(text.split(","), dtype=np.float64)


class Replay:
    """Accumulates per-sample changes by series; :meth:`series` gives running totals."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self._changes: dict[Key, Values] = {}
        self._values: dict[Key, Values] = {}

    def add(self, name: str, labels: dict[str, str], changes: Values) -> None:
        key = (name, tuple(sorted(labels.items())))
        known = self._changes.get(key)
        self._changes[key] = changes if known is None else known + changes

    def ensure(self, name: str, labels: dict[str, str]) -> None:
        self.add(name, labels, np.zeros(self.grid.count))

    def set(self, name: str, labels: dict[str, str], values: Values) -> None:
        """A series given as values, not changes (NaN: no sample at that instant)."""
        self._values[(name, tuple(sorted(labels.items())))] = values

    def series(self) -> Iterator[tuple[Key, Values]]:
        """Every series with its value at each sample of the grid, by name and labels."""
        for key in sorted({*self._changes, *self._values}):
            values = self._values.get(key)
            yield key, np.cumsum(self._changes[key]) if values is None else values


Rows = list[tuple[Any, ...]]
Fetch = Callable[[str], Rows]


def replay(conn: psycopg.Connection[Any], settings: Settings, grid: Grid) -> Replay:
    """Every KPI series of the exporter over ``grid``, from the rows in ``conn``."""
    ex = settings.exporter
    params = {
        "bin": timedelta(seconds=grid.step),
        "seconds": int(grid.step),
        "end": grid.end,
        "since": datetime.fromtimestamp((grid.first - 1) * grid.step - RECON_WINDOW, UTC),
        "currencies": list(ex.currencies),
        "failure_codes": list(ex.failure_codes),
        "psps": list(PROVIDERS),
        "routes": list(ex.api_routes),
        "methods": list(ex.methods),
        "providers": list(ex.calendar_providers),
        "services": list(ex.services),
        "after": settings.thresholds.unprocessed_after_seconds,
        "grace": settings.thresholds.reconciliation_grace_seconds,
    }

    def fetch(sql: str) -> Rows:
        return conn.execute(sql, params).fetchall()

    conn.execute(q.WORK_MEM)

    out = Replay(grid)
    _zero_series(settings, out)
    for part in (_bookings, _payments, _activity, _histograms):
        part(fetch, settings, out)
    _gauges(fetch, settings, out)
    return out


def _zero_series(settings: Settings, out: Replay) -> None:
    families = kpi_families(settings.exporter)
    for collector in build_collectors(settings):
        for name, values in collector.zero_series():
            base = name.removesuffix("_bucket").removesuffix("_sum")
            family = families.get(name) or families[base]
            names = (*family.labels, "le") if name.endswith("_bucket") else family.labels
            out.ensure(name, dict(zip(names, values, strict=True)))


def _bookings(fetch: Fetch, settings: Settings, out: Replay) -> None:
    g = out.grid
    for currency, buckets, counts, amounts in fetch(q.CONFIRMED):
        out.add("opsdeck_bookings_confirmed_total", {}, g.changes(buckets, counts))
        out.add(
            "opsdeck_booked_revenue_cents_total",
            {"currency": currency},
            g.changes(buckets, amounts),
        )
    for buckets, counts in fetch(q.SESSIONS):
        out.add("opsdeck_site_sessions_total", {}, g.changes(buckets, counts))
    for buckets, counts in fetch(q.CONFLICTS):
        out.add("opsdeck_booking_conflicts_total", {}, g.changes(buckets, counts))


def _payments(fetch: Fetch, settings: Settings, out: Replay) -> None:
    g = out.grid
    for mode, currency, psp, buckets, counts, amounts, retried in fetch(q.SUCCEEDED):
        n = g.changes(buckets, counts)
        outcome = {"outcome": "succeeded", "livemode": mode}
        out.add("opsdeck_payment_attempts_total", {**outcome, "failure_code": "none"}, n)
        out.add("opsdeck_psp_payment_attempts_total", {**outcome, "psp": psp}, n)
        volume = g.changes(buckets, amounts)
        out.add("opsdeck_payment_volume_cents_total", {**outcome, "currency": currency}, volume)
        out.add("opsdeck_payment_events_total", {"type": "charge.succeeded", "livemode": mode}, n)
        recovered = g.changes(buckets, retried)
        out.add("opsdeck_payment_retries_recovered_total", {"livemode": mode}, recovered)
    for mode, code, currency, psp, buckets, counts, amounts in fetch(q.FAILED):
        n = g.changes(buckets, counts)
        outcome = {"outcome": "failed", "livemode": mode}
        out.add("opsdeck_payment_attempts_total", {**outcome, "failure_code": code}, n)
        out.add("opsdeck_psp_payment_attempts_total", {**outcome, "psp": psp}, n)
        volume = g.changes(buckets, amounts)
        out.add("opsdeck_payment_volume_cents_total", {**outcome, "currency": currency}, volume)
        out.add("opsdeck_payment_events_total", {"type": "charge.failed", "livemode": mode}, n)
    for mode, buckets, counts in fetch(q.RETRIES):
        out.add("opsdeck_payment_retries_total", {"livemode": mode}, g.changes(buckets, counts))
    for mode, currency, buckets, counts, amounts in fetch(q.REFUNDS):
        labels = {"currency": currency, "livemode": mode}
        out.add("opsdeck_refunds_cents_total", labels, g.changes(buckets, amounts))
        events = {"type": "charge.refunded", "livemode": mode}
        out.add("opsdeck_payment_events_total", events, g.changes(buckets, counts))
    for mode, buckets, counts in fetch(q.CHARGEBACKS):
        n = g.changes(buckets, counts)
        out.add("opsdeck_chargebacks_total", {"livemode": mode}, n)
        events = {"type": "charge.dispute.created", "livemode": mode}
        out.add("opsdeck_payment_events_total", events, n)


def _activity(fetch: Fetch, settings: Settings, out: Replay) -> None:
    g = out.grid
    for route, method, status_class, mode, buckets, counts in fetch(q.API_REQUESTS):
        labels = {"route": route, "method": method, "status_class": status_class, "livemode": mode}
        out.add("opsdeck_api_requests_total", labels, g.changes(buckets, counts))
    for provider, result, buckets, counts in fetch(q.CALENDAR_SYNCS):
        labels = {"provider": provider, "result": result}
        out.add("opsdeck_calendar_syncs_total", labels, g.changes(buckets, counts))
    for service, result, buckets, counts in fetch(q.SERVICE_CHECKS):
        labels = {"service": service, "result": result}
        out.add("opsdeck_service_checks_total", labels, g.changes(buckets, counts))


def _histograms(fetch: Fetch, settings: Settings, out: Replay) -> None:
    """Per-bucket counts made cumulative in ``le``, plus ``_count`` and ``_sum``."""
    families = kpi_families(settings.exporter)
    api = families["opsdeck_api_request_duration_seconds"]
    by_route: dict[str, list[tuple[int, Values, Values]]] = {}
    for route, index, buckets, counts, seconds in fetch(
        q.api_durations([b * 1000 for b in api.buckets])
    ):
        by_route.setdefault(route, []).append(
            (int(index), out.grid.changes(buckets, counts), out.grid.changes(buckets, seconds))
        )
    for route, parts in by_route.items():
        _histogram(out, api.name, {"route": route}, api.buckets, parts)
    tickets = families["opsdeck_support_ticket_resolution_seconds"]
    parts = [
        (int(index), out.grid.changes(buckets, counts), out.grid.changes(buckets, seconds))
        for index, buckets, counts, seconds in fetch(q.ticket_resolutions(tickets.buckets))
    ]
    _histogram(out, tickets.name, {}, tickets.buckets, parts)


def _histogram(
    out: Replay,
    name: str,
    labels: dict[str, str],
    bounds: tuple[float, ...],
    parts: list[tuple[int, Values, Values]],
) -> None:
    zero = np.zeros(out.grid.count)
    per_bucket = [zero] * (len(bounds) + 1)
    total = zero
    for index, counts, seconds in parts:
        per_bucket[index] = per_bucket[index] + counts
        total = total + seconds
    running = zero
    for bound, counts in zip((*bounds, math.inf), per_bucket, strict=True):
        running = running + counts
        out.add(f"{name}_bucket", {**labels, "le": le_label(bound)}, running)
    out.add(f"{name}_count", labels, running)
    out.add(f"{name}_sum", labels, total)


def _gauges(fetch: Fetch, settings: Settings, out: Replay) -> None:
    g = out.grid
    for buckets, changes in fetch(q.UNPROCESSED):
        out.add("opsdeck_bookings_unprocessed", {}, g.changes(buckets, changes))
    for buckets, changes in fetch(q.TICKETS_OPEN):
        out.add("opsdeck_support_tickets_open", {}, g.changes(buckets, changes))
    window = {"window": "24h"}
    for buckets, internal, delta, mismatches in fetch(q.RECONCILIATION):
        cents = np.cumsum(g.changes(buckets, internal))
        drift = np.cumsum(g.changes(buckets, delta))
        ratio = np.divide(drift, cents, out=np.zeros(g.count), where=cents > 0)
        out.set("opsdeck_payment_reconciliation_drift_ratio", window, ratio)
        out.add("opsdeck_payment_reconciliation_mismatches", window, g.changes(buckets, mismatches))
    stale = settings.thresholds.service_check_stale_seconds
    now = g.seconds()
    for service, buckets, checked, ok in fetch(q.SERVICE_LATEST):
        order = np.argsort(numbers(buckets), kind="stable")
        index = numbers(buckets)[order].astype(np.int64) - g.first
        checked_at, passed = numbers(checked)[order], numbers(ok)[order]
        latest = np.full(g.count, -1, dtype=np.int64)  # per sample: row of its latest check
        inside = index >= 0
        latest[index[inside]] = np.flatnonzero(inside)
        before = np.flatnonzero(~inside)
        latest[0] = max(latest[0], before[-1] if len(before) else -1)
        latest = np.maximum.accumulate(latest)
        seen = latest >= 0
        at = np.where(seen, checked_at[latest], np.nan)
        fresh = np.where(seen, at >= now - stale, False)
        labels = {"service": service}
        out.set("opsdeck_service_last_check_timestamp_seconds", labels, at)
        out.set("opsdeck_service_up", labels, np.where(seen, passed[latest], np.nan) * fresh)
