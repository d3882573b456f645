"""The Command Center: seed 001's single screen, row by row as its wireframe draws it.

Row 1 holds the eight top-line tiles coloured by the alert thresholds in settings; row 2
the live operational charts, then the business alerts' panels (stuck bookings, chargebacks,
payment failures against their baseline, each PSP's success); row 3 the incident and
activity tables from PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from core import recording_rules as rec
from core.psp_webhooks import PROVIDERS
from core.settings import Thresholds
from dashboards.links import Link, action, alert_actions, detail, drilldown
from dashboards.panels import (
    BLUE,
    GREEN,
    PROMETHEUS,
    RED,
    above,
    chart,
    override,
    query,
    series_heatmap,
    size,
    sql_table,
    steps,
    tile,
)
from dashboards.queries import command_center as sql_queries
from dashboards.render import frame, multi_choice
from dashboards.sdk import dash

UID = "opsdeck-command-center"
TITLE = "opsdeck / Command Center"
TILE_W, TILE_H = 3, 5
TTR = "Avg hours to resolve"
PAYMENT_EVENTS = {
    "charge.dispute.created": "critical",
    "charge.failed": "warning",
    "charge.refunded": "notice",
    "charge.succeeded": "info",
}


def _row1_business() -> list[Any]:
    neutral = steps((None, BLUE))
    return [
        tile(
            "Active Bookings (24h)",
            "Bookings confirmed in the last 24 hours (counted at confirmation).",
            [query(rec.BOOKINGS_24H, "Confirmed", instant=True)],
            unit="short",
            decimals=0,
            thresholds=neutral,
            links=[
                drilldown("Confirmed bookings", "/bookings", status="confirmed"),
                action("create-incident", panel="active-bookings"),
            ],
        ),
        tile(
            "Booked Revenue (24h)",
            "Amount of the bookings confirmed in the last 24 hours, one value per currency.",
            [query(f"{rec.REVENUE_24H} / 100", "{{currency}}", instant=True)],
            unit="short",
            decimals=2,
            thresholds=neutral,
            links=[
                drilldown("Captured payments", "/payments", status="captured"),
                drilldown("Payouts", "/payouts"),
                action("open-finance-ticket", panel="booked-revenue"),
            ],
        ),
        tile(
            "Conversion %",
            "Confirmed bookings per site session over the selected time range.",
            [
                query(
                    "sum(increase(opsdeck_bookings_confirmed_total[$__range]))"
                    " / sum(increase(opsdeck_site_sessions_total[$__range]))",
                    "Conversion",
                    instant=True,
                )
            ],
            unit="percentunit",
            decimals=1,
            thresholds=neutral,
            links=[
                drilldown("Usage", "/usage"),
                drilldown("Bookings", "/bookings"),
                action("create-incident", panel="conversion"),
            ],
        ),
    ]


def _row1_risk(t: Thresholds) -> list[Any]:
    return [
        tile(
            "Booking Conflict Rate",
            "Double bookings per confirmed booking over 24 h; red above the "
            f"{t.booking_conflict_rate:.2%} alert threshold.",
            [query(rec.CONFLICT_RATE_24H, "Conflict rate", instant=True)],
            unit="percentunit",
            decimals=2,
            thresholds=above(t.booking_conflict_rate),
            links=[
                drilldown("Double bookings", "/bookings", double_booked="true"),
                *alert_actions("BookingConflictRateHigh", ("notify-partners", "maintenance-on")),
            ],
        ),
        tile(
            "Payment Reconciliation Drift",
            "|internal − PSP| / internal over transactions of the last 24 h; orange above "
            f"{t.reconciliation_drift:.1%}, red above {t.reconciliation_drift_suspend_payouts:.0%}"
            " (suspend payouts).",
            [
                query(
                    'max(opsdeck_payment_reconciliation_drift_ratio{window="24h"})',
                    "Drift",
                    instant=True,
                )
            ],
            unit="percentunit",
            decimals=2,
            thresholds=above(t.reconciliation_drift_suspend_payouts, t.reconciliation_drift),
            links=[
                drilldown("Reconciliation ledger", "/reconciliation", window="24h"),
                action("suspend-payouts", alertname="PaymentReconciliationDriftSuspendPayouts"),
                action("open-finance-ticket", alertname="PaymentReconciliationDriftHigh"),
                action("notify-partners", alertname="PaymentReconciliationDriftHigh"),
            ],
        ),
        tile(
            "API 5xx Error Rate",
            "Share of API responses that were 5xx over the last 5 minutes; red above "
            f"{t.api_5xx_rate:.0%}.",
            [query(rec.API_5XX_RATIO, "5xx", instant=True)],
            unit="percentunit",
            decimals=2,
            thresholds=above(t.api_5xx_rate),
            links=[
                drilldown("5xx requests", "/api-logs", status_class="5xx"),
                *alert_actions("ApiErrorRateHigh", ("maintenance-on",)),
            ],
        ),
        tile(
            "Uptime",
            "Share of core services (booking API, payment webhook handler, calendar sync) "
            "whose latest health check passed; red when any is down.",
            [query("avg(opsdeck_service_up)", "Services up", instant=True)],
            unit="percentunit",
            decimals=0,
            thresholds=steps((None, RED), (1, GREEN)),
            links=[
                drilldown("Incidents", "/incidents"),
                *alert_actions("BookingApiDown", ("maintenance-on", "maintenance-off")),
            ],
        ),
        tile(
            "Open Support Tickets",
            "Tickets not resolved, and the average hours to resolve over 24 h (red above "
            f"the {t.support_time_to_resolve_seconds / 3600:g} h SLA).",
            [
                query("sum(opsdeck_support_tickets_open)", "Open", "A", instant=True),
                query(f"{rec.TIME_TO_RESOLVE_24H} / 3600", TTR, "B", instant=True),
            ],
            unit="none",
            decimals=1,
            thresholds=steps((None, BLUE)),
            overrides=[
                override(
                    TTR,
                    thresholds=above(t.support_time_to_resolve_seconds / 3600).build().to_json(),
                )
            ],
            links=[
                drilldown("Open tickets", "/support-tickets", status="open"),
                *alert_actions("SupportTimeToResolveHigh"),
            ],
        ),
    ]


def _row2(t: Thresholds) -> list[Any]:
    dashed: dict[str, object] = {"mode": "dash", "fill": "dash", "dash": [10, 10]}
    timeline = chart(
        "Bookings Timeline",
        "Confirmed bookings per minute against the last hour's mean and a ±3σ band; "
        "dashboard annotations mark sudden drops and spikes (|z| > 3).",
        [
            query(rec.BOOKINGS_PER_MINUTE, "Bookings/min", "A"),
            query(rec.BOOKINGS_BASELINE, "Baseline (1 h mean)", "B"),
            query(rec.BOOKINGS_UPPER, "Upper band (+3σ)", "C"),
            query(rec.BOOKINGS_LOWER, "Lower band (−3σ)", "D"),
        ],
        unit="cpm",
        links=[drilldown("Bookings", "/bookings"), action("create-incident", panel="timeline")],
        overrides=[
            override("Upper band (+3σ)", **{"custom.lineStyle": dashed}),
            override("Lower band (−3σ)", **{"custom.lineStyle": dashed}),
        ],
    )
    events = chart(
        "Payment Events",
        "Live payment events per minute by type (live mode); filter by severity above.",
        [
            query(
                "sum by (type) (rate(opsdeck_payment_events_total"
                '{livemode="true",type=~"$event_severity"}[$__rate_interval])) * 60',
                "{{type}}",
            )
        ],
        unit="cpm",
        links=[drilldown("Payments", "/payments"), drilldown("Refunds", "/refunds")],
    )
    webhooks = chart(
        "Webhook Queue Depth",
        "Unprocessed webhooks by direction, and the percentage of retries that end "
        f"delivered; the line marks the alert threshold ({t.webhook_queue_depth}).",
        [
            query("sum by (direction) (opsdeck_webhook_queue_depth)", "{{direction}}", "A"),
            query(
                "100 * sum(rate(opsdeck_webhook_retries_recovered_total[$__rate_interval]))"
                " / sum(rate(opsdeck_webhook_retries_total[$__rate_interval]))",
                "Retry success %",
                "B",
            ),
        ],
        unit="short",
        thresholds=above(t.webhook_queue_depth),
        links=[
            drilldown("Webhook deliveries", "/webhooks"),
            action("reprocess-dead-letters", alertname="WebhookRetryQueueHigh"),
        ],
    )
    syncs = chart(
        "Calendar Sync Failures",
        "Failed calendar syncs by provider per interval.",
        [
            query(
                'sum by (provider) (increase(opsdeck_calendar_syncs_total{result="failed"}'
                "[$__rate_interval]))",
                "{{provider}}",
            )
        ],
        unit="short",
        bars=True,
        links=[
            drilldown("Failures per calendar", "/calendar-sync-failures"),
            drilldown("Calendar syncs", "/calendar-syncs", result="failed"),
        ],
    )
    latency = series_heatmap(
        "API p95 Latency by Endpoint",
        "95th percentile latency of each booking-API endpoint; darker is slower.",
        query(
            "histogram_quantile(0.95, sum by (route, le) "
            "(rate(opsdeck_api_request_duration_seconds_bucket[$__rate_interval])))",
            "{{route}}",
        ),
        unit="s",
        links=[drilldown("Slow requests", "/api-logs", sort="duration_ms", livemode="all")],
    )
    return [
        size(timeline, 12, 8),
        size(events, 6, 8),
        size(webhooks, 6, 8),
        size(syncs, 12, 8),
        size(latency, 12, 8),
        *_row2_business(t),
    ]


def _row2_business(t: Thresholds) -> list[Any]:
    """The panels the business alerts link to, one line under the operational charts."""
    stuck = tile(
        "Stuck Bookings",
        f"Bookings still pending {t.unprocessed_after_seconds / 60:g} minutes after they were "
        f"made; red above {t.unprocessed_bookings} (the processing queue is stuck).",
        [query("sum(opsdeck_bookings_unprocessed)", "Stuck", instant=True)],
        unit="none",
        decimals=0,
        thresholds=above(t.unprocessed_bookings),
        links=[
            # The tile counts every stuck booking now, whatever the dashboard's range.
            Link("Stuck bookings", "/stuck-bookings?from=0&to=now"),
            *alert_actions("UnprocessedBookingsHigh", ("reprocess-dead-letters",)),
        ],
    )
    chargebacks = tile(
        "Chargeback Rate",
        "Chargebacks per captured live payment over 30 days; red above the "
        f"{t.chargeback_rate:.1%} alert threshold.",
        [query(rec.CHARGEBACK_RATE_30D, "Chargeback rate", instant=True)],
        unit="percentunit",
        decimals=2,
        thresholds=above(t.chargeback_rate),
        links=[
            drilldown("Chargebacks (30 days)", "/chargebacks", window="30d", livemode="true"),
            drilldown("Captured live payments", "/payments", status="captured", livemode="true"),
            *alert_actions("ChargebackRateHigh", ("open-finance-ticket",)),
        ],
    )
    return [
        size(stuck, 3, 8),
        size(chargebacks, 3, 8),
        size(_payment_failures(t), 9, 8),
        size(_psp_success(t), 9, 8),
    ]


def _payment_failures(t: Thresholds) -> Any:
    dashed: dict[str, object] = {"mode": "dash", "fill": "dash", "dash": [10, 10]}
    z = f"{t.payment_failure_anomaly_z:g}"
    band = f"Upper band (+{z}σ)"
    return chart(
        "Payment Failure Ratio",
        "Share of live payment attempts that failed over 5 minutes, against the mean of the "
        f"hour before and a +{z}σ band; the line marks the "
        f"{t.payment_failure_min_ratio:.0%} floor a spike must also pass.",
        [
            query(rec.PAYMENT_FAILURE_RATIO, "Failed", "A"),
            query(rec.PAYMENT_FAILURE_BASELINE, "Baseline (1 h mean)", "B"),
            query(rec.PAYMENT_FAILURE_UPPER, band, "C"),
        ],
        unit="percentunit",
        thresholds=above(t.payment_failure_min_ratio),
        overrides=[override(band, **{"custom.lineStyle": dashed})],
        links=[
            drilldown("Failed live payments", "/payments", status="failed", livemode="true"),
            *alert_actions("PaymentFailureRateSpike", ("open-finance-ticket",)),
        ],
    )


def _psp_success(t: Thresholds) -> Any:
    return chart(
        "PSP Success Ratio",
        "Share of each PSP's live payment attempts that succeeded over 5 minutes; below the "
        f"{t.psp_outage_success_ratio:.0%} line, with attempts still coming, the PSP is out.",
        [query(rec.PSP_SUCCESS_RATIO, "{{psp}}")],
        unit="percentunit",
        thresholds=steps((None, RED), (t.psp_outage_success_ratio, GREEN)),
        links=[
            *(
                drilldown(f"Failed {psp} payments", "/payments", psp=psp, status="failed")
                for psp in PROVIDERS
            ),
            *alert_actions("PspOutage", ("notify-partners",)),
        ],
    )


def _row3() -> list[Any]:
    incidents = sql_table(
        "Active Incidents",
        "Open incidents by severity; a row opens the incident and its runbook.",
        sql_queries.ACTIVE_INCIDENTS,
        links=[
            detail("Open incident", "/incidents/${__data.fields.id}"),
            action("acknowledge", incident="${__data.fields.id}"),
        ],
    )
    double_bookings = sql_table(
        "Recent Double-bookings",
        "Confirmed bookings overlapping an earlier one on the same resource (customer masked).",
        sql_queries.RECENT_DOUBLE_BOOKINGS,
        links=[
            detail("Double booking", "/double-bookings/${__data.fields.booking_id}"),
            action("notify-partners", booking="${__data.fields.booking_id}"),
            action("create-incident", booking="${__data.fields.booking_id}"),
        ],
    )
    mismatches = sql_table(
        "Recent Payment Mismatches",
        "Transactions whose PSP amount differs from ours or is missing, largest delta first.",
        sql_queries.RECENT_PAYMENT_MISMATCHES,
        links=[
            detail("Payment", "/payments/${__data.fields.transaction_id}"),
            action("open-finance-ticket", transaction="${__data.fields.transaction_id}"),
            action("suspend-payouts", transaction="${__data.fields.transaction_id}"),
        ],
    )
    audit = sql_table(
        "Audit Trail",
        "Admin actions, system changes and manual overrides, newest first.",
        sql_queries.AUDIT_TRAIL,
        links=[
            drilldown(
                "Audit log",
                "/audit",
                target_type="${__data.fields.target_type}",
                target_id="${__data.fields.target_id}",
            ),
            action("create-incident", panel="audit-trail"),
        ],
    )
    return [
        size(incidents, 12, 8),
        size(double_bookings, 6, 8),
        size(mismatches, 6, 8),
        size(audit, 24, 8),
    ]


def _anomaly(name: str, expr: str, colour: str) -> Any:
    return (
        dash.AnnotationQuery()
        .name(name)
        .datasource(PROMETHEUS)
        .enable(True)
        .icon_color(colour)
        .expr(expr)
        .step("1m")
        .title_format(name)
        .text_format("z-score {{value}}")
    )


def build(thresholds: Thresholds, *, api_url: str) -> Any:
    severity = multi_choice(
        "event_severity", "Payment event severity", {s: e for e, s in PAYMENT_EVENTS.items()}
    )
    board = frame(
        UID,
        TITLE,
        "Seed 001's single screen: business KPIs, live operational health, incidents.",
        api_url=api_url,
        postgres=True,
        variables=[severity],
    )
    z, limit = rec.BOOKINGS_ZSCORE, f"{thresholds.bookings_anomaly_z:g}"
    board = board.annotation(_anomaly("Booking drops", f"{z} < -{limit}", "red"))
    board = board.annotation(_anomaly("Booking spikes", f"{z} > {limit}", "orange"))
    tiles = _row1_business() + _row1_risk(thresholds)
    rows = (
        ("Business KPIs", [size(p, TILE_W, TILE_H) for p in tiles]),
        ("Operational health", _row2(thresholds)),
        ("Incidents & activity", _row3()),
    )
    for title, panels in rows:
        board = board.with_row(dash.Row(title))
        for panel in panels:
            board = board.with_panel(panel)
    return board
