"""Payments overview (seed 003): revenue, success, failures and recovery, one mode at a time.

``livemode`` and ``currency`` are single-choice variables: test and live payments, and
different currencies, are never added together.
"""

from __future__ import annotations

from typing import Any

from core.settings import ExporterSettings
from dashboards.links import action, drilldown
from dashboards.panels import (
    BLUE,
    GREEN,
    RED,
    chart,
    override,
    pie,
    prom_table,
    query,
    size,
    steps,
    tile,
    transform,
)
from dashboards.render import choice, frame
from dashboards.sdk import dash

UID = "opsdeck-payments"
TITLE = "opsdeck / Payments"
MODE = 'livemode="$livemode"'
CURRENCY = 'currency="$currency"'
# Seed 003's "Action" column: what to do about a failure of each category.
SUGGESTED_ACTIONS = {
    "card_declined": "request_new_card",
    "insufficient_funds": "retry_eligible",
    "authentication_required": "send_authentication_link",
    "expired_card": "request_card_update",
    "processing_error": "retry_now",
    "other": "review_manually",
}
CHANGE = "% vs previous period"
SUCCEEDED = ',outcome="succeeded"'
FAILED = ',outcome="failed"'


def _increase(selector: str, *, previous: bool = False, window: str = "$__range") -> str:
    shift = f" offset {window}" if previous else ""
    return f"sum(increase({selector}[{window}]{shift}))"


def _with_change(
    title: str,
    description: str,
    expr: Any,
    *,
    unit: str,
    good_when_up: bool,
    links: list[Any],
) -> Any:
    """A tile showing the value over the range and its change against the range before."""
    current, previous = expr(False), expr(True)
    up, down = (GREEN, RED) if good_when_up else (RED, GREEN)
    change = steps((None, down), (0, up)).build().to_json()
    return tile(
        title,
        f"{description} Below it, the change in % against the previous period of the same length.",
        [
            query(current, title, "A", instant=True),
            # No change is shown against an empty previous period (rather than "Infinity").
            query(f"100 * (({current}) / (({previous}) > 0) - 1)", CHANGE, "B", instant=True),
        ],
        unit=unit,
        decimals=1,
        thresholds=steps((None, BLUE)),
        overrides=[override(CHANGE, thresholds=change)],
        links=links,
    )


def _volume(outcome: str) -> str:
    return f'opsdeck_payment_volume_cents_total{{outcome="{outcome}",{MODE},{CURRENCY}}}'


def _attempts(extra: str = "") -> str:
    return f"opsdeck_payment_attempts_total{{{MODE}{extra}}}"


def _tiles() -> list[Any]:
    payments = drilldown("Payments", "/payments", livemode="$livemode", currency="$currency")
    failed = drilldown("Failed payments", "/payments", status="failed", livemode="$livemode")
    return [
        _with_change(
            "Revenue",
            "Captured amount in the selected currency and mode.",
            lambda prev: f"{_increase(_volume('succeeded'), previous=prev)} / 100",
            unit="short",
            good_when_up=True,
            links=[payments, drilldown("Payouts", "/payouts")],
        ),
        _with_change(
            "Success Rate",
            "Percentage of payment attempts that succeeded.",
            lambda prev: (
                f"100 * {_increase(_attempts(SUCCEEDED), previous=prev)}"
                f" / {_increase(_attempts(), previous=prev)}"
            ),
            unit="percent",
            good_when_up=True,
            links=[payments],
        ),
        _with_change(
            "Failed Revenue",
            "Amount of failed attempts in the selected currency and mode.",
            lambda prev: f"{_increase(_volume('failed'), previous=prev)} / 100",
            unit="short",
            good_when_up=False,
            links=[failed],
        ),
        _with_change(
            "Attempts",
            "Payment attempts, retries included.",
            lambda prev: _increase(_attempts(), previous=prev),
            unit="short",
            good_when_up=True,
            links=[payments],
        ),
    ]


