"""A live list's filters, applied in the API process to its tail's rows, select exactly the
rows the list's SQL selects: for each live list, each filter (and combinations, time
ranges, test/live mode) runs both ways over the same rows and must give the same set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.requests import Request

from api.drilldowns.params import parse_list
from api.live.feeds import FEEDS, Feed
from api.queries.listing import PageRequest
from tests.api.conftest import Harness, api_settings, running

pytestmark = pytest.mark.anyio

ROWS = """
WITH e AS (
    INSERT INTO ops.webhook_endpoints (url, max_in_flight)
    VALUES ('https://a.example/h', 5), ('https://b.example/h', 5) RETURNING id
), m AS (
    INSERT INTO ops.webhook_messages (event_type, body, source)
    SELECT t, '{}', 'test' FROM unnest(ARRAY['payment.succeeded', 'payment.failed',
        'booking.confirmed']) AS t RETURNING id, event_type
), d AS (
    INSERT INTO ops.webhook_deliveries (message_id, endpoint_id, status, attempts)
    SELECT m.id, e.id, (ARRAY['pending', 'succeeded', 'dead'])[1 + (m.id + e.id) % 3], 1
    FROM m, e RETURNING id
)
INSERT INTO ops.webhook_inbound_events (provider, event_key, livemode, event_type, headers,
    body, signature, status)
SELECT p, 'evt_' || p || '_' || s, true, 'charge.succeeded', '{}', '\\x7b7d', 'test', s
FROM unnest(ARRAY['stripe', 'paystack']) AS p, unnest(ARRAY['pending', 'processed', 'dead']) AS s
"""
INCIDENTS = """
INSERT INTO ops.incidents (title, severity, status, services, started_at, owner)
SELECT 'incident ' || i, (ARRAY['critical', 'high', 'medium'])[1 + i % 3],
       (ARRAY['triggered', 'acknowledged', 'resolved'])[1 + i / 4],
       CASE i % 3 WHEN 0 THEN ARRAY['payments', 'api'] WHEN 1 THEN ARRAY['bookings', 'api']
            ELSE ARRAY['calendar'] END,
       now() - i * interval '3 hours', (ARRAY['alice', 'bob', NULL])[1 + i % 3]
