"""Runbooks: one per alert and no more, each link resolving, each SQL block running."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import psycopg
import pytest

from alert_rules.alerts import all_alerts
from core.settings import Settings
from dashboards import catalog
from dashboards.links import PublicUrls
from tests.conftest import REPO
from tests.dashboards.api_routes import resolves, starlette_app
from tests.dashboards.test_links import PENDING

RUNBOOKS = REPO / "runbooks"
ALERTS = all_alerts(Settings().thresholds)
# The runbooks link to the default public URLs (what the committed alert rules carry).
URLS = PublicUrls.of(Settings())
LINK = re.compile(r"\]\(([^)]+)\)")
SQL = re.compile(r"```sql\n(.*?)```", re.DOTALL)


def test_one_runbook_per_alert() -> None:
    assert {p.stem for p in RUNBOOKS.glob("*.md")} - {"README"} == {a.name for a in ALERTS}


@pytest.mark.parametrize("name", sorted(a.name for a in ALERTS))
def test_runbook_links_resolve(name: str) -> None:
    text = (RUNBOOKS / f"{name}.md").read_text()
    alert = next(a for a in ALERTS if a.name == name)
    for heading in (
        "## What it means",
        "## Find the offending rows",
        "## Root-cause checklist",
        "## One-click actions",
        "## Escalation",
    ):
        assert heading in text
    for action in alert.actions:
        assert f"/actions/{action}?alertname={name}" in text
    boards = catalog.dashboards(Settings())
    app = starlette_app()
    for target in LINK.findall(text):
        if target.startswith(URLS.grafana + "/"):
            parts = urlsplit(target)
            uid = parts.path.removeprefix("/d/")
            panel = int(parts.query.removeprefix("viewPanel="))
            assert panel in {p["id"] for p in boards[uid]["panels"]}, target
        elif target.startswith(URLS.api + "/"):
            path = urlsplit(target).path
            assert path in PENDING or (app is not None and resolves(app, path)), target
        else:
            assert (RUNBOOKS / target.split("#")[0]).resolve().exists(), target


def test_runbook_sql_runs_against_the_schema(db_url: str) -> None:
    blocks = [
        (p.stem, sql) for p in sorted(RUNBOOKS.glob("*.md")) for sql in SQL.findall(p.read_text())
    ]
    assert len(blocks) >= len(ALERTS)
    with psycopg.connect(db_url) as conn:
        for _name, block in blocks:
            for statement in filter(str.strip, block.split(";")):
                body = "\n".join(
                    line for line in statement.splitlines() if not line.strip().startswith("--")
                )
                if body.strip():
                    conn.execute(f"EXPLAIN {body}".encode())
