"""The API log search's plan choice, against real planner estimates on analysed history:
a word the statistics do not know (a request id) is collected from the GIN index first,
whatever the costs say, and a word they know follows the costs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from api.drilldowns.api_logs import search_patterns, search_plan
from api.queries import api_logs as sql
from api.queries.listing import PageRequest
from core.settings import ApiSettings
from tests.conftest import scratch_database

pytestmark = pytest.mark.anyio

# So dear that the costs alone never send a search to the index first.
DEAR_INDEX = ApiSettings.model_construct(search_index_row_cost=1e12)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def analysed(admin_url: str, history_template: str) -> Iterator[str]:
    with scratch_database(admin_url, history_template) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE platform.api_logs")
        yield url


@pytest.fixture
async def conn(analysed: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(analysed) as connection:
        yield connection


def _request(q: str) -> PageRequest:
    now = datetime.now(UTC)
    filters = {"q": q, **search_patterns(q), "time_from": now - timedelta(days=1), "time_to": now}
    return PageRequest(filters, "started_at", True, None, 50, 100_000)


def _known_words(url: str) -> list[str]:
    """The words the search index's statistics know, most common first."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT most_common_elems::text::text[] FROM pg_stats "
            "WHERE tablename = 'api_logs_search_masked'"
        ).fetchone()
    assert row is not None
    assert row[0], "ANALYZE gathered no statistics for the search index"
    return [w for w in row[0] if w.isalpha() and len(w) > 3]


async def test_an_unknown_word_goes_to_the_index_first(
    analysed: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    async with conn.cursor() as cur:
        await cur.execute("SELECT request_id FROM platform.api_logs ORDER BY id DESC LIMIT 1")
        row = await cur.fetchone()
    assert row is not None
    request_id = row[0]
    assert not any(piece in _known_words(analysed) for piece in request_id.split("_"))
    plans = await search_plan(conn, _request(request_id), DEAR_INDEX)
    assert plans == [sql.FROM_THE_INDEX, sql.ALONG_THE_TIME]


async def test_a_known_word_follows_the_costs(
    analysed: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    word = _known_words(analysed)[-1]  # the least common word the statistics know
    assert await search_plan(conn, _request(word), DEAR_INDEX) == [
        sql.ALONG_THE_TIME,
        sql.FROM_THE_INDEX,
    ]
    cheap = ApiSettings.model_construct(search_index_row_cost=1e-9)
    assert await search_plan(conn, _request(word), cheap) == [
        sql.FROM_THE_INDEX,
        sql.ALONG_THE_TIME,
    ]
