"""End to end: the payment webhook handler's health checks fail (the simulator's
``webhook-handler-down``), the real Prometheus fires PaymentWebhookHandlerDown, the real
Alertmanager posts to a real opsdeck API, an incident opens, the escalation engine posts to
Slack (with buttons) and PagerDuty (local HTTPS fakes); a signed Slack "Acknowledge" stops
escalation and acknowledges in PagerDuty with the same dedup_key; "Mute 1h" makes one real
silence and Alertmanager shows the alert suppressed; the handler coming back (after the
silence is lifted) resolves the alert and the incident. Then the booking API's checks fail
for a while: BookingApiDown fires and resolves through the same path, and the public status
page, signed out, shows its notice while it fires and, once the API is back, its
resolution."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx
import psycopg
import pytest
import uvicorn
from pydantic import SecretStr

from api.accounts import Admin, add_user
from api.app import create_app
from api.incidents.slack_signature import sign
from api.rbac import Role
from api.slack_users import map_user
from core.settings import Settings
from opsdeck.cli.demo import DEMO_RATE
from opsdeck.embedded import free_port
from simulator.inject import end, inject
from tests.alerting.sinks import PAGERDUTY
from tests.alerting.stack import SECRETS, Stack, monitoring_stack
from tests.api.conftest import api_settings
from tests.incidents.conftest import incident_settings
from tests.incidents.fakes import Fake, https_fake
from tests.status.public_view import INTERNAL, public_text

# Its stack may wait for another test file's stack (tests.alerting.stack) first.
pytestmark = [pytest.mark.slow, pytest.mark.anyio, pytest.mark.timeout(1500)]
ALERT = "PaymentWebhookHandlerDown"
KIND = "webhook-handler-down"
SIGNING_SECRET = "e2e-slack-signing-secret-0123456789"
# A service stays down until the test brings it back (``simulate --end``), well before.
DOWN_MINUTES = 15.0
FIRE_TIMEOUT = 150.0
# A check every 15 s, then a scrape, an evaluation and Alertmanager's group interval.
RESOLVE_TIMEOUT = 120.0
# One transient failure is retried after 5 s (IncidentSettings.retry_schedule_seconds).
PAGER_TIMEOUT = 30.0


@dataclass
class World:
    stack: Stack
    fake: Fake
    api_url: str
    settings: Settings

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.stack.db_url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []


async def _until(what: str, check: Callable[[], Awaitable[bool] | bool], timeout: float) -> None:
    started = time.monotonic()
    while time.monotonic() < started + timeout:
        result = check()
        if result if isinstance(result, bool) else await result:
            print(f"{what}: {time.monotonic() - started:.1f} s", flush=True)
            return
        await anyio.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout:.0f} s")


def _settings(stack: Stack, fake: Fake, redis_url: str) -> Settings:
    base = api_settings(stack.db_url, redis_url, stack.alertmanager_url)
    incidents = incident_settings(
        alertmanager_token=SecretStr(SECRETS["alertmanager_api_token"]),
        engine_enabled=True,
        tick_seconds=0.5,
        slack_bot_token=SecretStr("xoxb-e2e"),
        slack_signing_secret=SecretStr(SIGNING_SECRET),
        slack_api_url=fake.base + "/api",
        pagerduty_events_url=fake.base,
    )
    return base.model_copy(update={"incidents": incidents})


@pytest.fixture(scope="module")
async def world(
    admin_url: str,
    demo_history_template: str,
    api_redis: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[World]:
    work: Path = tmp_path_factory.mktemp("incidents-e2e")
    port = free_port(0)
    api_url = f"http://127.0.0.1:{port}"
    with (
        https_fake() as (fake, client),
        monitoring_stack(
            admin_url,
            demo_history_template,
            work,
            api_url=api_url,
            traffic_rate=DEMO_RATE,
            lane="light",
        ) as stack,
    ):
        settings = _settings(stack, fake, api_redis)
        _map_slack_user(stack.db_url)
        app = create_app(settings, http_client=client)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        async with client, anyio.create_task_group() as group:
            group.start_soon(server.serve)
            await _until("API start", lambda: server.started, 30)
            yield World(stack, fake, api_url, settings)
            server.should_exit = True


def _incident(world: World) -> tuple[Any, ...] | None:
    rows = world.sql(
        "SELECT id, status, dedup_key FROM ops.incidents WHERE alertname = %s ORDER BY id",
        (ALERT,),
    )
    return rows[-1] if rows else None


def _status(world: World, incident: int) -> str:
    (row,) = world.sql("SELECT status FROM ops.incidents WHERE id = %s", (incident,))
    return str(row[0])


def _map_slack_user(db_url: str) -> None:
    """The Slack user who clicks acts as the opsdeck user ada, an Ops user."""
    with psycopg.connect(db_url) as conn:
        admin = Admin("e2e", conn, None)
        add_user(admin, "ada", Role.OPS, "e2e password 0123456789", two_factor=False)
        map_user(admin, "T0E2E", "U0E2E", "ada")


def _click(action_id: str, incident: int) -> tuple[bytes, dict[str, str]]:
    payload = {
        "type": "block_actions",
        "team": {"id": "T0E2E"},
        "user": {"id": "U0E2E", "username": "ada"},
        "actions": [
            {"action_id": action_id, "value": str(incident), "action_ts": f"{time.time():.6f}"}
        ],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(SIGNING_SECRET, stamp, body),
    }
    return body, headers


async def _post_click(world: World, action_id: str, incident: int) -> None:
    body, headers = _click(action_id, incident)
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{world.api_url}/hooks/slack/interactions", content=body, headers=headers
        )
    assert answer.status_code == 200, answer.text


def _direct(world: World) -> list[dict[str, Any]]:
    """PagerDuty events Alertmanager sent for the alert itself (its receiver's integration)."""
    return [
        r.body
        for r in world.stack.http.received()
        if r.path == PAGERDUTY and r.body["payload"]["summary"].startswith(f"{ALERT}:")
    ]


def _alertmanager_state(world: World) -> str | None:
    alerts = world.stack.alertmanager_alerts()
    states = [a["status"]["state"] for a in alerts if a["labels"].get("alertname") == ALERT]
    return states[0] if states else None


async def test_from_a_failing_service_to_a_resolved_incident(world: World) -> None:
    stack, fake = world.stack, world.fake
    thresholds = world.settings.thresholds
    await anyio.to_thread.run_sync(
        lambda: inject(KIND, stack.db_url, stack.db_url, thresholds, DOWN_MINUTES, 7)
    )
    await _until("incident from Alertmanager", lambda: _incident(world) is not None, FIRE_TIMEOUT)
    incident, status, dedup = _incident(world) or ()
    assert status == "triggered"

    def paged() -> bool:
        posts = [b for b in fake.bodies("/api/chat.postMessage") if ALERT in b["text"]]
        triggers = [b for b in fake.bodies("/v2/enqueue") if b["dedup_key"] == dedup]
        return bool(posts) and bool(triggers)

    await _until("Slack message and PagerDuty trigger", paged, 30)
    # Alertmanager pages PagerDuty for the same alert itself, with the same dedup_key:
    # PagerDuty folds the two triggers into one alert, so the on-call is paged once.
    await _until("Alertmanager's own PagerDuty trigger", lambda: bool(_direct(world)), 30)
    assert {b["dedup_key"] for b in _direct(world)} == {dedup}
    (post,) = [b for b in fake.bodies("/api/chat.postMessage") if ALERT in b["text"]]
    buttons = [e["action_id"] for e in post["blocks"][1]["elements"]]
    assert buttons == ["acknowledge", "create_incident", "mute_1h"]

    await _post_click(world, "acknowledge", incident)
    await _until("acknowledgement", lambda: _status(world, incident) == "acknowledged", 20)

    def acknowledged_in_pagerduty() -> bool:
        return any(
            b["event_action"] == "acknowledge" and b["dedup_key"] == dedup
            for b in fake.bodies("/v2/enqueue")
        )

    await _until("PagerDuty acknowledge", acknowledged_in_pagerduty, 20)
    live = world.sql(
        "SELECT count(*) FROM ops.escalation_steps WHERE incident_id = %s "
        "AND fired_at IS NULL AND cancelled_at IS NULL",
        (incident,),
    )
    assert live == [(0,)]

    await _post_click(world, "mute_1h", incident)
    await _until("a silence", lambda: bool(world.sql("SELECT 1 FROM ops.silences")), 20)
    await _until("the alert suppressed", lambda: _alertmanager_state(world) == "suppressed", 30)
    silences = [
        s
        for s in httpx.get(f"{stack.alertmanager_url}/api/v2/silences", timeout=10).json()
        if s["status"]["state"] == "active"
    ]
    assert len(silences) == 1
    assert silences[0]["matchers"][0]["value"] == ALERT

    # A silenced alert's resolution is muted too: lift the silence, then bring it back.
    httpx.delete(f"{stack.alertmanager_url}/api/v2/silence/{silences[0]['id']}", timeout=10)
    assert await anyio.to_thread.run_sync(lambda: end(KIND, stack.db_url))
    try:
        await _until(
            "the incident resolved",
            lambda: _status(world, incident) == "resolved",
            RESOLVE_TIMEOUT,
        )
    except AssertionError as exc:
        up = stack.query('opsdeck_service_up{service="payment_webhook_handler"}')
        alerts = world.sql("SELECT incident_id, fingerprint, status FROM ops.incident_alerts")
        state = _alertmanager_state(world)
        opened = world.sql("SELECT id, status, group_key FROM ops.incidents ORDER BY id")
        raise AssertionError(
            f"{exc}; service up {up}; Alertmanager {state}; {alerts}; incidents {opened}"
        ) from exc
    await _resolved_in_pagerduty(world, dedup)
    posts = [b for b in fake.bodies("/api/chat.postMessage") if ALERT in b["text"]]
    assert len(posts) == 1  # escalation never paged again after the acknowledgement


async def _resolved_in_pagerduty(world: World, dedup: str) -> None:
    try:
        await _until(
            "PagerDuty resolve",
            lambda: any(
                b["event_action"] == "resolve" and b["dedup_key"] == dedup
                for b in world.fake.bodies("/v2/enqueue")
            ),
            PAGER_TIMEOUT,
        )
    except AssertionError as exc:
        queue = world.sql(
            "SELECT n.transport, n.kind, n.status, n.attempts, n.last_error FROM ops.notifications n "
            "JOIN ops.incidents i ON i.id = n.incident_id WHERE i.dedup_key = %s ORDER BY n.id",
            (dedup,),
        )
        raise AssertionError(f"{exc}; notifications {queue}") from exc


async def _public(world: World) -> tuple[str, dict[str, Any]]:
    """The status page and its JSON, signed out (the API runs in this event loop)."""
    async with httpx.AsyncClient(base_url=world.api_url, timeout=10) as anonymous:
        page = await anonymous.get("/status", headers={"Accept": "text/html"})
        data = await anonymous.get("/api/v1/status")
    assert page.status_code == 200, page.text[:300]
    assert data.status_code == 200, data.text[:300]
    shown: dict[str, Any] = data.json()
    return page.text, shown


async def _booking_notice(world: World) -> dict[str, Any] | None:
    notices = [n for n in (await _public(world))[1]["notices"] if n["component"] == "Booking API"]
    return notices[-1] if notices else None


async def _notice_is(world: World, status: str) -> bool:
    return ((await _booking_notice(world)) or {}).get("status") == status


async def test_booking_api_down_shows_on_the_public_status_page(world: World) -> None:
    stack = world.stack
    assert await _booking_notice(world) is None
    await anyio.to_thread.run_sync(
        lambda: inject(
            "service-down", stack.db_url, stack.db_url, world.settings.thresholds, DOWN_MINUTES, 7
        )
    )
    await _until("a public notice", lambda: _notice_is(world, "investigating"), FIRE_TIMEOUT)
    (incident,) = world.sql(
        "SELECT id FROM ops.incidents WHERE alertname = 'BookingApiDown' AND resolved_at IS NULL"
    )
    page, data = await _public(world)
    assert {c["id"]: c["status"] for c in data["components"]}["booking_api"] == "major_outage"
    assert not INTERNAL.search(public_text(page, data)), INTERNAL.search(public_text(page, data))

    assert await anyio.to_thread.run_sync(lambda: end("service-down", stack.db_url))
    await _until("the notice resolved", lambda: _notice_is(world, "resolved"), RESOLVE_TIMEOUT)
    assert _status(world, incident[0]) == "resolved"
    page, data = await _public(world)
    assert {c["id"]: c["status"] for c in data["components"]}["booking_api"] == "operational"
    assert "Booking API is working normally again." in page
    assert not INTERNAL.search(public_text(page, data)), INTERNAL.search(public_text(page, data))
