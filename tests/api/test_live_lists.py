"""Live lists over HTTP, against ``opsdeck api`` as a real server (EventSource needs a
response that streams): rows committed into the platform arrive on the streams whose
filters they match, once; ``Last-Event-ID`` resumes exactly, from memory or, for a cursor
older than the tail, from the database; polling answers the same rows; what the list does
not understand is a 400 naming it; a role without the list's permission gets 403; pushed
rows are masked as the page masks them, per viewer; one person's streams stop at the cap;
a revoked session ends its streams."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from redis.asyncio import Redis

from api.app import create_app
from api.auth.sessions import COOKIE, SessionStore
from api.live.cursors import decode, encode
from api.rbac import Role
from api.signing import Keys
from bench.event_stream import ServerEvent, server_events
from tests.api.conftest import SECRET, Harness, api_settings, serving
from tests.conftest import opsdeck_env

pytestmark = pytest.mark.anyio

CAP = 2
ARRIVAL_SECONDS = 5.0
STREAM = {"Accept": "text/event-stream"}


@dataclass
class Live:
    base: str
    harness: Harness
    redis_url: str

    async def cookie(self, role: Role, name: str | None = None) -> str:
        username = self.harness.user(role, name)
        rows = self.harness.sql(
            "SELECT id, session_version FROM ops.users WHERE username = %s", (username,)
        )
        redis = Redis.from_url(self.redis_url, decode_responses=True)
        try:
            store = SessionStore(redis, Keys(SECRET).session, 3600)
            _, cookie = await store.create(rows[0][0], rows[0][1])
        finally:
            await redis.aclose()
        return cookie

    async def client(self, role: Role, name: str | None = None) -> httpx.AsyncClient:
        cookie = await self.cookie(role, name)
        return httpx.AsyncClient(base_url=self.base, cookies={COOKIE: cookie}, timeout=30)

    def commit_payment(self, status: str, customer: int | None = None) -> int:
        """One attempt, inserted and committed as the simulator's writers insert them."""
        rows = self.harness.sql(
            "INSERT INTO platform.transactions (id, customer_id, amount_cents, currency, "
            "status, failure_code, psp, psp_id, payment_intent_id, attempt, card_brand, "
            "card_last4, card_country, livemode, failed_at) "
            "SELECT n.id, coalesce(%(customer)s, (SELECT min(id) FROM platform.customers)), "
            "4200, 'USD', %(status)s, CASE WHEN %(status)s = 'failed' THEN 'card_declined' END, "
            "'stripe', 'ch_live_' || n.id, 'pi_live_' || n.id, 1, 'visa', '4242', 'US', true, "
            "CASE WHEN %(status)s = 'failed' THEN now() END "
            "FROM (SELECT max(id) + 1 AS id FROM platform.transactions) n RETURNING id",
            {"status": status, "customer": customer},
        )
        return int(rows[0][0])