FROM generate_series(0, 11) AS i
"""
# A live payment of the last day (what the lists show by default), newest first.
RECENT = "livemode AND created_at > now() - interval '20 hours' ORDER BY id DESC LIMIT 1"
LOGGED = "livemode AND started_at > now() - interval '20 hours'"
LOG = f"{LOGGED} ORDER BY id DESC LIMIT 1"
SAMPLES = {
    "psp_id": f"SELECT psp_id FROM platform.transactions WHERE psp_id IS NOT NULL AND {RECENT}",
    "customer": f"SELECT customer_id FROM platform.transactions WHERE {RECENT}",
    "payment": f"SELECT id FROM platform.transactions WHERE {RECENT}",
    "intent": f"SELECT payment_intent_id FROM platform.transactions WHERE attempt > 1 AND {RECENT}",
    "route": f"SELECT route FROM platform.api_logs WHERE {LOGGED} GROUP BY 1 "
    "ORDER BY count(*) DESC LIMIT 1",
    "account": f"SELECT account_id FROM platform.api_logs WHERE account_id IS NOT NULL AND {LOG}",
    "key": f"SELECT api_key_id FROM platform.api_logs WHERE api_key_id IS NOT NULL AND {LOG}",
    "request": f"SELECT request_id FROM platform.api_logs WHERE {LOG}",
    "idempotency": "SELECT idempotency_key FROM platform.api_logs "
    f"WHERE idempotency_key IS NOT NULL AND {LOG}",
    "error": f"SELECT error_type FROM platform.api_logs WHERE error_type IS NOT NULL AND {LOG}",
    "endpoint": "SELECT min(id) FROM ops.webhook_endpoints",
    "reference": "SELECT reference FROM ops.webhook_log ORDER BY id DESC LIMIT 1",
}


def cases(s: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        "payments": [
            {},
            {"from": "now-6h"},
            {"status": "failed"},
            {"status": ["captured", "refunded"]},
            {"livemode": "all"},
            {"livemode": "false", "status": "captured"},
            {"q": s["psp_id"]},
            {"q": str(s["customer"])},
            {"q": str(s["payment"])},
            {"customer_id": s["customer"]},
            {"payment_intent_id": s["intent"]},
            {"attempt": 2},
            {"retried": "true"},
            {"retried": "false", "status": "failed"},
            {"card_brand": "visa"},
            {"failure_code": "card_declined"},
            {"psp": "paystack"},
            {"currency": "USD,EUR"},
            {"status": "failed", "card_brand": "visa", "psp": "stripe", "from": "now-12h"},
        ],
        "api-logs": [
            {},
            {"status": "404"},
            {"status": ["200", "500"]},
            {"status_class": "5xx"},
            {"method": "POST"},
            {"route": s["route"]},
            {"path_prefix": "/v1/bookings"},
            {"api_key_id": s["key"]},
            {"account_id": s["account"]},
            {"request_id": s["request"]},
            {"idempotency_key": s["idempotency"]},
            {"error_type": s["error"]},
            {"min_duration_ms": 200},
            {"livemode": "false"},
            {"status_class": "2xx", "method": "GET", "from": "now-3h"},
        ],
        "webhooks": [
            {},
            {"direction": "inbound"},
            {"status": ["pending", "dead"]},
            {"event_type": "payment.succeeded"},
            {"endpoint_id": s["endpoint"]},
            {"provider": "stripe"},
            {"reference": s["reference"]},
            {"direction": "outbound", "status": "succeeded"},
            {"from": "now-1h", "direction": "inbound"},
        ],
        "incidents": [
            {},
            {"status": "triggered"},
            {"severity": ["high", "critical"]},
            {"service": "api"},
            {"owner": "alice"},
            {"from": "now-12h", "status": ["triggered", "resolved"]},
        ],
    }


@pytest.fixture(scope="module")
async def harness(api_db: str, api_redis: str) -> AsyncIterator[Harness]:
    async with running(api_settings(api_db, api_redis)) as harness:
        harness.sql(ROWS)
        harness.sql(INCIDENTS)
        yield harness


def _request(query: dict[str, Any]) -> Request:
    return Request({"type": "http", "query_string": urlencode(query, doseq=True).encode()})


def _keys(feed: Feed, names: list[str], rows: list[tuple[Any, ...]]) -> set[str]:
    return {feed.key(names, row) for row in rows}


async def _both(harness: Harness, feed: Feed, query: dict[str, Any]) -> tuple[set[str], set[str]]:
    runtime = harness.runtime
    params = parse_list(_request(query), feed.view, runtime, paged=False)
    request = PageRequest(params.filters, params.sort, True, None, 0, 0)
    listed, args = feed.view.query(request, export=True)
    pool = runtime.platform if feed.database == "platform" else runtime.ops
    async with pool.connection() as conn:
        cursor = await conn.execute(listed, args)
        by_sql = _keys(feed, [c.name for c in cursor.description or ()], await cursor.fetchall())
        cursor = await conn.execute(feed.sql, {"since": "-infinity", "until": "infinity"})
        names = [c.name for c in cursor.description or ()]
        every = await cursor.fetchall()
    test = feed.predicate(params.filters, open_ended=False)
    matched = [r for r in every if test(dict(zip(names, r, strict=True)))]
    return by_sql, _keys(feed, names, matched)


@pytest.mark.parametrize("name", sorted(FEEDS))
async def test_live_filters_select_what_the_list_selects(harness: Harness, name: str) -> None:
    found = {k: harness.sql(q)[0][0] for k, q in SAMPLES.items()}
    feed = FEEDS[name]
    covered: set[str] = set()
    for query in cases(found)[name]:
        by_sql, in_process = await _both(harness, feed, query)
        assert in_process == by_sql, f"{name} {query}"
        covered |= set(query)
        if query and len(query) == 1 and "from" not in query and "livemode" not in query:
            assert by_sql, f"{name} {query} selects nothing: the case proves nothing"
    filters = {f.name for f in feed.view.filters} | {"from"}
    assert filters - set(feed.not_live) <= covered
