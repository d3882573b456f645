"""The record step while the worker stops: the periodic run and the drain overlap, and every
finished attempt is logged exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from core.application_names import WORKER
from core.database import async_pool
from core.settings import WebhookSettings
from gateway.attempts import Claimed, Result
from gateway.outcomes import Outcomes
from gateway.retry import Decision
from gateway.wakeup import WakeUp
from tests.webhooks.harness import endpoint, send, sql

pytestmark = pytest.mark.anyio


def _succeeded(delivery_id: int, endpoint_id: int, uid: str, body: str) -> Result:
    now = datetime.now(UTC)
    claimed = Claimed(delivery_id, endpoint_id, 1, "scheduled", uid, body, now, "http://x", ())
    return Result(
        claimed, now, now, 1.0, {}, None, 200, {}, "ok", None, None, Decision("succeeded")
    )


async def test_a_drain_beside_the_periodic_run_records_each_attempt_once(db_url: str) -> None:
    made, _ = endpoint(db_url, "http://127.0.0.1:9/ok")
    send(db_url, 3)
    rows = sql(
        db_url,
        "SELECT d.id, m.uid, m.body FROM ops.webhook_deliveries d "
        "JOIN ops.webhook_messages m ON m.id = d.message_id ORDER BY d.id",
    )
    pool = async_pool(db_url, WORKER, 4)
    await pool.open()
    try:
        outcomes = Outcomes(pool, WebhookSettings(), "w1", WakeUp(db_url))
        for delivery_id, uid, body in rows:
            outcomes.add(_succeeded(delivery_id, made, uid, body))
        # Both take the oldest batch while neither has finished recording it.
        await asyncio.gather(outcomes.record_some(), outcomes.drain())
    finally:
        await pool.close()
    assert len(outcomes) == 0
    logged = sql(
        db_url,
        "SELECT delivery_id, count(*) FROM ops.webhook_attempts GROUP BY 1 ORDER BY 1",
    )
    assert logged == [(delivery_id, 1) for delivery_id, _, _ in rows]
    assert {s for (s,) in sql(db_url, "SELECT status FROM ops.webhook_deliveries")} == {"succeeded"}
