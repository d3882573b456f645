"""The application names are written once, and the commit horizons wait for exactly the
sessions that write the platform.

On a real PostgreSQL, a session of each name holds a transaction open while the KPI
engine's horizon (``core/queries/horizon.py`` with ``core.horizon.ignored_applications``)
and the usage roll-up's are read: a name that writes the platform holds both back, a name
that does not holds neither. And no module spells an ``opsdeck-`` name of its own: a source
scan finds every ``"opsdeck-...`` literal outside ``core/application_names.py`` and refuses
it unless it is a different kind of name (listed with its reason).
"""

from __future__ import annotations

import ast
import time
from datetime import datetime
from pathlib import Path

import pytest

from api.queries import usage
from core import application_names as names
from core.database import connect
from core.horizon import ignored_applications
from core.queries import horizon as q
from core.settings import ExporterSettings
from tests.conftest import REPO

ROOMS = ("core", "exporters", "gateway", "api", "simulator", "opsdeck", "bench")
PREFIX = "opsdeck-"
READER = "application-names-test-reader"

# Literals that start with "opsdeck-" but name something other than a database session.
OTHER_NAMES: dict[str, dict[str, str]] = {
    "core/recording_rules.py": {
        "opsdeck-kpi-recording": "a Prometheus rule group",
        "opsdeck-kpi-windows": "a Prometheus rule group",
        "opsdeck-self-recording": "a Prometheus rule group",
    },
    "exporters/http.py": {"opsdeck-exporter": "the HTTP Server header of /metrics"},
    "gateway/signing.py": {"opsdeck-webhooks/1": "the User-Agent of outbound webhooks"},
    "api/incidents/store.py": {"opsdeck-incident-": "the prefix of a pager's dedup key"},
    "opsdeck/embedded.py": {"opsdeck-postgres": "the embedded PostgreSQL's system user"},
    "opsdeck/demo.py": {
        "opsdeck-exporter": "a Prometheus job (alert_rules match up{job=...})",
        "opsdeck-api": "a Prometheus job (alert_rules match up{job=...})",
        "opsdeck-worker": "a Prometheus job (alert_rules match up{job=...})",
    },
    "bench/exporter.py": {PREFIX: "a log file's name"},
    "bench/simulator.py": {"opsdeck-bench-": "a temporary directory's prefix"},
    "bench/modelled.py": {
        "opsdeck-exporter": "a Prometheus job of the modelled series",
        "opsdeck-api": "a Prometheus job of the modelled series",
        "opsdeck-worker": "a Prometheus job of the modelled series",
    },
    "bench/prometheus_history.py": {
        "opsdeck-exporter": "the Prometheus job of the replayed KPI series",
        PREFIX: "the prefix of opsdeck's Prometheus jobs",
    },
}


def prefixed_literals(root: Path) -> dict[str, set[str]]:
    """Every string literal (f-strings' literal parts too) starting with ``opsdeck-``,
    by file, in the rooms that open database sessions."""
    found: dict[str, set[str]] = {}
    for room in ROOMS:
        for path in sorted((root / room).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                value = node.value if isinstance(node, ast.Constant) else None
                if isinstance(value, str) and value.startswith(PREFIX):
                    found.setdefault(path.relative_to(root).as_posix(), set()).add(value)
    return found


def test_the_ignore_lists_are_the_names_that_never_write_the_platform() -> None:
    never_write = sorted(e.name for e in names.TABLE if not e.writes_platform)
    assert list(names.HORIZON_IGNORED) == never_write
    assert ignored_applications(ExporterSettings()) == never_write
    assert never_write == usage.READ_ONLY_APPLICATIONS
    # The gateway's inbound processing writes platform.psp_transactions: waited for.
    assert names.BY_NAME[names.GATEWAY].writes_platform
    assert names.GATEWAY not in names.HORIZON_IGNORED


def test_each_name_is_listed_once_and_named_by_its_constant() -> None:
    listed = [e.name for e in names.TABLE]
    assert len(listed) == len(set(listed))
    constants = {
        value for key, value in vars(names).items() if key.isupper() and isinstance(value, str)
    }
    assert constants == set(listed)
    assert all(name.startswith(PREFIX) for name in listed)


def test_settings_add_names_to_the_ignored_ones() -> None:
    extra = ExporterSettings(horizon_ignore_applications=("grafana-reader",))
    assert ignored_applications(extra) == sorted([*names.HORIZON_IGNORED, "grafana-reader"])


def _horizons_while_open(db_url: str, name: str) -> tuple[datetime, datetime, datetime]:
    """(start of a transaction a session ``name`` holds open, the KPI horizon, the usage
    roll-up's horizon) read while it is open."""
    settings = ExporterSettings()
    with (
        connect(db_url, application_name=name) as held,
        connect(db_url, application_name=READER, autocommit=True) as reader,
    ):
        row = held.execute("SELECT now()").fetchone()
        assert row is not None
        time.sleep(0.05)  # statement_timestamp() of the reads is clearly later
        kpi = reader.execute(
            q.ACTIVITY, {"margin": 0, "ignored": ignored_applications(settings)}
        ).fetchone()
        rollup = reader.execute(
            usage.HORIZON, {"lookback": 0, "ignore": usage.READ_ONLY_APPLICATIONS}
        ).fetchone()
        held.rollback()
    assert kpi is not None
    assert rollup is not None
    return row[0], kpi[0], rollup[0]


@pytest.mark.parametrize("entry", names.TABLE, ids=lambda e: e.name)
def test_only_sessions_that_write_the_platform_hold_the_horizons_back(
    db_url: str, entry: names.ApplicationName
) -> None:
    with connect(db_url, application_name=READER, autocommit=True) as conn:
        row = conn.execute(q.CAN_SEE_ACTIVITY).fetchone()
    assert row is not None
    assert row[0], "the test role must see pg_stat_activity"
    started, kpi, rollup = _horizons_while_open(db_url, entry.name)
    assert (kpi <= started) is entry.writes_platform, (entry, started, kpi)
    assert (rollup <= started) is entry.writes_platform, (entry, started, rollup)


def test_no_module_spells_a_session_name_of_its_own() -> None:
    found = prefixed_literals(REPO)
    found.pop("core/application_names.py", None)
    unexplained = {
        path: sorted(literals - set(OTHER_NAMES.get(path, {}))) for path, literals in found.items()
    }
    unexplained = {path: literals for path, literals in unexplained.items() if literals}
    assert not unexplained, f"use the constants of core/application_names.py: {unexplained}"


def test_the_exceptions_are_still_needed() -> None:
    found = prefixed_literals(REPO)
    for path, other in OTHER_NAMES.items():
        assert set(other) <= found.get(path, set()), f"{path}: stale entry in OTHER_NAMES"


def test_the_scan_sees_literals_and_f_strings(tmp_path: Path) -> None:
    room = tmp_path / "gateway"
    room.mkdir()
    (room / "x.py").write_text(
        'A = "opsdeck-new"\nB = f"opsdeck-{A}:x"\nC = f"{A}-opsdeck-no"\nD = "not-opsdeck-"\n'
    )
    assert prefixed_literals(tmp_path) == {"gateway/x.py": {"opsdeck-new", PREFIX}}
