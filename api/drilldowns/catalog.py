"""Every drilldown the API serves, in navigation order."""

from __future__ import annotations

from api.drilldowns import (
    api_logs,
    bookings,
    calendar_syncs,
    chargebacks,
    operations,
    ops_lists,
    payments,
    reconciliation,
    service_checks,
    stuck_bookings,
    usage,
)
from api.drilldowns.spec import DetailView, ListView
from api.webhooks import drilldowns as webhooks

LIST_VIEWS: tuple[ListView, ...] = (
    bookings.BOOKINGS,
    stuck_bookings.STUCK_BOOKINGS,
    payments.PAYMENTS,
    chargebacks.CHARGEBACKS,
    reconciliation.LEDGER,
    reconciliation.REFUNDS,
    reconciliation.PAYOUTS,
    api_logs.API_LOGS,
    usage.USAGE,
    operations.CALENDAR_SYNCS,
    calendar_syncs.CALENDAR_SYNC_FAILURES,
    operations.SUPPORT_TICKETS,
    service_checks.SERVICE_CHECKS,
    ops_lists.INCIDENTS,
    ops_lists.AUDIT,
    *webhooks.LIST_VIEWS,
)
DETAIL_VIEWS: tuple[DetailView, ...] = (
    bookings.BOOKING_DETAIL,
    bookings.DOUBLE_BOOKING_DETAIL,
    payments.PAYMENT_DETAIL,
    chargebacks.CHARGEBACK_DETAIL,
    api_logs.API_LOG_DETAIL,
    api_logs.ACCOUNT_TIMELINE,
    *webhooks.DETAIL_VIEWS,
)