def _suggested(expr: str) -> str:
    """Adds an ``action`` label per failure code (seed 003's suggested action)."""
    for code, suggestion in SUGGESTED_ACTIONS.items():
        expr = f'label_replace({expr}, "action", "{suggestion}", "failure_code", "{code}")'
    return expr


def _failures() -> list[Any]:
    failed = _attempts(FAILED)
    by_code = f"sum by (failure_code) (increase({failed}[$__range]))"
    lost = f"sum by (failure_code) (increase({_volume('failed')}[$__range])) / 100"
    row_link = drilldown(
        "Failed payments of this reason",
        "/payments",
        status="failed",
        failure_code="${__data.fields.failure_code}",
        livemode="$livemode",
    )
    breakdown = pie(
        "Failure Breakdown",
        "Failed attempts by failure category over the selected range.",
        query(by_code, "{{failure_code}}", instant=True),
        unit="short",
        links=[drilldown("Failed payments", "/payments", status="failed", livemode="$livemode")],
    )
    recovery = chart(
        "Recovery Rate Trend",
        "Share of retried payments (attempt > 1) that succeeded, per hour.",
        [
            query(
                f"sum(increase(opsdeck_payment_retries_recovered_total{{{MODE}}}[$__interval]))"
                f" / sum(increase(opsdeck_payment_retries_total{{{MODE}}}[$__interval]))",
                "Recovery rate",
            )
        ],
        unit="percentunit",
        interval="1h",
        links=[drilldown("Retried payments", "/payments", retried="true", livemode="$livemode")],
    )
    reasons = prom_table(
        "Top Failure Reasons",
        "Failure categories by count, with the revenue they lost and the suggested action.",
        [
            query(_suggested(by_code), "", "A", table=True),
            query(_suggested(lost), "", "B", table=True),
        ],
        unit="short",
        transformations=[
            transform("merge"),
            transform(
                "organize",
                excludeByName={"Time": True},
                indexByName={"failure_code": 0, "Value #A": 1, "Value #B": 2, "action": 3},
                renameByName={"Value #A": "Count", "Value #B": "Lost revenue"},
            ),
            transform("sortBy", sort=[{"field": "Count", "desc": True}]),
        ],
        links=[
            row_link,
            action("open-finance-ticket", failure_code="${__data.fields.failure_code}"),
        ],
    )
    return [size(breakdown, 12, 9), size(recovery, 12, 9), size(reasons, 24, 9)]


def _daily() -> list[Any]:
    payments = drilldown("Payments", "/payments", livemode="$livemode", currency="$currency")
    revenue = chart(
        "Daily Revenue",
        "Captured revenue per day in the selected currency and mode.",
        [query(f"sum(increase({_volume('succeeded')}[$__interval])) / 100", "Revenue")],
        unit="short",
        bars=True,
        interval="1d",
        links=[payments],
    )
    success = chart(
        "Daily Success Rate",
        "Share of the day's payment attempts that succeeded.",
        [
            query(
                f"sum(increase({_attempts(SUCCEEDED)}[$__interval]))"
                f" / sum(increase({_attempts()}[$__interval]))",
                "Success rate",
            )
        ],
        unit="percentunit",
        interval="1d",
        links=[payments],
    )
    return [size(revenue, 12, 8), size(success, 12, 8)]


def build(exporter: ExporterSettings, *, api_url: str) -> Any:
    board = frame(
        UID,
        TITLE,
        "Seed 003's payments overview: revenue, success, failures and recovery.",
        api_url=api_url,
        variables=[
            choice("livemode", "Mode (live / test)", ["true", "false"], "true"),
            choice("currency", "Currency", list(exporter.currencies), "USD"),
        ],
    ).time("now-7d", "now")
    board = board.with_row(dash.Row("Overview ($currency, livemode=$livemode)"))
    for panel in _tiles():
        board = board.with_panel(size(panel, 6, 5))
    for panel in _daily() + _failures():
        board = board.with_panel(panel)
    return board
