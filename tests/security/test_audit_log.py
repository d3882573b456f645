"""The audit log against the app that writes it and the database that holds it.

The services connect as the service role ``opsdeck migrate`` creates: every way it could
rewrite the trail (disable the triggers, delete, update, truncate, move the chain head,
back-date a row, replace the chain function) is refused or neutralised, and a real
``opsdeck api`` over HTTP still signs in and exports, audited, afterwards. The database's
owner can still delete the newest rows and set the head back, or rewrite a row and
recompute its links the way the database would: ``opsdeck audit verify`` (the real CLI)
catches the rewrite through the keyed chain, and ``--against`` a signed checkpoint catches
the removed tail that a plain verify cannot see.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from psycopg import errors

from core.audit import AuditEntry, canonical, chain_key, record_in_sync, sign
from core.queries import audit as audit_sql
from core.settings import DatabaseRoleSettings
from tests.api.conftest import CSRF_RE, PASSWORD, SECRET, serving
from tests.authenticator import Authenticator
from tests.conftest import opsdeck_env, run_opsdeck, scratch_database, service_url

ROLES = DatabaseRoleSettings()
FINANCE_USER = "fin-audit"
ADD_ARGS = ("--role", "finance", "--totp", "--password-stdin")

# What an app that holds the service role's credentials could try against its own trail.
SERVICE_ATTACKS = (
    "ALTER TABLE ops.audit_log DISABLE TRIGGER USER",
    "ALTER TABLE ops.audit_log DISABLE TRIGGER ALL",
    "DROP TRIGGER audit_log_append_only ON ops.audit_log",
    "DELETE FROM ops.audit_log",
    "DELETE FROM ops.audit_log WHERE chain_seq = (SELECT max(chain_seq) FROM ops.audit_log)",
    "UPDATE ops.audit_log SET reason = 'nothing to see'",
    "TRUNCATE ops.audit_log",
    "UPDATE ops.audit_chain_head SET seq = 0",
    "SELECT seq, hash FROM ops.audit_chain_head",
    "SET session_replication_role = replica",
    "ALTER TABLE ops.audit_log OWNER TO " + ROLES.service,
    "CREATE OR REPLACE FUNCTION ops.audit_chain() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN RETURN NEW; END $$",
    "GRANT " + ROLES.owner + " TO " + ROLES.service,
)


def _sql(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def _write(url: str, count: int, action: str = "test.event") -> None:
    with psycopg.connect(url) as conn, conn.transaction():
        for n in range(count):
            record_in_sync(conn, AuditEntry("ada", action, details={"n": n}))


def _refused_as_service(url: str) -> list[str]:
    """Each attack as the service role; those the database did NOT refuse."""
    allowed = []
    for attack in SERVICE_ATTACKS:
        with psycopg.connect(service_url(url), autocommit=True) as conn:
            try:
                conn.execute(attack)
            except errors.InsufficientPrivilege:
                continue
            allowed.append(attack)
    return allowed


def _cli(url: str, *args: str) -> tuple[int, str]:
    result = run_opsdeck("audit", *args, env=opsdeck_env(DATABASE_URL=service_url(url)))
    return result.returncode, result.stdout + result.stderr


def _as_owner(url: str, *statements: str) -> None:
    """What the database's owner can do to its own table: switch the triggers off."""
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute(f"SET LOCAL ROLE {ROLES.owner}")
        conn.execute("ALTER TABLE ops.audit_log DISABLE TRIGGER USER")
        for statement in statements:
            conn.execute(statement)
        conn.execute("ALTER TABLE ops.audit_log ENABLE TRIGGER USER")


def test_the_service_role_cannot_rewrite_or_stop_the_trail(db_url: str) -> None:
    _write(service_url(db_url), 3)
    before = _sql(db_url, "SELECT chain_seq, reason, hash FROM ops.audit_log ORDER BY 1")
    assert _refused_as_service(db_url) == []
    assert _sql(db_url, "SELECT chain_seq, reason, hash FROM ops.audit_log ORDER BY 1") == before
    triggers = _sql(
        db_url,
        "SELECT tgname, tgenabled FROM pg_trigger "
        "WHERE tgrelid = 'ops.audit_log'::regclass AND NOT tgisinternal ORDER BY 1",
    )
    assert triggers == [
        ("audit_log_append_only", "O"),
        ("audit_log_chain", "O"),
        ("audit_log_no_truncate", "O"),
    ]
    assert _sql(db_url, "SELECT seq FROM ops.audit_chain_head") == [(3,)]
    _write(service_url(db_url), 1)  # the head still moves, through the chain's functions only
    assert _cli(db_url, "verify")[0] == 0


def test_a_back_dated_row_carries_the_servers_time(db_url: str) -> None:
    """A writer that sends its own ``at`` (here 400 days back, to be deleted by retention at
    once) gets the server's now(): the row stays, and so does its place in the chain."""
    long_ago = datetime.now(UTC) - timedelta(days=400)
    entry = AuditEntry("eve", "test.back_dated")
    with psycopg.connect(service_url(db_url)) as conn, conn.transaction():
        seq, at, prev, text = conn.execute(audit_sql.NEXT, entry.params()).fetchone() or ()
        link = sign(chain_key(), bytes(prev) + text.encode())
        conn.execute(
            "INSERT INTO ops.audit_log (chain_seq, at, actor, action, outcome, details, "
            "prev_hash, hash) VALUES (%s, %s, 'eve', 'test.back_dated', 'ok', '{}', %s, %s)",
            (seq, long_ago, bytes(prev), link),
        )
    stored = _sql(db_url, "SELECT at FROM ops.audit_log WHERE chain_seq = %s", (seq,))[0][0]
    assert abs(stored - datetime.now(UTC)) < timedelta(minutes=5)
    assert stored == at
    removed = _sql(service_url(db_url), "SELECT * FROM ops.audit_apply_retention(0)")
    assert removed == [(0, None)]
    assert _cli(db_url, "verify")[0] == 0


