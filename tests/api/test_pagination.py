"""Keyset pagination: walking every page while other transactions insert rows — at the top,
and inside the range as late commits do — returns every row that existed exactly once, in
order, whatever the sort."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from api.rbac import Role
from tests.api.conftest import Harness

pytestmark = pytest.mark.anyio

INSERT = (
    "INSERT INTO platform.transactions (customer_id, amount_cents, currency, status, psp, "
    "payment_intent_id, livemode, created_at) VALUES (1, %s, 'EUR', 'captured', 'stripe', %s, true, %s)"
)


class Inserter(threading.Thread):
    """Commits a row every few milliseconds, at a random time in the window or at now()."""

    def __init__(self, url: str, start: datetime, end: datetime) -> None:
        super().__init__(daemon=True)
        self.url, self.start_at, self.end_at = url, start, end
        self.stop = threading.Event()
        self.inserted = 0

    def run(self) -> None:
        rng = random.Random(7)
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.wait(0.003):
                span = (self.end_at - self.start_at).total_seconds()
                at = self.start_at + timedelta(seconds=rng.uniform(0, span))
                if rng.random() < 0.3:
                    at = datetime.now(UTC)
                conn.execute(INSERT, (rng.randint(100, 90_000), f"pi_page_{self.inserted}", at))
                self.inserted += 1


async def _walk(api: Harness, query: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    async with api.key_client(Role.SUPER_ADMIN) as client:
        for _ in range(10_000):
            url = f"/api/v1/payments?{query}" + (f"&cursor={cursor}" if cursor else "")
            page = (await client.get(url)).json()
            rows += page["data"]
            cursor = page["next_cursor"]
            if cursor is None:
                return rows
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize(
    ("sort", "order"),
    [("created_at", "desc"), ("created_at", "asc"), ("amount_cents", "asc"), ("id", "desc")],
)
async def test_pages_neither_skip_nor_repeat_under_concurrent_inserts(
    api: Harness, sort: str, order: str
) -> None:
    end = datetime.now(UTC) + timedelta(hours=1)
    start = end - timedelta(hours=25)  # a whole day: thousands of rows at any hour
    before = {
        r[0]
        for r in api.sql(
            "SELECT id FROM platform.transactions WHERE created_at BETWEEN %s AND %s", (start, end)
        )
    }
    assert len(before) > 1000
    inserter = Inserter(api.db_url, start, end)
    inserter.start()
    try:
        query = f"from={int(start.timestamp() * 1000)}&to={int(end.timestamp() * 1000)}&limit=97&sort={sort}&order={order}&livemode=all"
        rows = await _walk(api, query)
    finally:
        inserter.stop.set()
        inserter.join()
    assert inserter.inserted > 20, "the inserter did not overlap the walk"
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "a row was repeated"
    assert before <= set(ids), f"{len(before - set(ids))} rows were skipped"
    keys = [(r[sort], r["id"]) for r in rows]
    assert keys == sorted(keys, reverse=order == "desc")


async def test_a_cursor_only_works_for_its_listing_and_order(api: Harness) -> None:
    async with api.key_client(Role.SUPER_ADMIN) as client:
        page = (await client.get("/api/v1/payments?limit=5")).json()
        cursor = page["next_cursor"]
        assert (await client.get(f"/api/v1/payments?limit=5&cursor={cursor}")).status_code == 200
        for other in (
            f"/api/v1/payments?limit=5&order=asc&cursor={cursor}",
            f"/api/v1/refunds?limit=5&cursor={cursor}",
            f"/api/v1/payments?limit=5&cursor={cursor[:-2]}xx",
            "/api/v1/payments?limit=5&cursor=bm90LWEtY3Vyc29y",
        ):
            response = await client.get(other)
            assert response.status_code == 400, other
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["invalid_params"][0]["name"] == "cursor"
