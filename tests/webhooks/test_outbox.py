"""The outbox: messages and their deliveries commit with the transaction that causes them,
fan out by event-type filters with wildcards, and wake workers only at commit."""

from __future__ import annotations

import psycopg
import pytest

from gateway.outbox import Event, InvalidEvent, enqueue, enqueue_many, message_body
from tests.webhooks.harness import endpoint, sql


def _deliveries(url: str) -> dict[int, list[str]]:
    rows = sql(
        url,
        "SELECT d.endpoint_id, m.event_type FROM ops.webhook_deliveries d "
        "JOIN ops.webhook_messages m ON m.id = d.message_id ORDER BY 1, 2",
    )
    found: dict[int, list[str]] = {}
    for endpoint_id, event_type in rows:
        found.setdefault(int(endpoint_id), []).append(str(event_type))
    return found


def test_filters_match_with_wildcards_and_skip_disabled_endpoints(db_url: str) -> None:
    payments, _ = endpoint(db_url, "https://a.example/hook", event_types=("payment.*",))
    bookings, _ = endpoint(db_url, "https://b.example/hook", event_types=("booking.confirmed",))
    everything, _ = endpoint(db_url, "https://c.example/hook")
    endpoint(db_url, "https://d.example/hook", enabled=False)
    with psycopg.connect(db_url) as conn:
        for event_type in ("payment.succeeded", "payment.failed", "booking.confirmed", "x.y"):
            enqueue(conn, event_type, {"id": 1})
        conn.commit()
    assert _deliveries(db_url) == {
        payments: ["payment.failed", "payment.succeeded"],
        bookings: ["booking.confirmed"],
        everything: ["booking.confirmed", "payment.failed", "payment.succeeded", "x.y"],
    }


def test_a_rolled_back_cause_leaves_no_message_and_no_wake_up(db_url: str) -> None:
    endpoint(db_url, "https://a.example/hook")
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN opsdeck_webhooks")
        with psycopg.connect(db_url) as conn:
            enqueue(conn, "payouts.suspended", {"reason": "drift"})
            conn.rollback()
        assert list(listener.notifies(timeout=0.5)) == []
        assert sql(db_url, "SELECT count(*) FROM ops.webhook_messages")[0][0] == 0
        with psycopg.connect(db_url) as conn:
            sent = enqueue(conn, "payouts.suspended", {"reason": "drift"})
            assert list(listener.notifies(timeout=0.3)) == []  # not before the commit
            conn.commit()
        (notify,) = list(listener.notifies(timeout=2, stop_after=1))
        assert notify.payload == "outbound"
    assert sent.deliveries == 1
    assert sent.uid.startswith("msg_")


def test_a_source_key_is_enqueued_once(db_url: str) -> None:
    endpoint(db_url, "https://a.example/hook")
    with psycopg.connect(db_url) as conn:
        first = enqueue(conn, "partner.notice", {"n": 1}, source_key="incident:7:notice")
        again = enqueue(conn, "partner.notice", {"n": 2}, source_key="incident:7:notice")
        created, fanned = enqueue_many(
            conn, [Event("partner.notice", {"n": 3}, source_key="incident:7:notice")]
        )
        conn.commit()
    assert first.created
    assert not again.created
    assert again.uid == first.uid
    assert (created, fanned) == (0, 0)
    assert sql(db_url, "SELECT count(*) FROM ops.webhook_deliveries")[0][0] == 1


def test_bodies_are_standard_webhooks_payloads(db_url: str) -> None:
    from datetime import UTC, datetime

    body = message_body("payment.succeeded", {"id": 5}, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert body == '{"type":"payment.succeeded","timestamp":"2026-01-02T03:04:05Z","data":{"id":5}}'
    with psycopg.connect(db_url) as conn, pytest.raises(InvalidEvent):
        enqueue(conn, "Payment Succeeded", {})
