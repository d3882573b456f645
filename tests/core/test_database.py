"""Connections are opened one way: ``core/database.py``, against a real PostgreSQL.

A pool from :func:`async_pool` and a connection from :func:`async_connect` or
:func:`connect` carry their application name into ``pg_stat_activity``, their statement
timeout and server settings; ``read_only`` ones are refused writes by the server. A setting
that libpq would misread is refused. And a source scan holds every room to the factories:
no other module builds a pool or opens a connection itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core.database import async_connect, async_pool, connect, server_options
from tests.conftest import REPO

# Every room of the house plan; bench/ is left out, like tests/: its scripts set up and
# measure databases from outside, as their administrator.
ROOMS = ("core", "exporters", "gateway", "api", "simulator", "dashboards", "alert_rules", "opsdeck")
NAME = "opsdeck-test-factory"
WRITE = "CREATE TABLE written_here (id int)"
OPENERS = re.compile(
    r"\b(?:Async)?(?:Null)?ConnectionPool\(|\b(?:Async)?Connection\.connect\(|\bpsycopg\.connect\("
    r"|from psycopg import [^\n]*\bconnect\b"
)
# Where a connection may be opened without the factories, and why.
OPENERS_ALLOWED = {
    "core/database.py": "the factories themselves",
    "opsdeck/embedded.py": (
        "the readiness probe of the embedded PostgreSQL it is starting: it connects as the "
        "server's superuser to the maintenance database, before any opsdeck URL exists"
    ),
}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


async def _session(conn: psycopg.AsyncConnection[Any]) -> tuple[Any, ...]:
    cursor = await conn.execute(
        "SELECT application_name, current_setting('statement_timeout'), "
        "current_setting('plan_cache_mode'), current_setting('default_transaction_read_only') "
        "FROM pg_stat_activity WHERE pid = pg_backend_pid()"
    )
    row = await cursor.fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.anyio
async def test_a_pool_names_its_sessions_and_sets_their_settings(db_url: str) -> None:
    pool = async_pool(
        db_url,
        NAME,
        2,
        statement_timeout_seconds=1.5,
        parameters={"plan_cache_mode": "force_custom_plan"},
    )
    await pool.open()
    try:
        async with pool.connection() as conn:
            assert await _session(conn) == (NAME, "1500ms", "force_custom_plan", "off")
            assert conn.autocommit
            await conn.execute(WRITE)  # not read-only: writes go through
        assert pool.name == NAME
    finally:
        await pool.close()


@pytest.mark.anyio
async def test_a_read_only_pool_is_refused_writes(db_url: str) -> None:
    pool = async_pool(db_url, NAME, 1, read_only=True, name="read-only-pool")
    await pool.open()
    try:
        async with pool.connection() as conn:
            assert (await _session(conn))[0] == NAME
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                await conn.execute(WRITE)
            await conn.execute("SELECT 1")  # and the connection still reads
        assert pool.name == "read-only-pool"
    finally:
        await pool.close()


@pytest.mark.anyio
async def test_an_async_connection_is_named_and_may_be_read_only(db_url: str) -> None:
    conn = await async_connect(db_url, application_name=NAME, autocommit=True, read_only=True)
    async with conn:
        assert (await _session(conn))[0::3] == (NAME, "on")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            await conn.execute(WRITE)


def test_a_connection_is_named_and_may_be_read_only(db_url: str) -> None:
    with connect(db_url, application_name=NAME, read_only=True) as conn:
        row = conn.execute(
            "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        ).fetchone()
        assert row == (NAME,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute(WRITE)


@pytest.mark.parametrize(
    ("parameters", "refused"),
    [
        ({"search_path": "ops, public"}, "search_path"),
        ({"work_mem": "4MB -c fsync=off"}, "work_mem"),
        ({"Bad-Name": "1"}, "Bad-Name"),
        ({"application_name": "a\\b"}, "application_name"),
    ],
)
def test_settings_libpq_would_misread_are_refused(parameters: dict[str, str], refused: str) -> None:
    with pytest.raises(ValueError, match=f"not a server setting: {re.escape(refused)}="):
        server_options(parameters=parameters)


def test_server_options_in_order() -> None:
    assert server_options(
        statement_timeout_seconds=2, read_only=True, parameters={"work_mem": "4MB"}
    ) == ("-c statement_timeout=2000 -c work_mem=4MB -c default_transaction_read_only=on")
    assert server_options() == ""


def openers(root: Path) -> dict[str, list[int]]:
    """Lines that build a pool or open a connection without the factories, by file."""
    found: dict[str, list[int]] = {}
    for room in ROOMS:
        for path in sorted((root / room).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            lines = [text.count("\n", 0, m.start()) + 1 for m in OPENERS.finditer(text)]
            if lines:
                found[path.relative_to(root).as_posix()] = lines
    return found


def test_only_the_factories_open_connections() -> None:
    found = openers(REPO)
    stray = {path: lines for path, lines in found.items() if path not in OPENERS_ALLOWED}
    assert not stray, f"open connections with core.database's factories: {stray}"
    assert set(OPENERS_ALLOWED) <= set(found), "a stale entry in OPENERS_ALLOWED"


def test_the_scan_sees_every_way_of_opening(tmp_path: Path) -> None:
    room = tmp_path / "api"
    room.mkdir()
    (room / "x.py").write_text(
        "p = AsyncConnectionPool(url)\n"
        "q = psycopg_pool.ConnectionPool(url)\n"
        "c = await psycopg.AsyncConnection.connect(url)\n"
        "d = psycopg.connect(url)\n"
        "from psycopg import sql, connect\n"
        "check = AsyncConnectionPool.check_connection\n"
    )
    assert openers(tmp_path) == {"api/x.py": [1, 2, 3, 4, 5]}
