"""Recording rules: the expensive windows (24 h, 30 d) and the anomaly bands.

Alerts and dashboards read these names instead of recomputing a 24-hour or 30-day
``increase`` on every evaluation and every panel refresh. The long windows run in their
own group every minute; nothing in them changes faster than that matters. Their floors
and the anomaly bands' widths are thresholds (``core.settings.Thresholds``).

The payment failure band is the hour that ended :data:`FAILURE_BASELINE_OFFSET` ago: a
spike is compared with the traffic it broke away from, not with itself. Against a window
that holds it, a step can never stand three standard deviations above the mean once it
fills a tenth of the window, so on a young Prometheus (minutes of history) it would never
show. Two minutes is about how long a step takes to carry the 5-minute ratio past the
band, and short enough that a Prometheus two minutes old already has a baseline.

A spike that lasts still enters the band after those two minutes and would lift it over
itself: the alert compares the ratio with the lowest band of the last
:data:`FAILURE_BAND_MEMORY`, the band of the traffic before the spike, so a sustained spike
keeps firing for that long instead of resolving while payments still fail.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import Thresholds

FAST_GROUP = "opsdeck-kpi-recording"
WINDOWS_GROUP = "opsdeck-kpi-windows"
WINDOWS_INTERVAL = "1m"
SELF_GROUP = "opsdeck-self-recording"
SELF_INTERVAL = "1m"

BOOKINGS_PER_MINUTE = "opsdeck:bookings_confirmed:per_minute"
BOOKINGS_BASELINE = "opsdeck:bookings_confirmed:per_minute:avg1h"
BOOKINGS_STDDEV = "opsdeck:bookings_confirmed:per_minute:stddev1h"
BOOKINGS_ZSCORE = "opsdeck:bookings_confirmed:per_minute:zscore1h"
BOOKINGS_UPPER = "opsdeck:bookings_confirmed:per_minute:upper_band1h"
BOOKINGS_LOWER = "opsdeck:bookings_confirmed:per_minute:lower_band1h"
API_5XX_RATIO = "opsdeck:api_requests:ratio_5xx_rate5m"

PAYMENT_FAILURE_RATIO = "opsdeck:payment_attempts_live:ratio_failed_rate5m"
PAYMENT_FAILURE_BASELINE = "opsdeck:payment_attempts_live:ratio_failed_rate5m:avg1h"
PAYMENT_FAILURE_STDDEV = "opsdeck:payment_attempts_live:ratio_failed_rate5m:stddev1h"
PAYMENT_FAILURE_UPPER = "opsdeck:payment_attempts_live:ratio_failed_rate5m:upper_band1h"
FAILURE_BASELINE_OFFSET = "2m"
FAILURE_BAND_MEMORY = "30m"
PSP_SUCCESS_RATIO = "opsdeck:psp_payment_attempts_live:ratio_succeeded_rate5m"
PSP_ATTEMPTS_PER_MINUTE = "opsdeck:psp_payment_attempts_live:per_minute_rate5m"

BOOKINGS_24H = "opsdeck:bookings_confirmed:increase24h"
CONFLICTS_24H = "opsdeck:booking_conflicts:increase24h"
CONFLICT_RATE_24H = "opsdeck:booking_conflict_rate:ratio24h"
REVENUE_24H = "opsdeck:booked_revenue_cents:increase24h"
CHARGEBACKS_30D = "opsdeck:chargebacks_live:increase30d"
SUCCEEDED_30D = "opsdeck:payments_succeeded_live:increase30d"
CHARGEBACK_RATE_30D = "opsdeck:chargeback_rate_live:ratio30d"
TIME_TO_RESOLVE_24H = "opsdeck:support_ticket_resolution_seconds:avg24h"

API_HTTP_RATE = "opsdeck:api_http_requests:rate5m"
API_HTTP_DURATION_BUCKETS = "opsdeck:api_http_request_duration_seconds_bucket:rate5m"


@dataclass(frozen=True)
class Recording:
    record: str
    expr: str


def fast(t: Thresholds) -> tuple[Recording, ...]:
    """Every evaluation: the anomaly bands, the API's 5xx ratio, the PSPs' success."""
    z, floor = _number(t.bookings_anomaly_z), _number(t.bookings_anomaly_min_stddev)
    return (
        Recording(BOOKINGS_PER_MINUTE, "sum(rate(opsdeck_bookings_confirmed_total[2m])) * 60"),
        Recording(BOOKINGS_BASELINE, f"avg_over_time({BOOKINGS_PER_MINUTE}[1h])"),
        Recording(BOOKINGS_STDDEV, f"stddev_over_time({BOOKINGS_PER_MINUTE}[1h])"),
        Recording(
            BOOKINGS_ZSCORE,
            f"({BOOKINGS_PER_MINUTE} - {BOOKINGS_BASELINE})"
            f" / clamp_min({BOOKINGS_STDDEV}, {floor})",
        ),
        Recording(BOOKINGS_UPPER, f"{BOOKINGS_BASELINE} + {z} * {BOOKINGS_STDDEV}"),
        Recording(BOOKINGS_LOWER, f"clamp_min({BOOKINGS_BASELINE} - {z} * {BOOKINGS_STDDEV}, 0)"),
        Recording(
            API_5XX_RATIO,
            '(sum(rate(opsdeck_api_requests_total{status_class="5xx"}[5m])) or vector(0))'
            " / sum(rate(opsdeck_api_requests_total[5m]))",
        ),
        *payment_failures(t),
        *psp_success(),
    )


def payment_failures(t: Thresholds) -> tuple[Recording, ...]:
    """The 5-minute failure ratio of live payment attempts and its band: the mean of the
    hour before the ratio's own window, plus z standard deviations (at least the floor)."""
    z, floor = _number(t.payment_failure_anomaly_z), _number(t.payment_failure_min_stddev)
    live = 'opsdeck_payment_attempts_total{livemode="true"'
    past = f"{PAYMENT_FAILURE_RATIO}[1h] offset {FAILURE_BASELINE_OFFSET}"
    return (
        Recording(
            PAYMENT_FAILURE_RATIO,
            f'(sum(rate({live},outcome="failed"}}[5m])) or vector(0)) / sum(rate({live}}}[5m]))',
        ),
        Recording(PAYMENT_FAILURE_BASELINE, f"avg_over_time({past})"),
        Recording(PAYMENT_FAILURE_STDDEV, f"stddev_over_time({past})"),
        Recording(
            PAYMENT_FAILURE_UPPER,
            f"{PAYMENT_FAILURE_BASELINE} + {z} * clamp_min({PAYMENT_FAILURE_STDDEV}, {floor})",
        ),
    )


