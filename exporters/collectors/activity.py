"""API requests, calendar syncs, service health, support tickets."""

from __future__ import annotations

from datetime import datetime
from itertools import product
from typing import Any

import psycopg

from exporters.collector import (
    Changes,
    Collector,
    FoldContext,
    SeriesKey,
    earliest_of,
    histogram_series,
)
from exporters.families import RESULTS
from exporters.queries import activity as q


class ApiCollector(Collector):
    name = "api"
    owned = ("opsdeck_api_requests_total", "opsdeck_api_request_duration_seconds")

    def earliest(self, platform: psycopg.Connection[Any]) -> datetime | None:
        return earliest_of(platform, q.API_EARLIEST)

    def fold(self, ctx: FoldContext, since: datetime, until: datetime, changes: Changes) -> None:
        exporter = self.settings.exporter
        params = {
            "since": since,
            "until": until,
            "routes": list(exporter.api_routes),
            "methods": list(exporter.methods),
        }
        requests = self.family("opsdeck_api_requests_total")
        for route, method, status_class, live, count in ctx.rows(q.API_REQUESTS, params):
            changes.inc(requests, (route, method, status_class, "true" if live else "false"), count)
        durations = self.family("opsdeck_api_request_duration_seconds")
        bounds_ms = [b * 1000 for b in durations.buckets]
        per_route: dict[str, tuple[list[float], float]] = {}
        for route, bucket, count, seconds in ctx.rows(q.api_durations(bounds_ms), params):
            buckets, total = per_route.get(route, ([0.0] * (len(bounds_ms) + 1), 0.0))
            buckets[bucket] += count
            per_route[route] = (buckets, total + float(seconds))
        for route, (buckets, total) in per_route.items():
            changes.observe(durations, (route,), buckets, total)


class CalendarCollector(Collector):
    name = "calendar"
    one_snapshot = False
    owned = ("opsdeck_calendar_syncs_total",)

    def earliest(self, platform: psycopg.Connection[Any]) -> datetime | None:
        return earliest_of(platform, q.CALENDAR_EARLIEST)

    def fold(self, ctx: FoldContext, since: datetime, until: datetime, changes: Changes) -> None:
        params = {
            "since": since,
            "until": until,
            "providers": list(self.settings.exporter.calendar_providers),
        }
        family = self.family("opsdeck_calendar_syncs_total")
        for provider, status, count in ctx.rows(q.CALENDAR_SYNCS, params):
            changes.inc(family, (provider, status), count)

    def zero_series(self) -> list[SeriesKey]:
        providers = self.settings.exporter.calendar_providers
        return [("opsdeck_calendar_syncs_total", (p, r)) for p, r in product(providers, RESULTS)]


class ServicesCollector(Collector):
    """Health checks: a counter per result, and per service the time of its latest check
    and whether the service is up.

    Up means the latest check passed *and* is fresher than ``service_check_stale_seconds``:
    when whatever writes the checks dies (often with the host of the service it checks),
    no failed check ever arrives, and the last ``ok`` must not keep the service up. The
    age is measured on every gauge refresh, which the engine runs on its clock whether or
    not new rows arrived; a service never checked at all has no series rather than a 0.
    """

    name = "services"
    one_snapshot = False
    owned = (
        "opsdeck_service_checks_total",
        "opsdeck_service_up",
        "opsdeck_service_last_check_timestamp_seconds",
    )

    def earliest(self, platform: psycopg.Connection[Any]) -> datetime | None:
        return earliest_of(platform, q.CHECKS_EARLIEST)

    def fold(self, ctx: FoldContext, since: datetime, until: datetime, changes: Changes) -> None:
        params = {"since": since, "until": until, "services": list(self.settings.exporter.services)}
        family = self.family("opsdeck_service_checks_total")
        for service, ok, count in ctx.rows(q.SERVICE_CHECKS, params):
            changes.inc(family, (service, "ok" if ok else "failed"), count)

    def refresh_gauges(self, ctx: FoldContext, changes: Changes) -> None:
        up = self.family("opsdeck_service_up")
        last = self.family("opsdeck_service_last_check_timestamp_seconds")
        params = {
            "services": list(self.settings.exporter.services),
            "stale_seconds": self.settings.thresholds.service_check_stale_seconds,
        }
        for service, ok, checked_at, stale in ctx.rows(q.SERVICE_LATEST, params):
            changes.set(up, (service,), 1.0 if ok and not stale else 0.0)
            changes.set(last, (service,), checked_at)

    def zero_series(self) -> list[SeriesKey]:
        services = self.settings.exporter.services
        return [("opsdeck_service_checks_total", (s, r)) for s, r in product(services, RESULTS)]


class SupportCollector(Collector):
    name = "support"
    one_snapshot = False
    gauges_slide = False  # open tickets change only with commits
    owned = ("opsdeck_support_ticket_resolution_seconds", "opsdeck_support_tickets_open")

    def earliest(self, platform: psycopg.Connection[Any]) -> datetime | None:
        return earliest_of(platform, q.TICKETS_EARLIEST)

    def fold(self, ctx: FoldContext, since: datetime, until: datetime, changes: Changes) -> None:
        family = self.family("opsdeck_support_ticket_resolution_seconds")
        buckets = [0.0] * (len(family.buckets) + 1)
        total = 0.0
        for bucket, count, seconds in ctx.rows(
            q.ticket_resolutions(family.buckets), {"since": since, "until": until}
        ):
            buckets[bucket] += count
            total += float(seconds)
        if any(buckets):
            changes.observe(family, (), buckets, total)

    def refresh_gauges(self, ctx: FoldContext, changes: Changes) -> None:
        (count,) = ctx.rows(q.TICKETS_OPEN)[0]
        changes.set(self.family("opsdeck_support_tickets_open"), (), count)

    def zero_series(self) -> list[SeriesKey]:
        return histogram_series(self.family("opsdeck_support_ticket_resolution_seconds"), ())
