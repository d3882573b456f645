"""Incidents run by hand, from their page and as JSON with an API key: a hand-opened
incident takes severity, team and services from the form; reassign, change severity (the
escalation plan is redrawn), add a note, acknowledge, resolve and reopen each show on the
incident page's timeline, in the audit log and in ``opsdeck_incidents_open``."""

from __future__ import annotations

import html
import re
import time
import uuid
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.rbac import Role
from tests.api.conftest import Harness
from tests.incidents.actions_client import click

pytestmark = pytest.mark.anyio
OPENED_RE = re.compile(r"opened incident #(\d+)")
BUTTON_RE = re.compile(r'data-action="([a-z-]+)" href="([^"]+)"')
AUDIT = """
SELECT action, actor, reason, outcome FROM ops.audit_log
WHERE target_id = %s ORDER BY chain_seq
"""


def _open_count(text: str, severity: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "opsdeck_incidents_open" and sample.labels["severity"] == severity:
                return float(sample.value)
    raise AssertionError(f"no opsdeck_incidents_open{{severity={severity!r}}}")


def _truth(api: Harness, severity: str) -> float:
    query = "SELECT count(*) FROM ops.incidents WHERE resolved_at IS NULL AND severity = %s"
    return float(api.sql(query, (severity,))[0][0])


async def _metric_follows(client: httpx.AsyncClient, api: Harness, severity: str) -> float:
    """The scraped count once it equals the table's (the recount follows each change)."""
    deadline = time.monotonic() + 10
    while True:
        seen = _open_count((await client.get("/metrics")).text, severity)
        if seen == _truth(api, severity) or time.monotonic() > deadline:
            assert seen == _truth(api, severity)
            return seen


async def _page(client: httpx.AsyncClient, incident: int) -> tuple[str, dict[str, str]]:
    """The incident page's text and its buttons (action name -> href)."""
    page = await client.get(f"/incidents/{incident}", headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text[:300]
    buttons = {name: html.unescape(href) for name, href in BUTTON_RE.findall(page.text)}
    return html.unescape(page.text), buttons


def _kinds(text: str) -> list[str]:
    return re.findall(r'<tr data-kind="([a-z_]+)"', text)


async def _press(
    client: httpx.AsyncClient, incident: int, action: str, reason: str, **fields: str
) -> str:
    """Press the page's button for ``action``, confirm, and return the page after."""
    _, buttons = await _page(client, incident)
    assert action in buttons, buttons
    done = await click(client, buttons[action], reason, fields)
    assert done.status_code == 200, done.text[:500]
    text, _ = await _page(client, incident)
    return text


async def test_a_hand_opened_incident_is_run_to_its_end_from_its_page(api: Harness) -> None:
    async with await api.session_client(Role.OPS, "olivia") as client:
        medium_before = await _metric_follows(client, api, "medium")
        opened = await click(
            client,
            "/actions/create-incident?panel=conversion&source=grafana",
            "checkout conversion dropped",
            {
                "title": "Checkout conversion down",
                "severity": "medium",
                "team": "finance",
                "services": "payments, bookings",
            },
        )
        assert opened.status_code == 200, opened.text[:500]
        found = OPENED_RE.search(opened.text)
        assert found, opened.text[:500]
        incident = int(found.group(1))
        row = api.sql(
            "SELECT severity, team, services, title, status FROM ops.incidents WHERE id = %s",
            (incident,),
        )
        assert row == [
            ("medium", "finance", ["bookings", "payments"], "Checkout conversion down", "triggered")
        ]
        assert await _metric_follows(client, api, "medium") == medium_before + 1
        text, buttons = await _page(client, incident)
        assert sorted(buttons) == ["acknowledge", "add-note", "reassign", "resolve", "set-severity"]
        assert "escalation_planned" in _kinds(text)

        text = await _press(
            client,
            incident,
            "reassign",
            "finance owns the checkout",
            owner="grace",
            team="platform",
        )
        assert "Reassigned by olivia: owner - → grace, team finance → platform" in text
        assert 'data-field="team">platform<' in text
        text = await _press(client, incident, "add-note", "", note="Stripe status page is green")
        assert "Note by olivia: Stripe status page is green" in text
        text = await _press(client, incident, "acknowledge", "looking at it now")
        assert "Acknowledged by olivia via incident-page: looking at it now" in text
        assert await _metric_follows(client, api, "medium") == medium_before + 1
        text = await _press(client, incident, "resolve", "a bad deploy, rolled back")
        assert "Resolved by olivia: a bad deploy, rolled back" in text
        _, buttons = await _page(client, incident)
        assert sorted(buttons) == ["add-note", "reopen"]
        assert await _metric_follows(client, api, "medium") == medium_before

    kinds = [
        k
        for k in _kinds(text)
        if k in ("opened", "reassigned", "note", "acknowledged", "resolved", "action")
    ]
    assert kinds == [
        "opened",
        "action",
        "reassigned",
        "action",
        "note",
        "action",
        "acknowledged",
        "action",
        "resolved",
        "action",
    ]
    audit = api.sql(AUDIT, (f"incident:{incident}",))
    assert [(a, who, why, ok) for a, who, why, ok in audit] == [
        ("action.reassign", "olivia", "finance owns the checkout", "ok"),
        ("action.add-note", "olivia", "Stripe status page is green", "ok"),
        ("action.acknowledge", "olivia", "looking at it now", "ok"),
        ("action.resolve", "olivia", "a bad deploy, rolled back", "ok"),
    ]
    created = api.sql(
        "SELECT actor, reason FROM ops.audit_log WHERE action = 'action.create-incident' "
        "AND details->'result'->>'incident' = %s OR (action = 'action.create-incident' "
        "AND details->>'incident' = %s)",
        (str(incident), str(incident)),
    )
    assert created == [("olivia", "checkout conversion dropped")]


async def _json_action(
    client: httpx.AsyncClient, action: str, query: str, body: dict[str, Any]
) -> httpx.Response:
    headers = {"Idempotency-Key": f"run-{uuid.uuid4().hex}"}
    return await client.post(f"/actions/{action}?{query}", json=body, headers=headers)


async def test_api_keys_change_severity_replanning_escalation_and_reopen(api: Harness) -> None:
    async with api.key_client(Role.OPS) as client:
        opened = await _json_action(
            client,
            "create-incident",
            "source=api",
            {"reason": "opened from a script", "severity": "medium", "team": "support"},
        )
        assert opened.status_code == 200, opened.text
        incident = int(opened.json()["result"]["incident"])
        query = f"incident={incident}&source=api"
        bad = await _json_action(
            client, "set-severity", query, {"reason": "worse", "severity": "sev1"}
        )
        assert bad.status_code == 400
        assert bad.json()["invalid_params"][0]["name"] == "severity"
        assert "critical, high, medium" in bad.json()["detail"]
        unknown = await _json_action(
            client, "set-severity", query, {"reason": "worse", "severity": "high", "urgency": "x"}
        )
        assert unknown.status_code == 400
        assert unknown.json()["invalid_params"][0]["name"] == "urgency"
        before = api.sql(
            "SELECT count(*) FROM ops.escalation_steps WHERE incident_id = %s AND plan = 0 "
            "AND cancelled_at IS NULL",
            (incident,),
        )
        assert before[0][0] > 0
        raised = await _json_action(
            client,
            "set-severity",
            query,
            {"reason": "payments are failing", "severity": "critical"},
        )
        assert raised.status_code == 200, raised.text
        plans = api.sql(
            "SELECT plan, count(*), count(cancelled_at) FROM ops.escalation_steps "
            "WHERE incident_id = %s GROUP BY plan ORDER BY plan",
            (incident,),
        )
        assert plans == [(0, before[0][0], before[0][0]), (1, before[0][0], 0)]
        assert api.sql("SELECT severity FROM ops.incidents WHERE id = %s", (incident,)) == [
            ("critical",)
        ]
        resolved = await _json_action(client, "resolve", query, {"reason": "fixed upstream"})
        assert resolved.status_code == 200, resolved.text
        again = await _json_action(client, "reopen", query, {"reason": "it came back"})
        assert again.status_code == 200, again.text
        twice = await _json_action(client, "reopen", query, {"reason": "it came back"})
        assert twice.status_code == 409
        detail = await client.get(f"/api/v1/incidents/{incident}")
    assert detail.status_code == 200
    body = detail.json()
    assert body["incident"]["status"] == "triggered"
    assert [a["name"] for a in body["actions"]] == [
        "acknowledge",
        "resolve",
        "reassign",
        "set-severity",
        "add-note",
    ]
    texts = [e["text"] for e in body["timeline"]]
    assert any(t.startswith("Severity medium → critical by ") for t in texts), texts
    assert [e["kind"] for e in body["timeline"]].count("replanned") == 2  # severity, reopen
    planned = [e for e in body["timeline"] if e["kind"] == "escalation_planned"]
    assert {e["detail"]["plan"] for e in planned} == {2}
    assert planned[0]["detail"]["will_page"]  # the people on call at that step
    stamps = [e["at"] for e in body["timeline"]]
    assert stamps == sorted(stamps)
