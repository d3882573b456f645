"""/hooks/slack/interactions: v0 signatures (window, constant time, malformed timestamps),
an answer well within Slack's 3 s, the click acted on in the background, once, and the
message updated with who did it; PagerDuty hears the acknowledgement with its dedup_key."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import anyio
import httpx
import psycopg
import pytest
from pydantic import SecretStr

from api.accounts import Admin
from api.incidents import context, escalation_loop
from api.incidents.context import Incidents
from api.incidents.queries.escalation import ENGINE_LEADER
from api.incidents.slack_signature import sign
from api.rbac import Role
from api.slack_users import map_user
from core.queries.leadership import ELECT
from tests.api.conftest import Harness
from tests.incidents.conftest import faked_settings, open_by_hook
from tests.incidents.fakes import Fake

pytestmark = pytest.mark.anyio
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
PATH = "/hooks/slack/interactions"


@pytest.fixture
async def slack_api(api: Harness, fake: tuple[Fake, httpx.AsyncClient]) -> AsyncIterator[Incidents]:
    """Slack buttons on, and Slack user T0001/U0001 mapped to the opsdeck user grace."""
    server, client = fake
    with psycopg.connect(api.db_url) as conn:
        map_user(Admin("test", conn, None), "T0001", "U0001", api.user(Role.OPS, "grace"))
    settings = faked_settings(server, slack_signing_secret=SecretStr(SIGNING_SECRET))
    original = api.app.state.incidents
    api.app.state.incidents = incidents = context.build(settings, client)
    try:
        yield incidents
    finally:
        api.app.state.incidents = original


def _click(action_id: str, incident: int, action_ts: str | None = None) -> bytes:
    payload = {
        "type": "block_actions",
        "team": {"id": "T0001", "domain": "example"},
        "user": {"id": "U0001", "username": "grace-display", "name": "grace-display"},
        "actions": [
            {
                "action_id": action_id,
                "block_id": f"incident-{incident}",
                "value": str(incident),
                "type": "button",
                "action_ts": action_ts or f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def _headers(
    body: bytes, timestamp: str | None = None, secret: str = SIGNING_SECRET
) -> dict[str, str]:
    stamp = timestamp or str(int(time.time()))
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(secret, stamp, body),
    }


def _epoch(api: Harness) -> int:
    """Elect the test as the engine's leader, as a replica winning the lock does."""
    rows = api.sql(ELECT, {"name": ENGINE_LEADER, "holder": "test"})
    return int(rows[0][0])


async def _settle(api: Harness, incidents: Incidents) -> None:
    for task in list(incidents.background):
        await task  # type: ignore[misc]
    await escalation_loop.tick(api.runtime, incidents, _epoch(api))


async def test_signatures_are_checked(api: Harness, slack_api: Incidents) -> None:
    incident = await open_by_hook(api, "SlackSigned")
    body = _click("acknowledge", incident)
    old = str(int(time.time()) - 301)
    cases = {
        "no headers": {"Content-Type": "application/x-www-form-urlencoded"},
        "wrong secret": _headers(body, secret="another-secret"),
        "too old": _headers(body, old),
        "from the future": _headers(body, str(int(time.time()) + 301)),
        "malformed": {**_headers(body), "X-Slack-Request-Timestamp": "1e9"},
        "negative": {**_headers(body), "X-Slack-Request-Timestamp": "-1"},
    }
    async with api.client() as client:
        for why, headers in cases.items():
            answer = await client.post(PATH, content=body, headers=headers)
            assert answer.status_code == 401, why
        tampered = await client.post(PATH, content=body + b"x", headers=_headers(body))
        assert tampered.status_code == 401
    await _settle(api, slack_api)
    status = api.sql("SELECT status FROM ops.incidents WHERE id = %s", (incident,))
    assert status == [("triggered",)]


async def test_without_a_signing_secret_the_buttons_are_refused_with_the_reason(
    api: Harness, fake: tuple[Fake, httpx.AsyncClient]
) -> None:
    server, client = fake
    original = api.app.state.incidents
    api.app.state.incidents = context.build(faked_settings(server), client)
    try:
        body = _click("acknowledge", 1)
        async with api.client() as http:
            answer = await http.post(PATH, content=body, headers=_headers(body))
    finally:
        api.app.state.incidents = original
    assert answer.status_code == 401
    assert "incidents.slack_signing_secret is not set" in answer.json()["detail"]


async def test_acknowledge_click_acts_once_and_updates_the_message(
    api: Harness, slack_api: Incidents, fake: tuple[Fake, httpx.AsyncClient]
) -> None:
    server, _ = fake
    incident = await open_by_hook(api, "SlackAck")
    await escalation_loop.tick(
        api.runtime, slack_api, _epoch(api)
    )  # the first step: the message with buttons
    posted = [b for b in server.bodies("/api/chat.postMessage") if "SlackAck" in b["text"]]
    assert len(posted) == 1
    body = _click("acknowledge", incident, "1700000123.000001")
    async with api.client() as client:
        started = time.monotonic()
        answer = await client.post(PATH, content=body, headers=_headers(body))
        assert time.monotonic() - started < 3
        assert answer.status_code == 200
        retry = await client.post(PATH, content=body, headers=_headers(body))  # Slack retries
        assert retry.status_code == 200
    await _settle(api, slack_api)
    await anyio.sleep(0)
    row = api.sql(
        "SELECT status, acknowledged_by, dedup_key FROM ops.incidents WHERE id = %s", (incident,)
    )
    assert row[0][:2] == ("acknowledged", "grace")
    acks = [b for b in server.bodies("/v2/enqueue") if b["event_action"] == "acknowledge"]
    assert [a["dedup_key"] for a in acks if a["dedup_key"] == row[0][2]] == [row[0][2]]
    (update,) = [b for b in server.bodies("/api/chat.update") if "SlackAck" in b["text"]]
    assert "Acknowledged by grace" in json.dumps(update["blocks"])
    assert not any(b["type"] == "actions" for b in update["blocks"])
    audit = api.sql(
        "SELECT actor, outcome FROM ops.audit_log WHERE action = 'action.acknowledge' "
        "AND actor = 'grace'"
    )
    assert audit == [("grace", "ok")]


async def test_mute_click_updates_the_message(
    api: Harness, slack_api: Incidents, fake: tuple[Fake, httpx.AsyncClient]
) -> None:
    server, _ = fake
    incident = await open_by_hook(api, "SlackMute")
    await escalation_loop.tick(api.runtime, slack_api, _epoch(api))
    body = _click("mute_1h", incident)
    async with api.client() as client:
        assert (await client.post(PATH, content=body, headers=_headers(body))).status_code == 200
    await _settle(api, slack_api)
    assert api.sql("SELECT count(*) FROM ops.silences WHERE target = 'alertname=SlackMute'") == [
        (1,)
    ]
    (update,) = [b for b in server.bodies("/api/chat.update") if "SlackMute" in b["text"]]
    assert "Muted for 1h by grace" in json.dumps(update["blocks"])
    assert any(b["type"] == "actions" for b in update["blocks"])  # still unacknowledged
