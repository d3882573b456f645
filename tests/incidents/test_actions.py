"""One-click actions: GET changes nothing, POST needs a CSRF token and a minted
idempotency key, a double submit has one effect, roles without the permission get 403
and an audit entry; and each action's effect against the real Alertmanager and outbox."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import httpx
import pytest

from api.incidents.actions.catalog import ACTIONS
from api.rbac import Role
from tests.api.conftest import Harness
from tests.incidents.actions_client import click, confirmation, submit
from tests.incidents.conftest import open_by_hook

pytestmark = pytest.mark.anyio
STATE = {
    "requests": "SELECT count(*) FROM ops.action_requests",
    "incidents": "SELECT count(*), count(acknowledged_at) FROM ops.incidents",
    "silences": "SELECT count(*) FROM ops.silences",
    "payouts": "SELECT count(*) FROM ops.payout_suspensions",
    "maintenance": "SELECT count(*) FROM ops.maintenance_mode",
    "tickets": "SELECT count(*) FROM ops.finance_tickets",
    "messages": "SELECT count(*) FROM ops.webhook_messages",
    "annotations": "SELECT count(*) FROM ops.grafana_annotations",
}


def _state(api: Harness) -> dict[str, Any]:
    return {name: api.sql(query)[0] for name, query in STATE.items()}


async def test_confirmation_pages_change_nothing(api: Harness) -> None:
    await open_by_hook(api, "GetOnly")
    before = _state(api)
    async with await api.session_client(Role.SUPER_ADMIN) as client:
        for action in ACTIONS:
            path = f"/actions/{action.name}?alertname=GetOnly&source=grafana"
            text, _, _ = await confirmation(client, path)
            assert action.title in text
        as_json = await client.get(
            "/actions/acknowledge?alertname=GetOnly", headers={"Accept": "application/json"}
        )
        assert as_json.json()["counts"] == {"incidents": 1}
    assert _state(api) == before


async def test_post_needs_csrf_and_a_minted_key(api: Harness) -> None:
    path = "/actions/maintenance-on?source=grafana"
    before = _state(api)
    async with await api.session_client(Role.OPS) as client:
        _, csrf, key = await confirmation(client, path)
        no_csrf = await client.post(path, data={"idempotency_key": key, "reason": "no csrf"})
        assert no_csrf.status_code == 403
        assert "CSRF" in no_csrf.text
        no_key = await submit(client, path, csrf, "")
        assert no_key.status_code == 400
        forged = await submit(client, path, csrf, "made-up.key")
        assert forged.status_code == 400
        other_action = (await confirmation(client, "/actions/maintenance-off"))[2]
        assert (await submit(client, path, csrf, other_action)).status_code == 400
        no_reason = await submit(client, path, csrf, key, reason="")
        assert no_reason.status_code == 400
        assert "reason" in no_reason.text
    assert _state(api) == before


async def test_a_double_submit_has_one_effect(api: Harness) -> None:
    path = "/actions/create-incident?panel=conversion&source=grafana"
    before = api.sql("SELECT count(*) FROM ops.incidents")[0][0]
    async with await api.session_client(Role.OPS) as client:
        _, csrf, key = await confirmation(client, path)
        answers: list[httpx.Response] = []

        async def once() -> None:
            answers.append(await submit(client, path, csrf, key))

        async with anyio.create_task_group() as group:
            group.start_soon(once)
            group.start_soon(once)
        again = await submit(client, path, csrf, key)
    statuses = sorted(a.status_code for a in [*answers, again])
    assert statuses in ([200, 200, 200], [200, 200, 409])
    assert 'data-replayed="true"' in again.text
    assert api.sql("SELECT count(*) FROM ops.incidents")[0][0] == before + 1


async def test_api_keys_need_an_idempotency_key(api: Harness) -> None:
    path = "/actions/notify-partners?template=maintenance&source=api"
    count = "SELECT count(*) FROM ops.webhook_messages WHERE event_type = 'partner.notice'"
    before = api.sql(count)[0][0]
    async with api.key_client(Role.OPS) as client:
        missing = await client.post(path, json={"reason": "partner notice"})
        assert missing.status_code == 400
        assert missing.headers["content-type"].startswith("application/problem+json")
        headers = {"Idempotency-Key": f"notify-{uuid.uuid4().hex}"}
        first = await client.post(path, json={"reason": "partner notice"}, headers=headers)
        second = await client.post(path, json={"reason": "partner notice"}, headers=headers)
    assert first.status_code == 200, first.text
    assert second.json() == {**first.json(), "replayed": True}
    assert api.sql(count)[0][0] == before + 1
    (body,) = api.sql(
        "SELECT body::jsonb FROM ops.webhook_messages WHERE event_type = 'partner.notice' "
        "ORDER BY id DESC LIMIT 1"
    )
    assert body[0]["data"]["subject"] == "Scheduled maintenance"


@pytest.mark.parametrize(
    ("role", "action"),
    [(Role.FINANCE, "acknowledge"), (Role.OPS, "suspend-payouts"), (Role.VIEWER, "mute-1h")],
)
async def test_a_role_without_the_permission_is_refused_and_audited(
    api: Harness, role: Role, action: str
) -> None:
    denied = "SELECT count(*) FROM ops.audit_log WHERE outcome = 'denied' AND action = %s"
    before = api.sql(denied, (f"action.{action}",))[0][0]
    async with await api.session_client(role) as client:
        page = await client.get(f"/actions/{action}?alertname=X")
        assert page.status_code == 403
    async with api.key_client(role) as client:
        run = await client.post(
            f"/actions/{action}?alertname=X",
            json={"reason": "not mine"},
            headers={"Idempotency-Key": "denied-12345"},
        )
        assert run.status_code == 403
    assert api.sql(denied, (f"action.{action}",))[0][0] == before + 2


async def test_acknowledge_stops_escalation_and_leaves_a_trace(api: Harness) -> None:
    incident = await open_by_hook(api, "AckAction")
    async with await api.session_client(Role.OPS, "ops-ack") as client:
        done = await click(client, "/actions/acknowledge?alertname=AckAction&source=grafana")
    assert done.status_code == 200, done.text
    assert api.sql(
        "SELECT status, acknowledged_by FROM ops.incidents WHERE id = %s", (incident,)
    ) == [("acknowledged", "ops-ack")]
    live = api.sql(
        "SELECT count(*) FROM ops.escalation_steps WHERE incident_id = %s "
        "AND fired_at IS NULL AND cancelled_at IS NULL",
        (incident,),
    )
    assert live == [(0,)]
    events = api.sql(
        "SELECT kind, actor FROM ops.incident_events WHERE incident_id = %s ORDER BY id",
        (incident,),
    )
    assert ("acknowledged", "ops-ack") in events
    assert ("action", "ops-ack") in events
    audit = api.sql(
        "SELECT actor, reason, outcome, target_id FROM ops.audit_log "
        "WHERE action = 'action.acknowledge' ORDER BY chain_seq DESC LIMIT 1"
    )
    assert audit == [("ops-ack", "testing actions", "ok", "alertname:AckAction")]
    (annotation,) = api.sql(
        "SELECT text, tags FROM ops.grafana_annotations ORDER BY id DESC LIMIT 1"
    )
    assert "Acknowledge by ops-ack" in annotation[0]
    assert annotation[1] == ["opsdeck", "action", "acknowledge"]


async def test_mute_creates_one_silence_and_extends_it(api: Harness) -> None:
    path = "/actions/mute-1h?alertname=MuteMe&source=alert"
    async with await api.session_client(Role.OPS) as client:
        first = await click(client, path)
        second = await click(client, path)
    assert first.status_code == second.status_code == 200
    base = str(api.settings.alertmanager_url).rstrip("/")
    async with httpx.AsyncClient() as am:
        silences = (
            await am.get(f"{base}/api/v2/silences", params={"filter": 'alertname="MuteMe"'})
        ).json()
    active = [s for s in silences if s["status"]["state"] == "active"]
    assert len(active) == 1
    assert api.sql("SELECT silence_id FROM ops.silences WHERE target = 'alertname=MuteMe'") == [
        (active[0]["id"],)
    ]
    assert active[0]["createdBy"] == "ops-user"


async def test_suspend_payouts_needs_a_second_approver(api: Harness) -> None:
    path = "/actions/suspend-payouts?alertname=PaymentReconciliationDriftSuspendPayouts"
    events = "SELECT count(*) FROM ops.webhook_messages WHERE event_type = 'payouts.suspended'"
    async with await api.session_client(Role.FINANCE, "fin-one") as one:
        asked = await click(one, path, "drift above 1%")
        assert asked.status_code == 200, asked.text
        assert "awaits a second approver" in asked.text
        again = await click(one, path, "drift above 1%")
        assert again.status_code == 409
        assert "second approver" in again.text
    assert api.sql(events) == [(0,)]
    async with await api.session_client(Role.FINANCE, "fin-two") as two:
        text, _, _ = await confirmation(two, path)
        assert "fin-one asked to suspend" in text
        approved = await click(two, path, "confirmed drift")
    assert approved.status_code == 200, approved.text
    assert api.sql(events) == [(1,)]
    assert api.sql("SELECT requested_by, approved_by FROM ops.payout_suspensions") == [
        ("fin-one", "fin-two")
    ]


async def test_reprocess_dead_letters_runs_under_a_lease(api: Harness) -> None:
    path = "/actions/reprocess-dead-letters?alertname=WebhookRetryQueueHigh"
    api.sql(
        "INSERT INTO ops.action_leases (name, holder, lease_until) "
        "VALUES ('reprocess-dead-letters', 'someone-else', now() + interval '1 minute')"
    )
    async with await api.session_client(Role.OPS) as client:
        busy = await click(client, path)
        assert busy.status_code == 409
        api.sql("DELETE FROM ops.action_leases")
        done = await click(client, path)
    assert done.status_code == 200, done.text
    assert api.sql("SELECT count(*) FROM ops.action_leases") == [(0,)]


async def test_maintenance_mode_on_and_off(api: Harness) -> None:
    async with await api.session_client(Role.SUPER_ADMIN, "sa-maint") as client:
        assert (await click(client, "/actions/maintenance-on")).status_code == 200
        assert api.sql("SELECT enabled FROM ops.maintenance_mode") == [(True,)]
        assert (await click(client, "/actions/maintenance-off")).status_code == 200
    assert api.sql("SELECT enabled FROM ops.maintenance_mode") == [(False,)]
    types = api.sql(
        "SELECT event_type FROM ops.webhook_messages WHERE event_type LIKE 'maintenance.%%' ORDER BY id"
    )
    assert types == [("maintenance.enabled",), ("maintenance.disabled",)]


async def test_open_finance_ticket(api: Harness) -> None:
    async with await api.session_client(Role.FINANCE) as client:
        done = await click(
            client, "/actions/open-finance-ticket?failure_code=card_declined&panel=p"
        )
    assert done.status_code == 200, done.text
    (context,) = api.sql("SELECT context FROM ops.finance_tickets ORDER BY id DESC LIMIT 1")[0]
    assert context == {"failure_code": "card_declined", "panel": "p", "source": "api"}
