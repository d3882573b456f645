"""DESIGN.md's metric contract on a live /metrics: names, types, label names, HELP on every
family, bounded label values, a series count under budget, and promtool's lint clean."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.psp_webhooks import PROVIDERS
from core.settings import Settings
from tests.conftest import create_database, drop_database, with_database
from tests.exporters.harness import db_now, exporters

pytestmark = pytest.mark.slow

# The contract table of DESIGN.md: name -> (type, label names).
CONTRACT = {
    "opsdeck_bookings_confirmed": ("counter", set()),
    "opsdeck_booked_revenue_cents": ("counter", {"currency"}),
    "opsdeck_site_sessions": ("counter", set()),
    "opsdeck_booking_conflicts": ("counter", set()),
    "opsdeck_bookings_unprocessed": ("gauge", set()),
    "opsdeck_payment_attempts": ("counter", {"outcome", "failure_code", "livemode"}),
    "opsdeck_psp_payment_attempts": ("counter", {"psp", "outcome", "livemode"}),
    "opsdeck_payment_volume_cents": ("counter", {"outcome", "currency", "livemode"}),
    "opsdeck_payment_events": ("counter", {"type", "livemode"}),
    "opsdeck_refunds_cents": ("counter", {"currency", "livemode"}),
    "opsdeck_chargebacks": ("counter", {"livemode"}),
    "opsdeck_payment_retries": ("counter", {"livemode"}),
    "opsdeck_payment_retries_recovered": ("counter", {"livemode"}),
    "opsdeck_payment_reconciliation_drift_ratio": ("gauge", {"window"}),
    "opsdeck_payment_reconciliation_mismatches": ("gauge", {"window"}),
    "opsdeck_api_requests": ("counter", {"route", "method", "status_class", "livemode"}),
    "opsdeck_api_request_duration_seconds": ("histogram", {"route"}),
    "opsdeck_calendar_syncs": ("counter", {"provider", "result"}),
    "opsdeck_service_up": ("gauge", {"service"}),
    "opsdeck_service_last_check_timestamp_seconds": ("gauge", {"service"}),
    "opsdeck_service_checks": ("counter", {"service", "result"}),
    "opsdeck_support_tickets_open": ("gauge", set()),
    "opsdeck_support_ticket_resolution_seconds": ("histogram", set()),
    "opsdeck_collector_up": ("gauge", {"collector"}),
    "opsdeck_collector_duration_seconds": ("gauge", {"collector"}),
    "opsdeck_collector_lag_seconds": ("gauge", {"collector"}),
}
ENUMS = {
    "outcome": {"succeeded", "failed"},
    "failure_code": {
        "none",
        "card_declined",
        "insufficient_funds",
        "authentication_required",
        "expired_card",
        "processing_error",
        "other",
    },
    "livemode": {"true", "false"},
    "type": {"charge.succeeded", "charge.failed", "charge.refunded", "charge.dispute.created"},
    "status_class": {"1xx", "2xx", "3xx", "4xx", "5xx"},
    "result": {"ok", "failed"},
    "window": {"24h"},
}


@pytest.fixture(scope="module")
def exposition(
    admin_url: str, history_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    name = create_database(admin_url, history_template)
    url = with_database(admin_url, name)
    try:
        with exporters(url, tmp_path_factory.mktemp("contract")) as (exp,):
            exp.wait_caught_up(db_now(url))
            yield exp.scrape()
    finally:
        drop_database(admin_url, name)


def test_families_match_the_contract(exposition: str) -> None:
    families = {f.name: f for f in text_string_to_metric_families(exposition)}
    for name, (kind, labels) in CONTRACT.items():
        assert name in families, f"{name} missing"
        family = families[name]
        assert family.type == kind, name
        assert family.documentation.strip(), f"{name} has no HELP"
        seen = {k for s in family.samples for k in s.labels} - {"le"}
        assert seen == labels, (name, seen)


def test_label_values_are_bounded(exposition: str) -> None:
    settings = Settings()
    allowed = {
        **ENUMS,
        "currency": {*settings.exporter.currencies, "other"},
        "route": {*settings.exporter.api_routes, "other"},
        "method": {*settings.exporter.methods, "other"},
        "provider": {*settings.exporter.calendar_providers, "other"},
        "service": {*settings.exporter.services, "other"},
        "psp": {*PROVIDERS, "other"},
    }
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            for label, value in sample.labels.items():
                if label in allowed:
                    assert value in allowed[label], (family.name, label, value)


def test_series_count_within_budget(exposition: str) -> None:
    count = sum(len(f.samples) for f in text_string_to_metric_families(exposition))
    assert 0 < count <= Settings().exporter.series_budget


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian prometheus) not installed"
)
def test_promtool_check_metrics_is_clean(exposition: str, tmp_path: Path) -> None:
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout
    assert result.stderr.strip() == "", result.stderr
