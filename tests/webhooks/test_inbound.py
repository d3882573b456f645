"""Inbound PSP webhooks through the real app: stored before the 2xx, processed once whatever
the redeliveries, refused and counted when unsigned, stale, malformed or too big, and
parked as dead letters that "Reprocess dead letters" replays."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from api.rbac import Role
from core.psp_webhooks import paystack_charge_event
from tests.api.conftest import Harness, running
from tests.webhooks.gateway import (
    charge,
    gateway_settings,
    paystack_headers,
    process_inbound,
    stripe_headers,
)

pytestmark = pytest.mark.anyio
STRIPE = "/webhooks/inbound/stripe"
PAYSTACK = "/webhooks/inbound/paystack"


@pytest.fixture
async def gw(db_url: str, redis_url: str) -> AsyncIterator[Harness]:
    settings = gateway_settings(
        db_url, redis_url, inbound_max_body_bytes=2048, paystack_allowed_networks=()
    )
    async with running(settings) as harness:
        yield harness


def _counter(gw: Harness, metric: str, *labels: str) -> float:
    rows = gw.sql(
        "SELECT value FROM ops.webhook_counters WHERE metric = %s AND labels = %s",
        (metric, list(labels)),
    )
    return float(rows[0][0]) if rows else 0.0


async def test_the_same_stripe_event_five_times_is_processed_once(gw: Harness) -> None:
    body = charge("evt_dup", "ch_dup", 4200)
    async with gw.client() as client:
        answers = [
            await client.post(STRIPE, content=body, headers=stripe_headers(body)) for _ in range(5)
        ]
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json()["duplicate"] for a in answers] == [False, True, True, True, True]
    assert len({a.json()["id"] for a in answers}) == 1
    assert await process_inbound(gw.settings) == 1
    assert gw.sql(
        "SELECT psp, amount_cents, currency, status, livemode "
        "FROM platform.psp_transactions WHERE psp_id = 'ch_dup'"
    ) == [("stripe", 4200, "USD", "succeeded", True)]
    (event,) = gw.sql(
        "SELECT duplicates, status, outcome, attempts, signature, convert_from(body, 'UTF8') "
        "FROM ops.webhook_inbound_events"
    )
    assert event[:4] == (4, "processed", "applied", 1)
    assert "matched secret #1" in event[4]
    assert event[5] == body.decode()  # the raw bytes, kept
    assert gw.sql("SELECT count(*) FROM ops.webhook_inbound_attempts") == [(1,)]
    assert _counter(gw, "opsdeck_webhook_inbound_duplicates_total", "stripe") == 4
    assert _counter(gw, "opsdeck_webhook_delivery_attempts_total", "inbound", "succeeded") == 1


async def test_bad_requests_get_400_and_nothing_is_processed(gw: Harness) -> None:
    body = charge("evt_bad", "ch_bad")
    stale = int(time.time()) - 301
    not_json = b'{"id": "evt_x", '
    cases = [
        (body, stripe_headers(body, secret="whsec_wrong"), "bad_signature"),
        (body, stripe_headers(body, at=stale), "stale"),
        (not_json, stripe_headers(not_json), "malformed"),
        (body, {"content-type": "application/json"}, "missing_signature"),
        (b"[1, 2]", stripe_headers(b"[1, 2]"), "malformed"),
    ]
    async with gw.client() as client:
        for payload, headers, reason in cases:
            answer = await client.post(STRIPE, content=payload, headers=headers)
            assert answer.status_code == 400, (reason, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert _counter(gw, "opsdeck_webhook_inbound_rejected_total", "stripe", reason) >= 1
    assert gw.sql("SELECT count(*) FROM ops.webhook_inbound_events") == [(0,)]
    rejected = gw.sql("SELECT reason, status_code, body_bytes FROM ops.webhook_inbound_rejections")
    assert sorted(r[0] for r in rejected) == sorted(c[2] for c in cases)
    assert {r[1] for r in rejected} == {400}
    assert await process_inbound(gw.settings) == 0
    assert gw.sql("SELECT count(*) FROM platform.psp_transactions") == [(0,)]


async def test_an_oversize_body_gets_413(gw: Harness) -> None:
    body = json.dumps({"id": "evt_big", "padding": "x" * 4000}).encode()
    async with gw.client() as client:
        answer = await client.post(STRIPE, content=body, headers=stripe_headers(body))
    assert answer.status_code == 413
    assert gw.sql("SELECT reason FROM ops.webhook_inbound_rejections") == [("oversize",)]
    assert gw.sql("SELECT count(*) FROM ops.webhook_inbound_events") == [(0,)]


async def test_paystack_events_and_the_source_address_allow_list(
    db_url: str, redis_url: str
) -> None:
    settings = gateway_settings(db_url, redis_url, paystack_allowed_networks=("52.31.139.75/32",))
    event = paystack_charge_event(
        99, "ps_L99", 150000, "NGN", succeeded=True, livemode=False, at=datetime.now(UTC)
    )
    body = json.dumps(event).encode()
    async with running(settings) as gw:
        async with gw.client() as stranger:
            refused = await stranger.post(PAYSTACK, content=body, headers=paystack_headers(body))
        async with gw.client(address="52.31.139.75") as paystack:
            accepted = await paystack.post(PAYSTACK, content=body, headers=paystack_headers(body))
            again = await paystack.post(PAYSTACK, content=body, headers=paystack_headers(body))
            forged = await paystack.post(
                PAYSTACK, content=body, headers=paystack_headers(body, secret="sk_test_wrong")
            )
        assert refused.status_code == 403
        assert (accepted.status_code, accepted.json()["duplicate"]) == (200, False)
        assert again.json()["duplicate"] is True
        assert forged.status_code == 400
        assert await process_inbound(gw.settings) == 1
        assert gw.sql(
            "SELECT psp, amount_cents, currency, status, livemode FROM platform.psp_transactions"
        ) == [("paystack", 150000, "NGN", "succeeded", False)]
        (row,) = gw.sql("SELECT event_key, livemode FROM ops.webhook_inbound_events")
        assert row == ("charge.success:99", False)
        reasons = sorted(r[0] for r in gw.sql("SELECT reason FROM ops.webhook_inbound_rejections"))
        assert reasons == ["bad_signature", "forbidden_address"]


async def test_an_older_event_arriving_late_changes_nothing(gw: Harness) -> None:
    now = int(time.time())
    newer = charge("evt_new", "ch_order", 900, succeeded=False, at=now)
    older = charge("evt_old", "ch_order", 900, succeeded=True, at=now - 60)
    async with gw.client() as client:
        await client.post(STRIPE, content=newer, headers=stripe_headers(newer))
        assert await process_inbound(gw.settings) == 1
        await client.post(STRIPE, content=older, headers=stripe_headers(older))
        assert await process_inbound(gw.settings) == 1
    assert gw.sql("SELECT status FROM platform.psp_transactions") == [("failed",)]
    outcomes = gw.sql("SELECT event_key, outcome FROM ops.webhook_inbound_events ORDER BY id")
    assert outcomes == [("evt_new", "applied"), ("evt_old", "superseded")]


async def test_a_failing_event_becomes_a_dead_letter_and_is_reprocessed(gw: Harness) -> None:
    gw.sql(
        "ALTER TABLE platform.psp_transactions ADD CONSTRAINT refuse_dead "
        "CHECK (psp_id <> 'ch_dead') NOT VALID"
    )
    body = charge("evt_dead", "ch_dead", 777)
    async with gw.client() as client:
        assert (await client.post(STRIPE, content=body, headers=stripe_headers(body))).is_success
    # Tried on the inbound schedule (two retries in tests), then parked.
    assert await process_inbound(gw.settings) == 3
    (event,) = gw.sql("SELECT id, status, attempts, last_error FROM ops.webhook_inbound_events")
    assert event[1:3] == ("dead", 3)
    assert "refuse_dead" in event[3]
    assert gw.sql("SELECT direction, resolved_at FROM ops.webhook_dead_letters") == [
        ("inbound", None)
    ]
    gw.sql("ALTER TABLE platform.psp_transactions DROP CONSTRAINT refuse_dead")
    async with gw.key_client(Role.OPS) as ops:
        done = await ops.post("/api/v1/webhooks/dead-letters/reprocess", json={})
        detail = await ops.get(f"/api/v1/webhooks/inbound/{event[0]}")
    assert done.status_code == 200, done.text
    assert done.json() == {"outbound": 0, "inbound": 1}
    assert await process_inbound(gw.settings) == 1
    assert gw.sql("SELECT amount_cents FROM platform.psp_transactions") == [(777,)]
    assert gw.sql("SELECT status FROM ops.webhook_inbound_events") == [("processed",)]
    assert gw.sql("SELECT resolution FROM ops.webhook_dead_letters") == [("reprocessed",)]
    assert gw.sql("SELECT action FROM ops.audit_log WHERE action LIKE 'webhooks.%'") == [
        ("webhooks.dead_letters.reprocess",)
    ]
    shown = detail.json()
    assert shown["event"]["body"] == body.decode()
    assert [a["succeeded"] for a in shown["processing"]] == [False, False, False]
    assert shown["dead_letters"][0]["resolution"] == "reprocessed"


async def test_a_signed_but_unreadable_charge_is_parked_at_once(gw: Harness) -> None:
    event = json.loads(charge("evt_odd", "ch_odd"))
    del event["data"]["object"]["amount"]
    body = json.dumps(event).encode()
    async with gw.client() as client:
        assert (await client.post(STRIPE, content=body, headers=stripe_headers(body))).is_success
    assert await process_inbound(gw.settings) == 1
    (row,) = gw.sql("SELECT status, attempts, last_error FROM ops.webhook_inbound_events")
    assert row[:2] == ("dead", 1)
    assert "amount" in row[2]
