"""Every list says how many rows its filters match: exactly below the cap (whatever page
is shown), and past the cap the planner's estimate, marked as such. Over a few hundred
thousand rows the count reads at most the cap's worth (its buffers do not grow with the
table), and the estimate it falls back to is the planner's, read without touching a row."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from api.drilldowns.counts import count, matching
from api.drilldowns.service_checks import SERVICE_CHECKS
from api.queries import counting
from api.queries.listing import PageRequest
from api.rbac import Role
from core.settings import ApiSettings
from tests.api.conftest import Harness, api_settings, running
from tests.api.pages_html import table
from tests.conftest import scratch_database

pytestmark = pytest.mark.anyio

CHECKS = 25
MATCHES = re.compile(r'<p class="matches" id="matches" data-exact="(true|false)">([^<]*)</p>')
BIG = 300_000
CAP = 1_000
# A capped count reads the cap's worth of index entries and heap pages: far fewer than
# the thousands of pages the table spans.
BUFFER_BUDGET = 300


@pytest.fixture(scope="module")
def counts_db(admin_url: str, template_db: str) -> Iterator[str]:
    with scratch_database(admin_url, template_db) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO platform.service_checks (service, checked_at, ok, latency_ms) "
                "SELECT 'calendar_sync', now() - i * interval '1 minute', i % 5 <> 0, 20 "
                f"FROM generate_series(1, {CHECKS}) i"
            )
            conn.execute("ANALYZE platform.service_checks")
        yield url


async def _matches(app: Harness, query: str) -> tuple[str, str, list[list[str]]]:
    client = await app.session_client(Role.OPS, "count-ops")
    page = await client.get(f"/service-checks?{query}")
    assert page.status_code == 200, page.text
    found = MATCHES.search(page.text)
    assert found, "the list says nothing of its matches"
    return found.group(1), found.group(2), table(page.text)


@pytest.fixture(scope="module")
async def exact(counts_db: str, api_redis: str) -> AsyncIterator[Harness]:
    async with running(api_settings(counts_db, api_redis)) as harness:
        yield harness


async def test_counts_are_exact_below_the_cap(exact: Harness) -> None:
    failed = exact.sql(
        "SELECT count(*) FROM platform.service_checks WHERE service = 'calendar_sync' AND NOT ok"
    )[0][0]
    flag, text, rows = await _matches(exact, "service=calendar_sync&from=now-1d&limit=10")
    assert (flag, len(rows)) == ("true", 10)
    assert text.startswith(f"10 of {CHECKS} matching")
    flag, text, rows = await _matches(exact, "service=calendar_sync&ok=false&from=now-1d")
    assert (flag, len(rows)) == ("true", failed)
    assert text.startswith(f"{failed} of {failed} matching")
    flag, text, rows = await _matches(exact, "service=booking_api&from=now-1d")
    assert (flag, rows) == ("true", [])
    assert text.startswith("0 of 0 matching")


async def test_the_count_ignores_the_page_shown(exact: Harness) -> None:
    client = await exact.session_client(Role.OPS, "count-ops")
    first = await client.get("/service-checks?service=calendar_sync&from=now-1d&limit=10")
    following = re.search(r'<a href="([^"]+)" rel="next"', first.text)
    assert following
    second = await client.get(following.group(1).replace("&amp;", "&"))
    found = MATCHES.search(second.text)
    assert found
    rows = len(table(second.text))
    assert 0 < rows < CHECKS
    assert found.group(2).startswith(f"{rows} of {CHECKS} matching")


@pytest.fixture(scope="module")
async def capped(counts_db: str, api_redis: str) -> AsyncIterator[Harness]:
    async with running(api_settings(counts_db, api_redis, count_exact_cap=5)) as harness:
        yield harness


async def test_past_the_cap_the_page_says_the_count_is_estimated(capped: Harness) -> None:
    flag, text, rows = await _matches(capped, "service=calendar_sync&from=now-1d&limit=10")
    assert (flag, len(rows)) == ("false", 10)
    assert re.match(r"10 of (about [\d,]+|more than 5) matching \(estimated\)", text), text
    flag, text, _ = await _matches(capped, "service=booking_api&from=now-1d")
    assert (flag, text.split(" ·")[0]) == ("true", "0 of 0 matching")


@pytest.fixture(scope="module")
def big_db(admin_url: str, template_db: str) -> Iterator[str]:
    with scratch_database(admin_url, template_db) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO platform.service_checks (service, checked_at, ok, latency_ms) "
                "SELECT (ARRAY['booking_api', 'payment_webhook_handler', 'calendar_sync'])"
                "[1 + i % 3], now() - i * interval '1 second', i % 50 <> 0, 10 "
                f"FROM generate_series(1, {BIG}) i"
            )
            conn.execute("VACUUM ANALYZE platform.service_checks")
        yield url


def _request(**filters: Any) -> PageRequest:
    now = datetime.now(UTC)
    return PageRequest(
        filters={"time_from": now - timedelta(days=30), "time_to": now, **filters},
        sort="checked_at",
        descending=True,
        after=None,
        limit=50,
        scan_budget=5_000,
    )


async def test_a_capped_count_reads_the_caps_worth_whatever_the_table(big_db: str) -> None:
    request = _request(service="booking_api")
    query, args = matching(SERVICE_CHECKS, request)
    async with await psycopg.AsyncConnection.connect(big_db, autocommit=True) as conn:
        explained = await conn.execute(
            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {counting.capped(query)}",
            {**args, "count_cap": CAP + 1},
        )
        row = await explained.fetchone()
        assert row is not None
        plan = row[0][0]["Plan"]
        buffers = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
        assert buffers <= BUFFER_BUDGET, json.dumps(plan)[:2000]
        pages = (
            await (
                await conn.execute(
                    "SELECT relpages FROM pg_class WHERE oid = 'platform.service_checks'::regclass"
                )
            ).fetchone()
            or (0,)
        )[0]
        assert pages > 10 * BUFFER_BUDGET  # a full count would read them all

        settings = ApiSettings(secret_key="x" * 40, count_exact_cap=CAP)
        found = await count(conn, SERVICE_CHECKS, request, settings)
        real = BIG // 3
        assert not found.exact
        assert found.more_than == CAP
        assert 0.8 * real <= found.value <= 1.2 * real, found
        assert found.of(50) == f"50 of about {found.value:,}"

        wide = ApiSettings(secret_key="x" * 40, count_exact_cap=BIG)
        failed = await count(conn, SERVICE_CHECKS, _request(service="booking_api", ok=False), wide)
        assert failed.exact
        assert failed.value == sum(1 for i in range(1, BIG + 1) if i % 3 == 0 and i % 50 == 0)
