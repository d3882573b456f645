"""The business alerts a payments platform relies on beyond seed 001's list: payment
failures against their own baseline (seed 003's "alerting for sudden failure rate
spikes"), one PSP's outage, and the other two services of seed 001's Uptime tile.

Severities and teams:

- PaymentFailureRateSpike is high for finance: failed payments are lost revenue now, and
  seed 003's payment statistics are finance's; it pages as well, since the cause (a
  checkout deploy, a fraud rule, a PSP) is usually fixed by an engineer.
- PspOutage is high for platform: bookings paid through that PSP fail while the other PSP
  keeps working, so it is not the everyone-is-down page BookingApiDown is, but someone
  must fail over and tell partners now. It explains the failure spike, which it inhibits.
- PaymentWebhookHandlerDown is high for platform: PSP events stop reaching the ledger, so
  payments stop reconciling and confirmations stall, though customers can still pay.
- CalendarSyncDown is medium for platform: external calendars go stale and double
  bookings become possible, but booking and payment go on; Slack and email are enough.
"""

from __future__ import annotations

from alert_rules.alert import DURATION, PERCENT, Alert, pct
from alert_rules.seed_alerts import service_down, service_down_description
from core import recording_rules as rec
from core.settings import Thresholds
from dashboards import command_center

FAILURE_PANEL = "Payment Failure Ratio"
PSP_PANEL = "PSP Success Ratio"
UPTIME_PANEL = "Uptime"


def business_alerts(t: Thresholds) -> list[Alert]:
    return [
        _payment_failure_spike(t),
        _psp_outage(t),
        _service_down(
            t,
            "PaymentWebhookHandlerDown",
            "payment_webhook_handler",
            "the payment webhook handler",
            "Payment webhook handler down",
            "high",
            "Restart the webhook handler; PSP events queue at the PSPs meanwhile: reprocess "
            "them once it is back, then watch reconciliation drift.",
            "webhook-handler-down",
        ),
        _service_down(
            t,
            "CalendarSyncDown",
            "calendar_sync",
            "calendar sync",
            "Calendar sync down",
            "medium",
            "Restart calendar sync; check the providers' tokens and rate limits; watch double "
            "bookings until calendars are current again.",
            "calendar-sync-down",
        ),
    ]


def _payment_failure_spike(t: Thresholds) -> Alert:
    ratio, upper = rec.PAYMENT_FAILURE_RATIO, rec.PAYMENT_FAILURE_UPPER
    floor = pct(t.payment_failure_min_ratio)
    return Alert(
        "PaymentFailureRateSpike",
        f"{ratio} > min_over_time({upper}[{rec.FAILURE_BAND_MEMORY}])"
        f" and {ratio} > {t.payment_failure_min_ratio}",
        "2m",
        "high",
        "finance",
        "Live payment failures spiked above their baseline",
        "{value} of live payment attempts failed in the last 5 minutes: more than "
        f"{t.payment_failure_anomaly_z:g} standard deviations above the hour before it rose "
        f"(the lowest band of the last {rec.FAILURE_BAND_MEMORY}), and above {floor}.",
        PERCENT,
        "Find the failure codes and the PSP that jumped; roll back a recent checkout or "
        "fraud-rule change; open a finance ticket for the lost revenue.",
        command_center.UID,
        FAILURE_PANEL,
        ("acknowledge", "create-incident", "mute-1h", "open-finance-ticket"),
        injection="payment-failure-spike",
        seed=False,
    )


def _psp_outage(t: Thresholds) -> Alert:
    ratio = pct(t.psp_outage_success_ratio)
    return Alert(
        "PspOutage",
        f"{rec.PSP_SUCCESS_RATIO} < {t.psp_outage_success_ratio}"
        f" and on (psp) {rec.PSP_ATTEMPTS_PER_MINUTE} >= {t.psp_outage_min_attempts_per_minute:g}",
        "2m",
        "high",
        "platform",
        f"A PSP's live payments succeed less than {ratio} of the time",
        "{{ $labels.psp }} captured only {value} of the live payment attempts it handled in "
        f"the last 5 minutes (threshold {ratio}).",
        PERCENT,
        "Check the PSP's status page; route its payments to the other PSP if you can and "
        "tell partners; expect failed bookings to retry once it is back.",
        command_center.UID,
        PSP_PANEL,
        ("acknowledge", "create-incident", "mute-1h", "notify-partners"),
        injection="psp-outage",
        seed=False,
        inhibits=("PaymentFailureRateSpike",),
    )


def _service_down(
    t: Thresholds,
    alert: str,
    service: str,
    name: str,
    summary: str,
    severity: str,
    action: str,
    injection: str,
) -> Alert:
    return Alert(
        alert,
        service_down(service),
        f"{t.service_down_seconds / 60:g}m",
        severity,
        "platform",
        summary,
        service_down_description(t, name, t.service_down_seconds),
        DURATION,
        action,
        command_center.UID,
        UPTIME_PANEL,
        injection=injection,
        seed=False,
    )
