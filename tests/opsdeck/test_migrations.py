"""Migrations: an empty database gets DESIGN.md's platform contract, and goes back to empty."""

from __future__ import annotations

import psycopg
import pytest
from alembic import command

from core.audit import AuditEntry, record_in_sync
from core.migrate import alembic_config, downgrade_to_base, migrate
from tests.conftest import opsdeck_env, run_opsdeck

# DESIGN.md's platform contract, column for column. Extra columns are allowed.
CONTRACT = {
    "locations": "id name",
    "staff": "id name location_id",
    "resources": "id name location_id staff_id",
    "customers": "id name email phone created_at",
    "site_sessions": "id started_at customer_id",
    "bookings": "id resource_id customer_id location_id staff_id start_at end_at status amount_cents "
    "currency created_at confirmed_at cancelled_at updated_at",
    "transactions": "id booking_id customer_id amount_cents currency status failure_code psp psp_id "
    "payment_intent_id attempt card_brand card_last4 card_country fraud_score livemode created_at "
    "updated_at captured_at",
    "refunds": "id transaction_id amount_cents reason created_at",
    "chargebacks": "id transaction_id amount_cents reason status created_at",
    "psp_transactions": "psp_id psp amount_cents currency status livemode received_at",
    "payouts": "id amount_cents currency status scheduled_for paid_at",
    "api_logs": "id request_id started_at method path route status_code duration_ms api_key_id "
    "account_id ip_address livemode api_version idempotency_key error_type error_message stack_trace "
    "user_id request_body response_body",
    "calendar_syncs": "id provider calendar_id resource_id started_at finished_at status error",
    "service_checks": "id service checked_at ok latency_ms",
    "support_tickets": "id customer_id subject priority status opened_at resolved_at",
}
TIMESTAMPS = {
    "created_at",
    "updated_at",
    "confirmed_at",
    "cancelled_at",
    "captured_at",
    "started_at",
    "start_at",
    "end_at",
    "received_at",
    "scheduled_for",
    "paid_at",
    "finished_at",
    "checked_at",
    "opened_at",
    "resolved_at",
}


