"""/hooks/alertmanager: incidents open, deduplicate, and resolve from Alertmanager's
webhook; /metrics counts the open ones."""

from __future__ import annotations

import hashlib
import re

import httpx
import pytest

from tests.api.conftest import Harness
from tests.incidents.conftest import AM_TOKEN, alert, notification

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": f"Bearer {AM_TOKEN}"}


def _open_metric(text: str, severity: str) -> float:
    match = re.search(rf'^opsdeck_incidents_open{{severity="{severity}"}} (\S+)$', text, re.M)
    assert match, text[-500:]
    return float(match.group(1))


async def _post(client: httpx.AsyncClient, body: object) -> httpx.Response:
    return await client.post("/hooks/alertmanager", json=body, headers=AUTH)


async def test_opens_deduplicates_and_resolves(api: Harness) -> None:
    group = '{}:{alertname="HookTest"}'
    firing = notification(group, alert("HookTest", "aaa1"))
    async with api.client() as client:
        before = _open_metric((await client.get("/metrics")).text, "high")
        first = (await _post(client, firing)).json()
        assert first["opened"] is True
        again = (await _post(client, firing)).json()
        assert again == {"incident": first["incident"], "opened": False, "resolved": False}
        # Another group naming the same alert (a re-routed group) joins the same incident.
        regrouped = notification(
            "other-group", alert("HookTest", "aaa1"), alert("HookTest", "bbb2")
        )
        assert (await _post(client, regrouped)).json()["incident"] == first["incident"]
        assert _open_metric((await client.get("/metrics")).text, "high") == before + 1

        incident = first["incident"]
        row = api.sql(
            "SELECT status, severity, services, runbook_url, dedup_key, suggested_actions "
            "FROM ops.incidents WHERE id = %s",
            (incident,),
        )[0]
        assert row[:5] == (
            "triggered",
            "high",
            ["platform"],
            "http://localhost:8000/runbooks/HookTest.md",
            hashlib.sha256(group.encode()).hexdigest(),  # what Alertmanager's PagerDuty sends
        )
        assert row[5][0]["name"] == "Acknowledge"
        steps = api.sql(
            "SELECT level, round, due_at - '2026-11-22T10:00:00Z'::timestamptz "
            "FROM ops.escalation_steps WHERE incident_id = %s ORDER BY round, level",
            (incident,),
        )
        assert [(lv, r, d.total_seconds() / 60) for lv, r, d in steps] == [
            (0, 0, 0),
            (1, 0, 15),
            (2, 0, 45),
            (0, 1, 120),
            (1, 1, 135),
            (2, 1, 165),
        ]

        half = notification("other-group", alert("HookTest", "aaa1", "resolved"))
        assert (await _post(client, half)).json()["resolved"] is False
        done = notification(
            "other-group",
            alert("HookTest", "aaa1", "resolved"),
            alert("HookTest", "bbb2", "resolved"),
        )
        assert (await _post(client, done)).json()["resolved"] is True
        assert (await _post(client, done)).json() == {
            "incident": None,
            "opened": False,
            "resolved": False,
        }
        assert _open_metric((await client.get("/metrics")).text, "high") == before
    kinds = [
        k
        for (k,) in api.sql(
            "SELECT kind FROM ops.incident_events WHERE incident_id = %s ORDER BY id", (incident,)
        )
    ]
    assert kinds[0] == "opened"
    assert kinds[-1] == "resolved"
    assert kinds.count("alerts") == 5
    queued = api.sql(
        "SELECT transport, kind FROM ops.notifications WHERE incident_id = %s AND step_id IS NULL",
        (incident,),
    )
    # No step fired before the resolution: PagerDuty was never triggered and Slack never
    # announced it, so neither hears anything.
    assert queued == []
    cancelled = api.sql(
        "SELECT count(*) FROM ops.escalation_steps WHERE incident_id = %s AND cancelled_at IS NULL",
        (incident,),
    )
    assert cancelled == [(0,)]


async def test_refuses_bad_tokens_and_bad_bodies(api: Harness) -> None:
    body = notification("g", alert("HookTest", "ccc3"))
    async with api.client() as client:
        assert (await client.post("/hooks/alertmanager", json=body)).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (
            await client.post("/hooks/alertmanager", json=body, headers=wrong)
        ).status_code == 401
        bad = await _post(client, {"version": "3", "alerts": []})
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert "version" in bad.json()["detail"]
        raw = await client.post("/hooks/alertmanager", content=b"{", headers=AUTH)
        assert raw.status_code == 422