@pytest.fixture(scope="module")
def api_stack(
    admin_url: str, template_db: str, services: dict[str, str], tmp_path_factory: Any
) -> Iterator[tuple[str, str, Authenticator]]:
    """A real ``opsdeck api`` connected as the service role; (its base URL, the database,
    the user's authenticator)."""
    log: Path = tmp_path_factory.mktemp("audit-log") / "api.log"
    # A TOTP code is spent per user id and step in Redis, and ids repeat across databases.
    store = redis.Redis.from_url(services["redis"])
    store.flushdb()
    store.close()
    with scratch_database(admin_url, template_db) as db_url:
        env = opsdeck_env(
            DATABASE_URL=service_url(db_url),
            REDIS_URL=services["redis"],
            OPSDECK_API__SECRET_KEY=SECRET,
            OPSDECK_INCIDENTS__ENGINE_ENABLED="false",
        )
        added = run_opsdeck(
            "users", "add", FINANCE_USER, *ADD_ARGS, env=env, timeout=120, stdin=PASSWORD
        )
        assert added.returncode == 0, added.stderr
        app = Authenticator()
        assert app.add(FINANCE_USER, added.stdout)
        with serving(env, log) as base:
            yield base, db_url, app


def test_after_every_attack_the_audited_routes_still_answer_and_audit(
    api_stack: tuple[str, str, Authenticator],
) -> None:
    base, db_url, app = api_stack
    assert _refused_as_service(db_url) == []
    with httpx.Client(base_url=base, timeout=30) as client:
        token = CSRF_RE.search(client.get("/login").text)
        assert token
        code = app.code(FINANCE_USER)
        form = {
            "username": FINANCE_USER,
            "password": PASSWORD,
            "code": code,
            "csrf_token": token[1],
        }
        assert client.post("/login", data=form).status_code == 303
        exported = client.get("/api/v1/payments/export?from=now-1h")
        assert exported.status_code == 200, exported.text[:300]
    audited = _sql(
        db_url,
        "SELECT action, outcome FROM ops.audit_log WHERE actor = %s ORDER BY chain_seq",
        (FINANCE_USER,),
    )
    assert audited == [("sign_in", "ok"), ("export", "ok")]
    status, output = _cli(db_url, "verify")
    assert status == 0, output


def test_a_tail_the_owner_removed_is_caught_against_a_checkpoint(
    db_url: str, tmp_path: Path
) -> None:
    _write(service_url(db_url), 6)
    checkpoint = tmp_path / "checkpoint.json"
    status, output = _cli(db_url, "checkpoint", "--out", str(checkpoint))
    assert status == 0, output
    assert json.loads(checkpoint.read_text())["seq"] == 6
    status, output = _cli(db_url, "verify")
    assert status == 0, output
    assert "audit log intact: 6 entries, chain verified" in output
    assert _cli(db_url, "verify", "--against", str(checkpoint))[0] == 0

    # The owner removes rows 4..6 and sets the head back to row 3, as the issue describes.
    _as_owner(
        db_url,
        "DELETE FROM ops.audit_log WHERE chain_seq > 3",
        "UPDATE ops.audit_chain_head SET (seq, hash) = "
        "(SELECT chain_seq, hash FROM ops.audit_log WHERE chain_seq = 3)",
    )
    assert _cli(db_url, "verify")[0] == 0  # a shorter chain is a chain: hence checkpoints
    status, output = _cli(db_url, "verify", "--against", str(checkpoint))
    assert status == 1, output
    assert "rows 4..6 were removed" in output, output

    _write(service_url(db_url), 4)  # the app writes on: rows 4..7 again, row 6 is another
    status, output = _cli(db_url, "verify", "--against", str(checkpoint))
    assert status == 1, output
    assert "row 6 differs from the checkpoint" in output, output


def test_a_row_the_owner_rewrote_and_relinked_is_caught(db_url: str) -> None:
    """Without the key, relinking the chain the way the database could (plain SHA-256 from
    the row's canonical text) leaves every link the owner touched wrong."""
    _write(service_url(db_url), 4)
    _as_owner(db_url, "UPDATE ops.audit_log SET reason = 'nothing to see' WHERE chain_seq = 2")
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(audit_sql.CHAIN).fetchall()
    previous = bytes(rows[0][13])
    relinked = []
    for row in rows[1:]:
        link = hashlib.sha256(previous + canonical(row)).digest()
        relinked.append((previous, link, row[0]))
        previous = link
    _as_owner(
        db_url,
        *(
            f"UPDATE ops.audit_log SET prev_hash = '\\x{p.hex()}', hash = '\\x{h.hex()}' "
            f"WHERE chain_seq = {seq}"
            for p, h, seq in relinked
        ),
        f"UPDATE ops.audit_chain_head SET hash = '\\x{previous.hex()}'",
    )
    status, output = _cli(db_url, "verify")
    assert status == 1, output
    assert "row 2: content does not match its hash" in output, output


def test_a_checkpoint_not_signed_with_the_chain_key_is_refused(db_url: str, tmp_path: Path) -> None:
    _write(service_url(db_url), 2)
    checkpoint = tmp_path / "checkpoint.json"
    assert _cli(db_url, "checkpoint", "--out", str(checkpoint))[0] == 0
    forged = json.loads(checkpoint.read_text())
    forged["seq"] = 1  # an older head, to excuse a removed tail
    checkpoint.write_text(json.dumps(forged))
    status, output = _cli(db_url, "verify", "--against", str(checkpoint))
    assert status == 2, output
    assert "not signed with this chain key" in output, output
