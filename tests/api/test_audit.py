"""The audit trail: sign-ins, unmasks, exports and setting changes are recorded in the
append-only, hash-chained log; ``opsdeck audit verify`` catches a row a superuser altered
or removed behind the trigger's back; retention and export work from the CLI."""

from __future__ import annotations

import csv
import io
import json

import psycopg
import pytest

from api.rbac import Role
from core.audit import AuditEntry, record_in_sync
from tests.api.conftest import Harness
from tests.conftest import opsdeck_env, run_opsdeck

pytestmark = pytest.mark.anyio


def _verify(url: str) -> tuple[int, str]:
    result = run_opsdeck("audit", "verify", env=opsdeck_env(DATABASE_URL=url))
    return result.returncode, result.stdout + result.stderr


def _write(url: str, *entries: AuditEntry) -> None:
    """Rows as every writer adds them: through core.audit, linked with the chain key."""
    with psycopg.connect(url) as conn, conn.transaction():
        for entry in entries:
            record_in_sync(conn, entry)


def _as_superuser(url: str, statement: str) -> None:
    """What an attacker with database superuser rights can do: skip the triggers."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(statement)


async def test_sign_ins_exports_and_changes_are_audited(api: Harness) -> None:
    username = api.user(Role.SUPER_ADMIN, "auditee")
    async with api.client() as client:
        assert (await api.sign_in(client, username, code="000000")).status_code == 401
        assert (await api.sign_in(client, username)).status_code == 303
        assert (await client.get("/api/v1/payments/export?from=now-1h")).status_code == 200
        assert (await client.get("/api/v1/audit?action=sign_in")).status_code == 200
    rows = api.sql(
        "SELECT actor, actor_role, action, target_type, outcome, reason FROM ops.audit_log "
        "WHERE actor = %s ORDER BY chain_seq",
        (username,),
    )
    assert rows == [
        (username, None, "sign_in", None, "failed", "bad two-factor code"),
        (username, "super_admin", "sign_in", None, "ok", None),
        (username, "super_admin", "export", "payments", "ok", None),
    ]
    created = api.sql(
        "SELECT action, target_id, details->>'role' FROM ops.audit_log WHERE action = 'user.create' "
        "AND target_id = %s",
        (username,),
    )
    assert created == [("user.create", username, "super_admin")]


async def test_the_trail_is_listed_and_exported_for_super_admins(api: Harness) -> None:
    async with await api.session_client(Role.SUPER_ADMIN) as client:
        page = (await client.get("/api/v1/audit?action=user.create&limit=3")).json()
        assert page["data"]
        assert all(r["action"] == "user.create" for r in page["data"])
        exported = (await client.get("/api/v1/audit/export?format=json")).json()
        assert {r["action"] for r in exported} >= {"user.create", "export"}
        table = list(csv.DictReader(io.StringIO((await client.get("/api/v1/audit/export")).text)))
        assert len(table) == len(exported) + 1  # the JSON export itself was audited in between
    async with await api.session_client(Role.FINANCE) as client:
        assert (await client.get("/api/v1/audit")).status_code == 403


def test_verify_passes_then_catches_tampering(db_url: str) -> None:
    details = {"nested": {"b": [1, 2.5, "x"], "a": None}}
    _write(
        db_url,
        *(
            AuditEntry(
                "ada",
                "pii.unmask",
                reason=f"reason {n}",
                ip_address="10.0.0.1",
                details={"n": n, **details},
            )
            for n in range(5)
        ),
    )
    status, output = _verify(db_url)
    assert status == 0, output
    assert "5 entries, chain verified" in output

    _as_superuser(db_url, "UPDATE ops.audit_log SET reason = 'nothing to see' WHERE chain_seq = 2")
    status, output = _verify(db_url)
    assert status == 1
    assert "row 2: content does not match its hash" in output


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ("DELETE FROM ops.audit_log WHERE chain_seq = 3", "rows 3..3 are missing"),
        ("DELETE FROM ops.audit_log WHERE chain_seq = 5", "the newest rows up to 5 are missing"),
        ("DELETE FROM ops.audit_log WHERE chain_seq = 1", "rows before 2 are missing"),
        ("UPDATE ops.audit_log SET details = '{\"n\": 9}' WHERE chain_seq = 4", "row 4: content"),
        ("UPDATE ops.audit_log SET at = at - interval '1 s' WHERE chain_seq = 1", "row 1: content"),
    ],
)
def test_verify_catches_removed_and_altered_rows(db_url: str, statement: str, problem: str) -> None:
    _write(db_url, *(AuditEntry("ada", "sign_in") for _ in range(5)))
    assert _verify(db_url)[0] == 0
    _as_superuser(db_url, statement)
    status, output = _verify(db_url)
    assert status == 1, output
    assert problem in output, output


def test_retention_removes_old_entries_and_the_chain_still_verifies(db_url: str) -> None:
    _write(db_url, *(AuditEntry("ada", "sign_in") for _ in range(4)))
    # The server stamps every row's time: only behind the triggers do rows grow old at once.
    _as_superuser(
        db_url, "UPDATE ops.audit_log SET at = at - interval '120 days' WHERE chain_seq <= 3"
    )
    with (
        psycopg.connect(db_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("DELETE FROM ops.audit_log WHERE chain_seq = 4")
    result = run_opsdeck("audit", "retention", env=opsdeck_env(DATABASE_URL=db_url))
    assert result.returncode == 0, result.stderr
    assert "removed 3 entries older than 90 days" in result.stdout
    status, output = _verify(db_url)
    assert status == 0, output
    assert "2 entries" in output  # the young entry and the retention record


def test_cli_export_as_csv_and_json(db_url: str) -> None:
    _write(
        db_url,
        AuditEntry("ada", "pii.unmask", reason='chargeback, "quoted"', details={"grant_id": 1}),
    )
    env = opsdeck_env(DATABASE_URL=db_url)
    as_csv = run_opsdeck("audit", "export", env=env)
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert rows[0]["reason"] == 'chargeback, "quoted"'
    assert json.loads(rows[0]["details"]) == {"grant_id": 1}
    as_json = run_opsdeck("audit", "export", "--format", "json", "--since", "2000-01-01", env=env)
    entries = json.loads(as_json.stdout)
    assert entries[0]["action"] == "pii.unmask"
    assert len(entries[0]["hash"]) == 64
