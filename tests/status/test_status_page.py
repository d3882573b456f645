"""The public status page: components from the latest service checks (stale ones are
unknown), and a public notice that follows a customer-facing incident from Alertmanager's
webhook (investigating, identified on acknowledge, resolved with it), reworded by an
operator; reachable without signing in and free of internal names."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from api.rbac import Role
from tests.api.conftest import Harness
from tests.incidents.actions_client import click, confirmation, submit
from tests.incidents.conftest import AM_TOKEN, alert, notification
from tests.status.public_view import INTERNAL, public_text

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": f"Bearer {AM_TOKEN}"}


def _checks(api: Harness, rows: list[tuple[str, str, bool]]) -> None:
    api.sql("DELETE FROM platform.service_checks")
    for service, age, ok in rows:
        api.sql(
            "INSERT INTO platform.service_checks (service, checked_at, ok, latency_ms) "
            "VALUES (%s, now() - %s::interval, %s, 12)",
            (service, age, ok),
        )


async def _hook(api: Harness, body: dict[str, Any]) -> dict[str, Any]:
    async with api.client() as client:
        answer = await client.post("/hooks/alertmanager", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def _public(api: Harness) -> tuple[httpx.Response, httpx.Response]:
    async with api.client() as anonymous:
        page = await anonymous.get("/status", headers={"Accept": "text/html"})
        data = await anonymous.get("/api/v1/status")
    assert page.status_code == 200, page.text[:300]
    assert data.status_code == 200, data.text[:300]
    return page, data


def _public_text(page: httpx.Response, data: httpx.Response) -> str:
    return public_text(page.text, data.json())


def _notice(data: httpx.Response) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        n for n in data.json()["notices"] if n["component"] == "Booking API"
    ]
    (notice,) = found
    return notice


async def test_components_follow_the_latest_fresh_check(api: Harness) -> None:
    _checks(
        api,
        [
            ("booking_api", "10 minutes", False),
            ("booking_api", "5 seconds", True),
            ("payment_webhook_handler", "5 seconds", False),
            ("calendar_sync", "10 minutes", True),  # the checker went silent: unknown
        ],
    )
    page, data = await _public(api)
    states = {c["id"]: c["status"] for c in data.json()["components"]}
    assert states == {
        "booking_api": "operational",
        "payments": "major_outage",
        "calendar_sync": "unknown",
    }
    assert data.json()["status"]["indicator"] == "major_outage"
    assert 'data-component="payments"><td>Payments</td><td data-status="major_outage">' in page.text
    assert data.headers["cache-control"] == "private, max-age=15"
    assert page.headers["cache-control"] == "private, max-age=15"


async def test_booking_api_down_end_to_end(api: Harness) -> None:
    _checks(api, [("booking_api", "5 seconds", False)])
    group, fingerprint = f"group-{uuid.uuid4().hex}", uuid.uuid4().hex[:16]
    firing = notification(group, alert("BookingApiDown", fingerprint, severity="critical"))
    incident = (await _hook(api, firing))["incident"]

    page, data = await _public(api)
    notice = _notice(data)
    assert notice["status"] == "investigating"
    assert notice["title"] == "Bookings may fail or be delayed"
    assert [u["status"] for u in notice["updates"]] == ["investigating"]
    assert f'data-notice="{notice["id"]}" data-status="investigating"' in page.text
    assert "We are investigating reports of problems with Booking API." in page.text
    assert not INTERNAL.search(_public_text(page, data)), INTERNAL.search(_public_text(page, data))

    async with await api.session_client(Role.OPS) as ops:
        done = await click(ops, f"/actions/acknowledge?incident={incident}")
        assert done.status_code == 200, done.text[:300]
    _, data = await _public(api)
    assert _notice(data)["status"] == "identified"

    resolved = notification(group, alert("BookingApiDown", fingerprint, "resolved", "critical"))
    assert (await _hook(api, resolved))["resolved"] is True
    page, data = await _public(api)
    notice = _notice(data)
    assert notice["status"] == "resolved"
    assert notice["resolved_at"] is not None
    assert [u["status"] for u in notice["updates"]] == ["resolved", "identified", "investigating"]
    assert "Booking API is working normally again." in page.text
    assert not INTERNAL.search(_public_text(page, data))

    async with await api.session_client(Role.OPS) as ops:
        done = await click(ops, f"/actions/reopen?incident={incident}", "it is failing again")
        assert done.status_code == 200, done.text[:300]
    _, data = await _public(api)
    notice = _notice(data)
    assert notice["status"] == "investigating"
    assert notice["resolved_at"] is None


async def test_an_internal_alert_opens_no_notice(api: Harness) -> None:
    before = api.sql("SELECT count(*) FROM ops.status_notices")[0][0]
    await _hook(api, notification(f"g-{uuid.uuid4().hex}", alert("HookTest", uuid.uuid4().hex)))
    assert api.sql("SELECT count(*) FROM ops.status_notices")[0][0] == before


async def test_an_operator_rewords_a_notice(api: Harness) -> None:
    body = notification(f"g-{uuid.uuid4().hex}", alert("CalendarSyncDown", uuid.uuid4().hex))
    incident = (await _hook(api, body))["incident"]
    (notice,) = api.sql("SELECT id FROM ops.status_notices WHERE incident_id = %s", (incident,))[0]
    path = f"/status/notices/{notice}/wording"
    async with api.client() as anonymous:
        refused = await anonymous.get(path, headers={"Accept": "text/html"})
        assert refused.status_code == 303
    async with await api.session_client(Role.VIEWER) as viewer:
        assert (await viewer.get(path)).status_code == 403
    async with await api.session_client(Role.OPS) as ops:
        text, csrf, key = await confirmation(ops, path)
        assert "Calendars may be out of date" in text
        form = {
            "csrf_token": csrf,
            "idempotency_key": key,
            "reason": "clearer words for customers",
            "title": "Calendar updates are delayed",
            "message": "New bookings may take a few minutes to show in your calendar.",
        }
        answer = await ops.post(path, data=form, headers={"Accept": "text/html"})
        assert answer.status_code == 200, answer.text[:300]
        again = await ops.post(path, data=form, headers={"Accept": "text/html"})
        assert 'data-replayed="true"' in again.text
        _, csrf, key = await confirmation(ops, path)
        blank = await submit(ops, path, csrf, key)  # no title or message: refused, not blanked
        assert blank.status_code == 400
    page, data = await _public(api)
    (shown,) = [n for n in data.json()["notices"] if n["id"] == notice]
    assert shown["title"] == "Calendar updates are delayed"
    assert shown["updates"][0]["message"].startswith("New bookings may take")
    assert "Calendar updates are delayed" in page.text
    audit = api.sql(
        "SELECT actor, outcome, reason FROM ops.audit_log "
        "WHERE action = 'action.status-notice-wording' AND target_id = %s",
        (str(notice),),
    )
    assert audit == [("ops-user", "ok", "clearer words for customers")]
