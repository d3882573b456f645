"""The business alerts' panels on the Command Center: coloured by the thresholds in
settings, drawing the failure band the alert reads, and linked from their alerts."""

from __future__ import annotations

from typing import Any

from alert_rules.alerts import all_alerts
from core import recording_rules as rec
from core.settings import Settings, Thresholds
from dashboards import catalog, command_center, lint

PANELS = ("Stuck Bookings", "Chargeback Rate", "Payment Failure Ratio", "PSP Success Ratio")


def _panels(thresholds: Thresholds) -> dict[str, Any]:
    board = catalog.dashboards(Settings(thresholds=thresholds))[command_center.UID]
    return {p["title"]: p for p in lint.panels(board)}


def _steps(panel: dict[str, Any]) -> list[tuple[float | None, str]]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [(s["value"], s["color"]) for s in steps]


def test_panels_are_coloured_by_the_thresholds() -> None:
    t = Thresholds(
        unprocessed_bookings=25,
        chargeback_rate=0.008,
        payment_failure_min_ratio=0.3,
        psp_outage_success_ratio=0.6,
    )
    panels = _panels(t)
    assert _steps(panels["Stuck Bookings"]) == [(None, "green"), (25, "red")]
    assert _steps(panels["Chargeback Rate"]) == [(None, "green"), (0.008, "red")]
    assert _steps(panels["Payment Failure Ratio"]) == [(None, "green"), (0.3, "red")]
    assert _steps(panels["PSP Success Ratio"]) == [(None, "red"), (0.6, "green")]


def test_the_failure_panel_draws_what_the_alert_reads() -> None:
    panel = _panels(Thresholds())["Payment Failure Ratio"]
    exprs = [target["expr"] for target in panel["targets"]]
    assert exprs == [
        rec.PAYMENT_FAILURE_RATIO,
        rec.PAYMENT_FAILURE_BASELINE,
        rec.PAYMENT_FAILURE_UPPER,
    ]
    (spike,) = [a for a in all_alerts(Thresholds()) if a.name == "PaymentFailureRateSpike"]
    assert rec.PAYMENT_FAILURE_UPPER in spike.expr
    chargebacks = _panels(Thresholds())["Chargeback Rate"]
    assert [t["expr"] for t in chargebacks["targets"]] == [rec.CHARGEBACK_RATE_30D]


def test_alerts_link_to_their_own_panels() -> None:
    panel_of = {a.name: a.panel for a in all_alerts(Thresholds())}
    assert panel_of["UnprocessedBookingsHigh"] == "Stuck Bookings"
    assert panel_of["ChargebackRateHigh"] == "Chargeback Rate"
    assert panel_of["PaymentFailureRateSpike"] == "Payment Failure Ratio"
    assert panel_of["PspOutage"] == "PSP Success Ratio"
    assert panel_of["PaymentWebhookHandlerDown"] == panel_of["CalendarSyncDown"] == "Uptime"
    panels = _panels(Thresholds())
    for title in PANELS:
        urls = [link["url"] for link in panels[title]["fieldConfig"]["defaults"]["links"]]
        assert any("/actions/acknowledge?" in u and "alertname=" in u for u in urls), title
