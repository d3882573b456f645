"""Changes made by hand reach Slack and the pagers: each updates the message of an
incident announced in Slack (and only of such an incident), every incident's update is
sent (two incidents resolved: two updates), and a severity raised before anyone
acknowledged redraws the plan so the pagers are triggered without a second message."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from api.incidents import changes, context, escalation, notifier, store
from api.incidents.alertmanager import Notification
from api.incidents.context import Incidents
from tests.api.conftest import Harness
from tests.incidents.conftest import alert, faked_settings, notification
from tests.incidents.fakes import Fake

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)  # when notification() says alerts start
POST = "/api/chat.postMessage"
UPDATE = "/api/chat.update"
ENQUEUE = "/v2/enqueue"
Conn = psycopg.AsyncConnection[Any]


@pytest.fixture
async def wired(
    api: Harness, fake: tuple[Fake, httpx.AsyncClient]
) -> AsyncIterator[tuple[Incidents, Conn, Fake]]:
    server, client = fake
    incidents = context.build(faked_settings(server, retry_jitter=0.0), client)
    async with await psycopg.AsyncConnection.connect(api.db_url, autocommit=True) as conn:
        yield incidents, conn, server


async def _at(incidents: Incidents, conn: Conn, minutes: float) -> None:
    now = T0 + timedelta(minutes=minutes)
    await escalation.fire_due(conn, now, incidents.oncall, incidents.settings)
    await notifier.deliver_due(conn, incidents.transports, now, incidents.settings)


async def _open(incidents: Incidents, conn: Conn, name: str, severity: str = "high") -> int:
    note = Notification.model_validate(
        notification(name, alert(name, f"fp-{name}", severity=severity))
    )
    applied = await store.apply_notification(conn, note, T0, incidents.oncall, incidents.settings)
    assert applied.incident is not None
    return applied.incident


def _change(incidents: Incidents, minutes: float) -> changes.Change:
    at = T0 + timedelta(minutes=minutes)
    return changes.Change("ada", at, "by hand", incidents.oncall, incidents.settings)


def _footers(server: Fake, name: str) -> list[str]:
    found = []
    for body in server.bodies(UPDATE):
        if name in body["text"]:
            context_blocks = [b for b in body["blocks"] if b["type"] == "context"]
            found.append(context_blocks[0]["elements"][0]["text"])
    return found


async def test_every_change_updates_the_slack_message(
    wired: tuple[Incidents, Conn, Fake],
) -> None:
    incidents, conn, server = wired
    incident = await _open(incidents, conn, "RunSlack")
    await _at(incidents, conn, 0)  # the first step posts the message
    async with conn.transaction():
        assert await changes.reassign(conn, incident, _change(incidents, 1), "grace", "finance")
        assert await changes.set_severity(conn, incident, _change(incidents, 1), "critical")
        await changes.add_note(conn, incident, _change(incidents, 1), "a note")
        assert await store.resolve(conn, incident, "ada", T0 + timedelta(minutes=2), "done")
        assert await changes.reopen(conn, incident, _change(incidents, 3))
    await _at(incidents, conn, 3)
    assert _footers(server, "RunSlack") == [
        "Reassigned by ada",
        "Severity changed by ada",
        "Note added by ada",
        "Resolved by ada",
        "Reopened by ada",
    ]
    last = [b for b in server.bodies(UPDATE) if "RunSlack" in b["text"]][-1]
    assert "[critical]" in last["text"]
    assert "(triggered)" in last["text"]
    assert any(b["type"] == "actions" for b in last["blocks"])  # buttons are back
    assert len([b for b in server.bodies(POST) if "RunSlack" in b["text"]]) == 1


async def test_two_incidents_resolved_send_two_updates_and_two_resolves(
    wired: tuple[Incidents, Conn, Fake],
) -> None:
    incidents, conn, server = wired
    first = await _open(incidents, conn, "RunTwinA")
    second = await _open(incidents, conn, "RunTwinB")
    await _at(incidents, conn, 0)
    async with conn.transaction():
        for incident in (first, second):
            assert await store.resolve(conn, incident, "ada", T0 + timedelta(minutes=1))
    await _at(incidents, conn, 1)
    assert _footers(server, "RunTwinA") == ["Resolved by ada"]
    assert _footers(server, "RunTwinB") == ["Resolved by ada"]
    keys = {
        row[0]
        for row in await (
            await conn.execute(
                "SELECT dedup_key FROM ops.incidents WHERE id = ANY(%s)", ([first, second],)
            )
        ).fetchall()
    }
    resolves = {b["dedup_key"] for b in server.bodies(ENQUEUE) if b["event_action"] == "resolve"}
    assert keys <= resolves, (keys, resolves)


async def test_an_incident_never_announced_in_slack_queues_no_update(
    wired: tuple[Incidents, Conn, Fake],
) -> None:
    incidents, conn, _ = wired
    incident = await _open(incidents, conn, "RunQuiet")
    async with conn.transaction():
        await changes.add_note(conn, incident, _change(incidents, 0), "before any step fired")
    rows = await (
        await conn.execute(
            "SELECT count(*) FROM ops.notifications WHERE incident_id = %s", (incident,)
        )
    ).fetchone()
    assert rows == (0,)


async def test_raising_severity_replans_and_triggers_the_pagers_once_posted(
    wired: tuple[Incidents, Conn, Fake],
) -> None:
    incidents, conn, server = wired
    incident = await _open(incidents, conn, "RunRaise", severity="medium")
    await _at(incidents, conn, 0)
    (dedup,) = (
        await (
            await conn.execute("SELECT dedup_key FROM ops.incidents WHERE id = %s", (incident,))
        ).fetchone()
    ) or ("",)
    triggers = [b for b in server.bodies(ENQUEUE) if b["dedup_key"] == dedup]
    assert triggers == []  # medium does not page
    async with conn.transaction():
        assert await changes.set_severity(conn, incident, _change(incidents, 5), "high")
    await _at(incidents, conn, 5)
    triggers = [b for b in server.bodies(ENQUEUE) if b["dedup_key"] == dedup]
    assert [t["event_action"] for t in triggers] == ["trigger"]
    assert len([b for b in server.bodies(POST) if "RunRaise" in b["text"]]) == 1
    await _at(incidents, conn, 15)  # the first plan's level 1 was cancelled: none fires
    await _at(incidents, conn, 19.9)
    fired = await (
        await conn.execute(
            "SELECT plan, level FROM ops.escalation_steps WHERE incident_id = %s "
            "AND fired_at IS NOT NULL ORDER BY fired_at, id",
            (incident,),
        )
    ).fetchall()
    assert fired == [(0, 0), (1, 0)]
    await _at(incidents, conn, 20)  # the redrawn plan's level 1, 15 minutes after the change
    fired = await (
        await conn.execute(
            "SELECT plan, level FROM ops.escalation_steps WHERE incident_id = %s "
            "AND fired_at IS NOT NULL ORDER BY fired_at, id",
            (incident,),
        )
    ).fetchall()
    assert fired == [(0, 0), (1, 0), (1, 1)]
    assert "Severity changed by ada" in json.dumps(_footers(server, "RunRaise"))
