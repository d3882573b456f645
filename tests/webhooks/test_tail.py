"""The platform-event tail is exact: under live traffic (ids committing out of order, rows
changing after insert) every event of the tailed window becomes exactly one message, with
its deliveries, in the transaction that moves the cursor."""

from __future__ import annotations

import threading
import time

from core.settings import Settings
from gateway.tail import PlatformTail
from tests.exporters.harness import Traffic, db_now
from tests.webhooks.harness import endpoint, sql, wait_for

TRUTH = """
SELECT 'booking.confirmed:' || id FROM platform.bookings
WHERE confirmed_at >= %(a)s AND confirmed_at < %(b)s
UNION ALL SELECT 'payment.succeeded:' || id FROM platform.transactions
WHERE captured_at >= %(a)s AND captured_at < %(b)s
UNION ALL SELECT 'payment.failed:' || id FROM platform.transactions
WHERE failed_at >= %(a)s AND failed_at < %(b)s AND status = 'failed'
UNION ALL SELECT 'refund.created:' || id FROM platform.refunds
WHERE created_at >= %(a)s AND created_at < %(b)s
UNION ALL SELECT 'chargeback.created:' || id FROM platform.chargebacks
WHERE created_at >= %(a)s AND created_at < %(b)s
"""


def test_every_platform_event_becomes_exactly_one_message(history_url: str) -> None:
    subscriber, _ = endpoint(history_url, "https://partner.example/hooks")
    settings = Settings(database_url=history_url)
    tail = PlatformTail(settings, history_url, history_url)
    stop = threading.Event()
    thread = threading.Thread(target=tail.run, args=(stop,))
    thread.start()
    try:
        wait_for(
            "the tail to start",
            lambda: bool(sql(history_url, "SELECT 1 FROM ops.webhook_tail_cursor")),
        )
        ((start,),) = sql(history_url, "SELECT horizon FROM ops.webhook_tail_cursor")
        with Traffic(history_url, rate=40):
            time.sleep(12)
        end = db_now(history_url)
        wait_for(
            "the tail past the traffic",
            lambda: sql(history_url, "SELECT horizon FROM ops.webhook_tail_cursor")[0][0] > end,
        )
    finally:
        stop.set()
        thread.join()
    ((cursor,),) = sql(history_url, "SELECT horizon FROM ops.webhook_tail_cursor")
    expected = {r[0] for r in sql(history_url, TRUTH, {"a": start, "b": cursor})}
    keys = [r[0] for r in sql(history_url, "SELECT source_key FROM ops.webhook_messages")]
    assert len(keys) == len(set(keys))
    assert set(keys) == expected
    kinds = {k.split(":")[0] for k in keys}
    assert {"booking.confirmed", "payment.succeeded", "payment.failed"} <= kinds
    deliveries = sql(
        history_url,
        "SELECT count(*) FROM ops.webhook_deliveries WHERE endpoint_id = %s",
        (subscriber,),
    )
    assert deliveries == [(len(keys),)]
    assert tail.failures.current is None