@pytest.fixture(scope="module")
def live(api_db: str, api_redis: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    settings = api_settings(api_db, api_redis)
    env = opsdeck_env(
        DATABASE_URL=api_db,
        REDIS_URL=api_redis,
        OPSDECK_API__SECRET_KEY=SECRET,
        OPSDECK_API__SESSION_RECHECK_SECONDS="1",
        OPSDECK_API__REQUESTS_PER_MINUTE="100000",
        OPSDECK_LIVE__STREAMS_PER_USER=str(CAP),
        OPSDECK_LIVE__HEARTBEAT_SECONDS="1",
    )
    log = Path(tmp_path_factory.mktemp("live")) / "api.log"
    with serving(env, log) as base:
        yield Live(base, Harness(create_app(settings), settings), api_redis)


@asynccontextmanager
async def opened(
    client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None
) -> AsyncIterator[tuple[httpx.Response, AsyncIterator[ServerEvent]]]:
    async with client.stream("GET", path, headers={**STREAM, **(headers or {})}) as response:
        yield response, server_events(response)


async def rows_until(
    events: AsyncIterator[ServerEvent], wanted: set[str], seconds: float = ARRIVAL_SECONDS
) -> tuple[list[dict[str, Any]], str]:
    """Every row pushed until all ``wanted`` keys came, and the last event id."""
    rows: list[dict[str, Any]] = []
    last = ""
    with anyio.fail_after(seconds):
        async for event in events:
            last = event.id or last
            if event.kind == "rows":
                rows += event.json()["rows"]
            if wanted <= {r["key"] for r in rows}:
                return rows, last
    raise AssertionError(f"the stream ended before {wanted} arrived")


def keys(rows: list[dict[str, Any]]) -> list[str]:
    return [r["key"] for r in rows]


async def test_rows_arrive_once_and_resume_exactly(live: Live) -> None:
    async with await live.client(Role.FINANCE) as client:
        async with opened(client, "/api/v1/payments/live?status=failed") as (response, events):
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            first = await anext(events)
            start = first.id
            assert start is not None
            failed, captured = live.commit_payment("failed"), live.commit_payment("captured")
            began = time.monotonic()
            rows, last = await rows_until(events, {str(failed)})
            assert time.monotonic() - began < ARRIVAL_SECONDS
        assert keys(rows) == [str(failed)]
        assert rows[0]["record"]["status"] == "failed"

        # Committed while no one listened: delivered on resumption, the first one not again.
        missed, other = live.commit_payment("failed"), live.commit_payment("captured")
        async with opened(
            client, "/api/v1/payments/live?status=failed", {"Last-Event-ID": last}
        ) as (_, events):
            resumed, _ = await rows_until(events, {str(missed)})
        assert keys(resumed) == [str(missed)]
        assert str(captured) not in keys(resumed)
        assert str(other) not in keys(resumed)

        # Polling from the page's cursor answers the same rows, the same way.
        polled = await client.get(f"/api/v1/payments/changes?status=failed&after={start}")
        assert polled.status_code == 200
        body = polled.json()
        assert keys(body["rows"]) == [str(failed), str(missed)]
        assert body["rows"][0] == rows[0]
        assert decode("cursor", body["cursor"]) >= decode("cursor", last)
        again = await client.get(f"/api/v1/payments/changes?status=failed&after={body['cursor']}")
        assert again.json()["rows"] == []


async def test_a_cursor_older_than_the_tail_is_caught_up_from_the_database(live: Live) -> None:
    async with await live.client(Role.FINANCE) as client:
        first = (await client.get("/api/v1/payments/changes?status=failed")).json()["cursor"]
        old = decode("cursor", first) - timedelta(minutes=10)
        expected = live.harness.sql(
            "SELECT id FROM platform.transactions WHERE status = 'failed' AND livemode "
            "AND updated_at >= %s AND created_at >= now() - interval '24 hours' ORDER BY id",
            (old,),
        )
        async with opened(
            client, "/api/v1/payments/live?status=failed", {"Last-Event-ID": encode(old)}
        ) as (_, events):
            with anyio.fail_after(ARRIVAL_SECONDS):
                event = await anext(events)
        got = event.json()["rows"] if event.kind == "rows" else []
        assert sorted(int(k) for k in keys(got)) == [r[0] for r in expected]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/payments/live?colour=red", "colour"),
        ("/api/v1/payments/changes?colour=red", "colour"),
        ("/api/v1/payments/live?status=lost", "status"),
        ("/api/v1/payments/live?after=yesterday", "after"),
        ("/api/v1/api-logs/live?q=timeout", "q"),
        ("/api/v1/incidents/changes?limit=5", "limit"),
    ],
)
async def test_what_the_list_does_not_understand_is_refused(
    live: Live, path: str, name: str
) -> None:
    async with await live.client(Role.SUPER_ADMIN) as client:
        response = await client.get(path, headers=STREAM)
    assert response.status_code == 400, response.text
    assert name in response.json()["detail"]
    assert name in [p["name"] for p in response.json()["invalid_params"]]


