"""Every PostgreSQL panel's SQL runs as Grafana's role, on real data, and shows what seed 001
asks for; the role reads the masked ``ops.grafana_*`` views and nothing else.

The database holds the suite's simulated history plus the two anomalies these panels exist
for (double bookings, PSP mismatches), folded by a real exporter into the tables behind the
views, and an audit entry written by the real CLI.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from core.settings import Settings
from dashboards.catalog import BOARDS
from dashboards.grafana_queries import expand_sql
from dashboards.grafana_time import Window
from dashboards.lint import panels
from simulator.inject import inject
from tests.conftest import REPO, opsdeck_env, scratch_database
from tests.exporters.harness import db_now, exporters

pytestmark = pytest.mark.slow

GRAFANA_ROLE = "opsdeck_grafana"
# Views whose owner has not built them yet, with why; their panels' SQL must fail with
# "relation does not exist" until then, so a view that arrives fails this until unlisted.
PENDING_VIEWS: dict[str, str] = {}
# Seed 001's columns for each table ("Recent Double-bookings — table: booking_id, user_id,
# time, resources involved, resolution status", ...), in the names the views give them.
SEED_COLUMNS = {
    "Active Incidents": {"severity", "services", "started_at", "owner", "status", "runbook_url"},
    "Recent Double-bookings": {
        "booking_id",
        "customer_ref",  # the user, masked
        "confirmed_at",
        "resource_id",
        "other_booking_id",
        "resolution_status",
    },
    "Recent Payment Mismatches": {
        "transaction_id",
        "internal_amount",
        "psp_amount",
        "delta",
        "status",
    },
    "Audit Trail": {"at", "actor", "action", "target_type", "target_id", "outcome"},
}
PLATFORM_TABLES = ("customers", "bookings", "transactions", "api_logs", "support_tickets")
OPS_TABLES = ("audit_log", "kpi_booking_conflicts", "kpi_recon", "kpi_values")
# Writes an audit entry (user.create) through the real CLI, for the Audit Trail panel.
ADD_USER = ("users", "add", "panel-sql", "--role", "viewer", "--password-stdin")
FIELD = re.compile(r"\$\{__data\.fields\.(\w+)\}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}")


def _sql_panels() -> list[tuple[str, str, str, frozenset[str]]]:
    """(dashboard uid, panel title, SQL, columns the panel's data links read)."""
    found = []
    for board_def in BOARDS:
        board = json.loads((REPO / board_def.path).read_text(encoding="utf-8"))
        for panel in panels(board):
            for target in panel.get("targets", []):
                if "rawSql" not in target:
                    continue
                links = panel["fieldConfig"]["defaults"].get("links", [])
                fields = frozenset(f for link in links for f in FIELD.findall(link["url"]))
                found.append((board["uid"], panel["title"], target["rawSql"], fields))
    return found


PANELS = _sql_panels()


def _seed(url: str, work: Path) -> None:
    """What the panels read besides the history: two injected incidents, the exporter's KPI
    state caught up, an audited user creation and an acknowledged incident."""
    thresholds = Settings().thresholds
    for kind in ("double-booking", "psp-mismatch"):
        inject(kind, url, url, thresholds, minutes=5, seed=3)
    # The key of the customer_ref the double-booking panel shows (none is kept without it).
    key = "customer-ref-key-for-the-panel-test"
    with exporters(url, work, OPSDECK_EXPORTER__CUSTOMER_REF_KEY=key) as (exporter,):
        exporter.wait_caught_up(db_now(url))
    audited = subprocess.run(
        [sys.executable, "-m", "opsdeck", *ADD_USER],
        input="a-long-enough-password-for-the-test\n",
        env=opsdeck_env(DATABASE_URL=url),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert audited.returncode == 0, audited.stderr
    with psycopg.connect(url, autocommit=True) as conn:  # what the incidents hook writes
        conn.execute(
            "INSERT INTO ops.incidents (title, severity, status, services, started_at, owner, "
            "runbook_url) VALUES ('ApiErrorRateHigh: API 5xx above 1%', 'high', "
            "'acknowledged', '{platform}', now() - interval '5 minutes', 'ada', "
            "'http://localhost:8000/runbooks/ApiErrorRateHigh.md')"
        )


@pytest.fixture(scope="module")
def panel_db(
    admin_url: str, history_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with scratch_database(admin_url, history_template) as url:
        _seed(url, tmp_path_factory.mktemp("panel-sql"))
        yield url


def _as_grafana(url: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(GRAFANA_ROLE)))
    return conn


def _run(url: str, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    end = datetime.now(UTC) + timedelta(minutes=1)
    with _as_grafana(url) as conn:
        window = Window((end - timedelta(hours=24)).timestamp(), end.timestamp())
        cursor = conn.execute(expand_sql(query, window, {}))
        columns = [c.name for c in cursor.description or []]
        return columns, cursor.fetchall()


def _pending(query: str) -> list[str]:
    return [view for view in PENDING_VIEWS if view in query]


@pytest.mark.parametrize("panel", PANELS, ids=lambda p: f"{p[0]}/{p[1]}")
def test_panel_sql_runs_as_grafana_with_the_expected_columns(
    panel_db: str, panel: tuple[str, str, str, frozenset[str]]
) -> None:
    _board, title, query, link_fields = panel
    if _pending(query):
        with pytest.raises(errors.UndefinedTable):
            _run(panel_db, query)
        return
    columns, rows = _run(panel_db, query)
    assert SEED_COLUMNS[title] | link_fields <= set(columns), columns
    assert rows, f"{title}: no rows in the last 24 h"
    for row in rows:
        assert not any(isinstance(v, str) and EMAIL.search(v) for v in row), row
    if "customer_ref" in columns:
        refs = {row[columns.index("customer_ref")] for row in rows}
        assert all(re.fullmatch(r"cus_[0-9a-f]{8}", ref) for ref in refs), refs


def test_every_sql_panel_has_seed_columns_listed() -> None:
    assert {title for _, title, _, _ in PANELS} == set(SEED_COLUMNS)
    assert set(PENDING_VIEWS) <= {v for _, _, q, _ in PANELS for v in _pending(q)}


@pytest.mark.parametrize(
    "table", [f"platform.{t}" for t in PLATFORM_TABLES] + [f"ops.{t}" for t in OPS_TABLES]
)
def test_grafana_cannot_read_tables_directly(panel_db: str, table: str) -> None:
    schema, name = table.split(".")
    with _as_grafana(panel_db) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(
            sql.SQL("SELECT * FROM {}.{} LIMIT 1").format(*map(sql.Identifier, (schema, name)))
        )
