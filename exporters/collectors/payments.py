"""Payments: attempts by outcome and failure code, attempts by PSP, volume, the event feed,
refunds, chargebacks, retries and their recovery."""

from __future__ import annotations

from datetime import datetime
from itertools import product
from typing import Any

import psycopg

from core.psp_webhooks import PROVIDERS
from exporters.collector import Changes, Collector, FoldContext, SeriesKey, earliest_of
from exporters.families import LIVEMODES, OTHER, PAYMENT_EVENTS
from exporters.queries import payments as q


def _mode(livemode: bool) -> str:
    return "true" if livemode else "false"


class PaymentsCollector(Collector):
    name = "payments"
    owned = (
        "opsdeck_payment_attempts_total",
        "opsdeck_psp_payment_attempts_total",
        "opsdeck_payment_volume_cents_total",
        "opsdeck_payment_events_total",
        "opsdeck_refunds_cents_total",
        "opsdeck_chargebacks_total",
        "opsdeck_payment_retries_total",
        "opsdeck_payment_retries_recovered_total",
    )

    def earliest(self, platform: psycopg.Connection[Any]) -> datetime | None:
        return earliest_of(platform, q.EARLIEST)

    def fold(self, ctx: FoldContext, since: datetime, until: datetime, changes: Changes) -> None:
        exporter = self.settings.exporter
        params = {
            "since": since,
            "until": until,
            "currencies": list(exporter.currencies),
            "failure_codes": list(exporter.failure_codes),
            "psps": list(PROVIDERS),
        }
        attempts = self.family("opsdeck_payment_attempts_total")
        by_psp = self.family("opsdeck_psp_payment_attempts_total")
        volume = self.family("opsdeck_payment_volume_cents_total")
        events = self.family("opsdeck_payment_events_total")
        for live, currency, psp, count, amount, retried in ctx.rows(q.SUCCEEDED, params):
            mode = _mode(live)
            changes.inc(attempts, ("succeeded", "none", mode), count)
            changes.inc(by_psp, (psp, "succeeded", mode), count)
            changes.inc(volume, ("succeeded", currency, mode), amount)
            changes.inc(events, ("charge.succeeded", mode), count)
            changes.inc(self.family("opsdeck_payment_retries_recovered_total"), (mode,), retried)
        for live, code, currency, psp, count, amount in ctx.rows(q.FAILED, params):
            mode = _mode(live)
            changes.inc(attempts, ("failed", code, mode), count)
            changes.inc(by_psp, (psp, "failed", mode), count)
            changes.inc(volume, ("failed", currency, mode), amount)
            changes.inc(events, ("charge.failed", mode), count)
        for live, count in ctx.rows(q.RETRIES, params):
            changes.inc(self.family("opsdeck_payment_retries_total"), (_mode(live),), count)
        for live, currency, count, amount in ctx.rows(q.REFUNDS, params):
            changes.inc(self.family("opsdeck_refunds_cents_total"), (currency, _mode(live)), amount)
            changes.inc(events, ("charge.refunded", _mode(live)), count)
        for live, count in ctx.rows(q.CHARGEBACKS, params):
            changes.inc(self.family("opsdeck_chargebacks_total"), (_mode(live),), count)
            changes.inc(events, ("charge.dispute.created", _mode(live)), count)

    def zero_series(self) -> list[SeriesKey]:
        exporter = self.settings.exporter
        currencies = (*exporter.currencies, OTHER)
        codes = (*exporter.failure_codes, OTHER)
        series: list[SeriesKey] = []
        for mode in LIVEMODES:
            series.append(("opsdeck_payment_attempts_total", ("succeeded", "none", mode)))
            series += [("opsdeck_payment_attempts_total", ("failed", c, mode)) for c in codes]
            series += [
                ("opsdeck_psp_payment_attempts_total", (p, o, mode))
                for p, o in product((*PROVIDERS, OTHER), ("succeeded", "failed"))
            ]
            series += [
                ("opsdeck_payment_volume_cents_total", (o, c, mode))
                for o, c in product(("succeeded", "failed"), currencies)
            ]
            series += [("opsdeck_payment_events_total", (e, mode)) for e in PAYMENT_EVENTS]
            series += [("opsdeck_refunds_cents_total", (c, mode)) for c in currencies]
            series += [
                (name, (mode,))
                for name in (
                    "opsdeck_chargebacks_total",
                    "opsdeck_payment_retries_total",
                    "opsdeck_payment_retries_recovered_total",
                )
            ]
        return series