@pytest.mark.parametrize(
    ("role", "path"),
    [
        (Role.OPS, "/api/v1/payments/live"),
        (Role.OPS, "/api/v1/payments/changes"),
        (Role.VIEWER, "/api/v1/api-logs/live"),
        (Role.FINANCE, "/api/v1/webhooks/live"),
    ],
)
async def test_a_role_without_the_list_permission_is_refused(
    live: Live, role: Role, path: str
) -> None:
    async with await live.client(role) as client:
        response = await client.get(path, headers=STREAM)
    assert response.status_code == 403
    async with httpx.AsyncClient(base_url=live.base) as nobody:
        anonymous = await nobody.get(path, headers=STREAM)
    assert anonymous.status_code == 401


async def test_pushed_rows_are_masked_as_the_page_masks_them(live: Live) -> None:
    customer, email = live.harness.sql(
        "SELECT id, email FROM platform.customers ORDER BY id DESC LIMIT 1"
    )[0]
    admin = live.harness.user(Role.SUPER_ADMIN)
    live.harness.sql(
        "INSERT INTO ops.pii_unmask_grants (actor, subject_type, subject_id, reason, expires_at) "
        "VALUES (%s, 'customer', %s, 'live list masking test', now() + interval '1 hour')",
        (admin, str(customer)),
    )
    path = f"/api/v1/payments/live?customer_id={customer}"
    async with (
        await live.client(Role.FINANCE) as finance,
        await live.client(Role.SUPER_ADMIN) as granted,
        opened(finance, path) as (_, finance_events),
        opened(granted, path) as (_, granted_events),
    ):
        await anext(finance_events)
        await anext(granted_events)
        payment = str(live.commit_payment("captured", customer))
        masked, _ = await rows_until(finance_events, {payment})
        shown, _ = await rows_until(granted_events, {payment})
        page = await finance.get(f"/api/v1/payments?customer_id={customer}&q={payment}")
    assert masked[0]["record"]["customer_email"] != email
    assert masked[0]["record"] == page.json()["data"][0]
    assert shown[0]["record"]["customer_email"] == email


async def test_one_person_holds_at_most_the_cap_of_streams(live: Live) -> None:
    token = live.harness.api_key(Role.FINANCE, user=live.harness.user(Role.FINANCE, "capped"))
    async with (
        await live.client(Role.FINANCE, "capped") as session,
        httpx.AsyncClient(
            base_url=live.base, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as key,
    ):
        async with (
            opened(session, "/api/v1/payments/live") as (one, _),
            opened(key, "/api/v1/incidents/live") as (two, _),
        ):
            assert (one.status_code, two.status_code) == (200, 200)
            refused = await session.get("/api/v1/payments/live", headers=STREAM)
            assert refused.status_code == 429
            assert f"at most {CAP} live streams per user" in refused.json()["detail"]
            polled = await session.get("/api/v1/payments/changes")
            assert polled.status_code == 200  # polls take no stream slot
        with anyio.fail_after(ARRIVAL_SECONDS):
            while True:  # the slots come back when the streams close
                async with opened(session, "/api/v1/payments/live") as (again, _):
                    if again.status_code == 200:
                        break
                await anyio.sleep(0.2)


async def test_a_revoked_session_ends_its_stream(live: Live) -> None:
    async with (
        await live.client(Role.OPS, "revoked") as client,
        opened(client, "/api/v1/incidents/live") as (response, events),
    ):
        assert response.status_code == 200
        await anext(events)
        live.harness.sql(
            "UPDATE ops.users SET session_version = session_version + 1 WHERE username = %s",
            ("revoked",),
        )
        with anyio.fail_after(10):
            ending = [e async for e in events if e.kind == "end"]
    assert ending
    assert "session" in ending[0].json()["reason"]
