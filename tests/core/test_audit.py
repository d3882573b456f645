"""The audit writer of core/audit.py: the one way rows reach ``ops.audit_log``.

Each write function lands a row the chain accepts (checked by :func:`core.audit.verify`,
what ``opsdeck audit verify`` runs); a row written inside a transaction that rolls back
leaves nothing, not even a gap in the chain; a connection with no transaction to join is
refused; and no module but core/audit.py (and the query module it reads) writes the
INSERT, so there is no second way in.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from core.audit import (
    AuditEntry,
    NoTransaction,
    record,
    record_in,
    record_in_sync,
    verify,
)
from tests.conftest import REPO

ROOMS = ("core", "exporters", "gateway", "api", "simulator", "opsdeck")
WRITERS = {"core/audit.py", "core/queries/audit.py"}
QUERY_MODULE = "core.queries.audit"
INSERT_NAME = re.compile(r"\baudit(?:_sql)?\.INSERT\b")
INSERT_SQL = re.compile(r"insert\s+into\s+\"?ops\"?\s*\.\s*\"?audit_log\b", re.IGNORECASE)


class Rollback(Exception):
    """Raised inside a transaction to roll it back."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT chain_seq, action FROM ops.audit_log ORDER BY 1").fetchall()


def _verified(url: str) -> int:
    """How many rows the chain holds, after :func:`verify` found nothing wrong."""
    with psycopg.connect(url) as conn:
        result = verify(conn)
    assert result.ok, result.problems
    return result.rows


def _head(url: str) -> int:
    rows = _rows(url)
    return int(rows[-1][0]) if rows else 0


def _entry(action: str) -> AuditEntry:
    return AuditEntry(actor="ada", action=action, details={"n": 1, "nested": {"b": [1, "x"]}})


async def _joined_async(url: str, action: str, *, fail: bool = False) -> int:
    async with (
        await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
        conn.transaction(),
    ):
        seq = await record_in(conn, _entry(action))
        if fail:
            raise Rollback
    return seq


def _joined_sync(url: str, action: str, *, fail: bool = False) -> int:
    with psycopg.connect(url) as conn, conn.transaction():
        seq = record_in_sync(conn, _entry(action))
        if fail:
            raise Rollback
    return seq


@pytest.mark.anyio
async def test_each_writer_lands_a_chained_row(db_url: str) -> None:
    rows, head = _verified(db_url), _head(db_url)
    async with AsyncConnectionPool(db_url, min_size=1, max_size=2, open=False) as pool:
        own = await record(pool, _entry("test.own"))
    joined = await _joined_async(db_url, "test.joined")
    synced = _joined_sync(db_url, "test.joined_sync")
    assert [own, joined, synced] == [head + 1, head + 2, head + 3]
    assert _rows(db_url)[-3:] == [
        (own, "test.own"),
        (joined, "test.joined"),
        (synced, "test.joined_sync"),
    ]
    assert _verified(db_url) == rows + 3


@pytest.mark.anyio
async def test_a_rolled_back_transaction_takes_its_audit_row_with_it(db_url: str) -> None:
    before = _rows(db_url)
    with pytest.raises(Rollback):
        await _joined_async(db_url, "test.rolled_back", fail=True)
    with pytest.raises(Rollback):
        _joined_sync(db_url, "test.rolled_back_sync", fail=True)
    with psycopg.connect(db_url) as conn:  # no block: psycopg's implicit transaction
        record_in_sync(conn, _entry("test.uncommitted"))
        conn.rollback()
    assert _rows(db_url) == before
    # The chain head rolled back too: the next row follows on without a gap.
    after = _joined_sync(db_url, "test.after")
    assert after == (before[-1][0] if before else 0) + 1
    assert _verified(db_url) == len(before) + 1