def _columns(url: str) -> dict[str, dict[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'platform'"
        ).fetchall()
    tables: dict[str, dict[str, str]] = {}
    for table, column, data_type in rows:
        tables.setdefault(table, {})[column] = data_type
    return tables


def _schemas(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {
            r[0]
            for r in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname IN ('platform', 'ops')"
            )
        }


def test_migrate_creates_the_platform_contract(empty_db_url: str) -> None:
    migrate(empty_db_url, empty_db_url)
    tables = _columns(empty_db_url)
    for table, names in CONTRACT.items():
        assert table in tables, f"platform.{table} missing"
        missing = set(names.split()) - set(tables[table])
        assert not missing, f"platform.{table} lacks {sorted(missing)}"
        for column in set(names.split()) & TIMESTAMPS:
            assert tables[table][column] == "timestamp with time zone", (table, column)
        for column in names.split():
            if column.endswith("_cents"):
                assert tables[table][column] == "bigint", (table, column)
    assert _schemas(empty_db_url) == {"platform", "ops"}


def test_downgrade_to_base_empties_the_database(empty_db_url: str) -> None:
    migrate(empty_db_url, empty_db_url)
    downgrade_to_base(empty_db_url)
    assert _schemas(empty_db_url) == set()
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (0,)
    migrate(empty_db_url, empty_db_url)  # and back up again
    assert set(CONTRACT) <= set(_columns(empty_db_url))


def test_opsdeck_migrate_then_alembic_downgrade_base(empty_db_url: str) -> None:
    """The commands a user types: ``opsdeck migrate``, then ``alembic downgrade base``."""
    env = opsdeck_env(DATABASE_URL=empty_db_url)
    up = run_opsdeck("migrate", env=env)
    assert up.returncode == 0, up.stderr
    assert up.stdout.splitlines() == [
        "migrated platform to head",
        "migrated ops to head",
        "database roles ready: owner opsdeck_owner, service opsdeck_service",
    ]
    assert set(CONTRACT) <= set(_columns(empty_db_url))
    down = run_opsdeck("downgrade", "base", env=env, module="alembic")
    assert down.returncode == 0, down.stderr
    assert _schemas(empty_db_url) == set()


def test_updated_at_is_stamped_by_the_database(db_url: str) -> None:
    """The KPI engine tails by write time: an UPDATE can't leave an old updated_at behind."""
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO platform.locations (id, name) VALUES (1, 'x')")
        conn.execute(
            "INSERT INTO platform.support_tickets (id, subject, status, opened_at, updated_at) "
            "VALUES (1, 's', 'open', now(), '2001-01-01')"
        )
        conn.commit()
        conn.execute(
            "UPDATE platform.support_tickets SET status = 'pending', updated_at = '2001-01-01'"
        )
        stamped, now = conn.execute(
            "SELECT updated_at, now() FROM platform.support_tickets"
        ).fetchone() or (None, None)
        assert stamped == now


def test_audit_log_is_append_only_and_chained(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        for action in ("sign_in", "unmask"):
            record_in_sync(conn, AuditEntry("ada", action))
        conn.commit()
        with pytest.raises(psycopg.errors.CheckViolation):  # a row that skips the link
            conn.execute("INSERT INTO ops.audit_log (actor, action) VALUES ('eve', 'sign_in')")
        conn.rollback()
        rows = conn.execute(
            "SELECT chain_seq, prev_hash, hash FROM ops.audit_log ORDER BY chain_seq"
        ).fetchall()
        assert [r[0] for r in rows] == [1, 2]
        assert rows[1][1] == rows[0][2]
        for statement in (
            "UPDATE ops.audit_log SET actor = 'eve'",
            "DELETE FROM ops.audit_log",
            "TRUNCATE ops.audit_log",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()


def test_histogram_buckets_convert_to_per_bucket_counts_and_back(db_url: str) -> None:
    """0008 turns stored cumulative buckets into per-bucket counts and drops ``_count``;
    downgrading restores both exactly. Counters and other histograms' rows are untouched."""
    config = alembic_config(db_url)
    command.downgrade(config, "0003_kpi_engine")
    cumulative = [
        ("api", "h_bucket", ["/a", "0.1"], 2.0),
        ("api", "h_bucket", ["/a", "1.0"], 5.0),
        ("api", "h_bucket", ["/a", "10.0"], 5.0),
        ("api", "h_bucket", ["/a", "+Inf"], 7.0),
        ("api", "h_bucket", ["/b", "+Inf"], 1.0),
        ("api", "h_count", ["/a"], 7.0),
        ("api", "h_count", ["/b"], 1.0),
        ("support", "r_bucket", ["60.0"], 3.0),
        ("support", "r_bucket", ["600.0"], 4.0),
        ("support", "r_bucket", ["+Inf"], 4.0),
        ("support", "r_count", [], 4.0),
        ("api", "requests_total", ["/a", "GET"], 9.0),
    ]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.cursor().executemany(
            "INSERT INTO ops.kpi_values (collector, metric, labels, value) VALUES (%s, %s, %s, %s)",
            cumulative,
        )

    def stored() -> dict[tuple[str, str, tuple[str, ...]], float]:
        with psycopg.connect(db_url) as conn:
            rows = conn.execute("SELECT collector, metric, labels, value FROM ops.kpi_values")
            return {(c, m, tuple(labels)): v for c, m, labels, v in rows}

    command.upgrade(config, "0008_kpi_bucket_counts")
    assert stored() == {
        ("api", "h_bucket", ("/a", "0.1")): 2.0,
        ("api", "h_bucket", ("/a", "1.0")): 3.0,
        ("api", "h_bucket", ("/a", "10.0")): 0.0,
        ("api", "h_bucket", ("/a", "+Inf")): 2.0,
        ("api", "h_bucket", ("/b", "+Inf")): 1.0,
        ("support", "r_bucket", ("60.0",)): 3.0,
        ("support", "r_bucket", ("600.0",)): 1.0,
        ("support", "r_bucket", ("+Inf",)): 0.0,
        ("api", "requests_total", ("/a", "GET")): 9.0,
    }
    command.downgrade(config, "0003_kpi_engine")
    assert stored() == {(c, m, tuple(labels)): v for c, m, labels, v in cumulative}