def psp_success() -> tuple[Recording, ...]:
    """Per PSP: the 5-minute share of live attempts that succeeded, and attempts a minute."""
    live = 'opsdeck_psp_payment_attempts_total{livemode="true"'
    return (
        Recording(
            PSP_SUCCESS_RATIO,
            f'sum by (psp) (rate({live},outcome="succeeded"}}[5m]))'
            f" / sum by (psp) (rate({live}}}[5m]))",
        ),
        Recording(PSP_ATTEMPTS_PER_MINUTE, f"sum by (psp) (rate({live}}}[5m])) * 60"),
    )


def windows(t: Thresholds) -> tuple[Recording, ...]:
    """Every minute: the 24-hour and 30-day windows."""
    floor = t.chargeback_min_payments_30d
    return (
        Recording(BOOKINGS_24H, "sum(increase(opsdeck_bookings_confirmed_total[24h]))"),
        Recording(CONFLICTS_24H, "sum(increase(opsdeck_booking_conflicts_total[24h]))"),
        Recording(CONFLICT_RATE_24H, f"{CONFLICTS_24H} / clamp_min({BOOKINGS_24H}, 1)"),
        Recording(
            REVENUE_24H, "sum by (currency) (increase(opsdeck_booked_revenue_cents_total[24h]))"
        ),
        Recording(
            CHARGEBACKS_30D, 'sum(increase(opsdeck_chargebacks_total{livemode="true"}[30d]))'
        ),
        Recording(
            SUCCEEDED_30D,
            'sum(increase(opsdeck_payment_attempts_total{outcome="succeeded",livemode="true"}'
            "[30d]))",
        ),
        Recording(CHARGEBACK_RATE_30D, f"{CHARGEBACKS_30D} / clamp_min({SUCCEEDED_30D}, {floor})"),
        Recording(
            TIME_TO_RESOLVE_24H,
            "sum(increase(opsdeck_support_ticket_resolution_seconds_sum[24h]))"
            " / sum(increase(opsdeck_support_ticket_resolution_seconds_count[24h])) > 0",
        ),
    )


def self_watch() -> tuple[Recording, ...]:
    """Every minute: opsdeck's own API requests by route and status class, and its duration
    buckets by route, for the panels that draw them over weeks. The raw series are per
    route, method and status class, scraped every 15 s: over 30 days a panel read about
    70 M samples to draw 1,600 points, where these hold a quarter of the samples of fewer
    series (the panels average them over their ``$__rate_interval``)."""
    return (
        Recording(
            API_HTTP_RATE,
            "sum by (route, status_class) (rate(opsdeck_api_http_requests_total[5m]))",
        ),
        Recording(
            API_HTTP_DURATION_BUCKETS,
            "sum by (route, le) (rate(opsdeck_api_http_request_duration_seconds_bucket[5m]))",
        ),
    )


def _number(value: float) -> str:
    """PromQL text of a threshold: ``3`` for 3.0, as a person would write it."""
    return f"{value:g}"
