"""Bookings: confirmations, booked revenue, double bookings, stuck bookings; site sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from core.keyed_hash import keyed_digest
from exporters.collector import Changes, Collector, FoldContext, SeriesKey, earliest_of
from exporters.families import OTHER
from exporters.queries import bookings as q
from exporters.queries import conflicts as ops_q


class BookingsCollector(Collector):
    name = "bookings"
    owned = (
        "opsdeck_bookings_confirmed_total",
        "opsdeck_booked_revenue_cents_total",
        "opsdeck_booking_conflicts_total",
        "opsdeck_bookings_unprocessed",
    )

    def earliest(self, platform: psycopg.Connection[Any]) -> datetime | None:
        return earliest_of(platform, q.EARLIEST)

    def fold(self, ctx: FoldContext, since: datetime, until: datetime, changes: Changes) -> None:
        window = {"since": since, "until": until}
        currencies = list(self.settings.exporter.currencies)
        for currency, count, amount in ctx.rows(q.CONFIRMED, {**window, "currencies": currencies}):
            changes.inc(self.family("opsdeck_bookings_confirmed_total"), (), count)
            changes.inc(self.family("opsdeck_booked_revenue_cents_total"), (currency,), amount)
        conflicts = ctx.rows(q.CONFLICTS, window)
        if conflicts:
            names = (
                "booking",
                "other",
                "resource",
                "location",
                "customer",
                "start",
                "end",
                "confirmed",
            )
            columns = dict(zip(names, map(list, zip(*conflicts, strict=True)), strict=True))
            columns["customer_ref"] = [self.customer_ref(c) for c in columns["customer"]]
            inserted = ctx.ops.execute(ops_q.RECORD, columns).fetchall()
            changes.inc(self.family("opsdeck_booking_conflicts_total"), (), len(inserted))
        ended = ctx.rows(q.ENDED, window)
        if ended:
            ids, statuses, at = map(list, zip(*ended, strict=True))
            ctx.ops.execute(ops_q.RESOLVE, {"ids": ids, "statuses": statuses, "at": at})

    def customer_ref(self, customer_id: int) -> str | None:
        """What Grafana shows for the customer: a keyed hash, none without the key."""
        key = self.settings.exporter.customer_ref_key
        if key is None:
            return None
        return "cus_" + keyed_digest(key.get_secret_value().encode(), str(customer_id), 8)

    def refresh_gauges(self, ctx: FoldContext, changes: Changes) -> None:
        after = self.settings.thresholds.unprocessed_after_seconds
        (count,) = ctx.rows(q.UNPROCESSED, {"after": after})[0]
        changes.set(self.family("opsdeck_bookings_unprocessed"), (), count)

    def zero_series(self) -> list[SeriesKey]:
        currencies = (*self.settings.exporter.currencies, OTHER)
        return [
            ("opsdeck_bookings_confirmed_total", ()),
            ("opsdeck_booking_conflicts_total", ()),
            *(("opsdeck_booked_revenue_cents_total", (c,)) for c in currencies),
        ]


class SessionsCollector(Collector):
    name = "sessions"
    one_snapshot = False
    owned = ("opsdeck_site_sessions_total",)

    def earliest(self, platform: psycopg.Connection[Any]) -> datetime | None:
        return earliest_of(platform, q.SESSIONS_EARLIEST)

    def fold(self, ctx: FoldContext, since: datetime, until: datetime, changes: Changes) -> None:
        (count,) = ctx.rows(q.SESSIONS, {"since": since, "until": until})[0]
        changes.inc(self.family("opsdeck_site_sessions_total"), (), count)

    def zero_series(self) -> list[SeriesKey]:
        return [("opsdeck_site_sessions_total", ())]