@pytest.mark.anyio
async def test_record_in_refuses_a_connection_without_a_transaction(db_url: str) -> None:
    before = _rows(db_url)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as aconn:
        with pytest.raises(NoTransaction, match=re.escape("record(pool, entry)")):
            await record_in(aconn, _entry("test.alone"))
    with (
        psycopg.connect(db_url, autocommit=True) as conn,
        pytest.raises(NoTransaction, match=re.escape("conn.transaction()")),
    ):
        record_in_sync(conn, _entry("test.alone_sync"))
    assert _rows(db_url) == before


def _sources(root: Path) -> Iterator[tuple[str, str]]:
    for room in ROOMS:
        for path in sorted((root / room).rglob("*.py")):
            yield path.relative_to(root).as_posix(), path.read_text(encoding="utf-8")


def _query_module_aliases(tree: ast.AST) -> set[str]:
    """Names under which a module reaches core/queries/audit.py (``audit_sql``, ``sql``...)."""
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == QUERY_MODULE.rpartition(".")[0]:
            aliases |= {a.asname or a.name for a in node.names if a.name == "audit"}
        elif isinstance(node, ast.Import):
            aliases |= {a.asname for a in node.names if a.name == QUERY_MODULE and a.asname}
    return aliases


def _insert_uses_in(tree: ast.AST, aliases: set[str]) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "INSERT":
            if isinstance(node.value, ast.Name) and node.value.id in aliases:
                found.append(f"{node.value.id}.INSERT")
            elif ast.unparse(node.value) == QUERY_MODULE:
                found.append(f"{QUERY_MODULE}.INSERT")
        elif isinstance(node, ast.ImportFrom) and node.module == QUERY_MODULE:
            found += [f"from {QUERY_MODULE} import {a.name}" for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [m.group(0) for m in INSERT_SQL.finditer(node.value)]
    return found


def _insert_uses(source: str) -> list[str]:
    """Every way ``source`` names the audit INSERT: by its module, or as SQL of its own."""
    tree = ast.parse(source)
    found = {m.group(0) for m in INSERT_NAME.finditer(source)}
    return sorted(found.union(_insert_uses_in(tree, _query_module_aliases(tree))))


def audit_writes_outside_core(root: Path) -> dict[str, list[str]]:
    """File → how it writes audit rows itself, for every file but the two that may."""
    found = {name: _insert_uses(text) for name, text in _sources(root) if name not in WRITERS}
    return {name: uses for name, uses in found.items() if uses}


def request_entry_builders(root: Path) -> list[str]:
    """Every module defining a function called ``audit_entry``."""
    return [
        name
        for name, text in _sources(root)
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "audit_entry"
    ]


def _functions_using_the_insert(source: str) -> set[str]:
    tree = ast.parse(source)
    aliases = _query_module_aliases(tree)
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and _insert_uses_in(node, aliases)
    }


def test_only_core_audit_writes_the_insert() -> None:
    assert audit_writes_outside_core(REPO) == {}


def test_inside_core_audit_only_the_two_writers_execute_it() -> None:
    source = (REPO / "core/audit.py").read_text(encoding="utf-8")
    assert _functions_using_the_insert(source) == {"record_in", "record_in_sync"}


def test_requests_build_their_audit_entry_in_one_place() -> None:
    assert request_entry_builders(REPO) == ["api/routing.py"]


@pytest.mark.parametrize(
    "source",
    [
        "from core.queries import audit as audit_sql\nq = audit_sql.INSERT\n",
        "from core.queries import audit as q\nq.INSERT\n",
        "import core.queries.audit\ncore.queries.audit.INSERT\n",
        "from core.queries.audit import INSERT\n",
        "SQL = ('INSERT INTO ops.audit_log (actor) '\n  'VALUES (%s)')\n",
        'SQL = "insert into  ops . audit_log (actor) values (%s)"\n',
    ],
)
def test_the_scan_sees_every_spelling_of_the_insert(source: str) -> None:
    assert _insert_uses(source)


def test_the_scan_lets_the_other_audit_queries_be() -> None:
    assert not _insert_uses("from core.queries import audit as q\nq.EXPORT, q.CHAIN\n")
