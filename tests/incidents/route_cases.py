"""The incident routes in the route x role test (tests/api/test_route_roles.py): a valid
request for the Alertmanager hook, the Slack buttons and every action, as the principal at hand."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from api.incidents.slack_signature import sign
from api.routing import RouteSpec
from tests.api.conftest import ALERTMANAGER_TOKEN, SLACK_SIGNING_SECRET
from tests.incidents.actions_client import KEY_RE

MATRIX_ALERT = "MatrixAlert"
TARGET = f"alertname={MATRIX_ALERT}&template=incident&source=api"
OPEN_INCIDENT = """
INSERT INTO ops.incidents (title, severity, status, services, started_at, alertname)
SELECT 'Matrix alert', 'high', 'triggered', '{platform}', now(), %s
WHERE NOT EXISTS (SELECT FROM ops.incidents WHERE alertname = %s AND resolved_at IS NULL)
"""
RESOLVE_MATRIX = """
UPDATE ops.incidents SET status = 'resolved', resolved_at = now()
WHERE alertname = %s AND resolved_at IS NULL
"""
LATEST_MATRIX = "SELECT max(id) FROM ops.incidents WHERE alertname = %s"
# What each incident action's POST carries besides the reason; those that name their
# incident get it (Reopen: a resolved one).
FIELDS = {
    "action_reassign_run": {"team": "finance", "owner": "ada"},
    "action_set_severity_run": {"severity": "medium"},
}
NAMED = ("action_reopen_run", "action_add_note_run")
REASON_FIELD = {"action_add_note_run": "note"}


class Sql(Protocol):
    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]: ...


def _notification() -> dict[str, Any]:
    labels = {"alertname": "MatrixHook", "severity": "medium", "team": "platform"}
    return {
        "version": "4",
        "groupKey": f"matrix-{uuid.uuid4().hex}",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "startsAt": "2026-11-22T10:00:00Z",
                "fingerprint": uuid.uuid4().hex[:16],
            }
        ],
    }


def _signed_slack_ping() -> tuple[bytes, dict[str, str]]:
    """A correctly signed interaction that clicks no button: Slack's side of the route."""
    payload = {"type": "block_actions", "user": {"id": "U0MATRIX"}, "actions": []}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()))
    return body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(SLACK_SIGNING_SECRET, stamp, body),
    }


async def _as_browser(
    client: httpx.AsyncClient, path: str, token: str, fields: dict[str, str]
) -> httpx.Response:
    page = await client.get(path, headers={"Accept": "text/html"})
    found = KEY_RE.search(page.text) if page.status_code == 200 else None
    form = {"csrf_token": token, "idempotency_key": "", **fields}
    if found:
        form["idempotency_key"] = found.group(1)
    return await client.post(path, data=form, headers={"Accept": "text/html"})


async def incident_request(
    api: Sql, client: httpx.AsyncClient, spec: RouteSpec, method: str, path: str, token: str
) -> httpx.Response | None:
    """The request for one of the incident routes' POSTs; None for other routes."""
    if spec.name == "alertmanager_hook":
        auth = {"Authorization": f"Bearer {ALERTMANAGER_TOKEN}"}
        return await client.post(path, json=_notification(), headers=auth)
    if spec.name == "slack_interactions":
        body, headers = _signed_slack_ping()
        return await client.post(path, content=body, headers=headers)
    if not spec.name.startswith("action_") or method != "POST":
        return None
    api.sql(OPEN_INCIDENT, (MATRIX_ALERT, MATRIX_ALERT))
    api.sql("DELETE FROM ops.payout_suspensions WHERE status = 'pending'")  # each is a 1st ask
    path = f"{path.split('?', maxsplit=1)[0]}?{TARGET}"
    if spec.name in NAMED:
        if spec.name == "action_reopen_run":
            api.sql(RESOLVE_MATRIX, (MATRIX_ALERT,))
        path += f"&incident={api.sql(LATEST_MATRIX, (MATRIX_ALERT,))[0][0]}"
    fields = {**FIELDS.get(spec.name, {}), REASON_FIELD.get(spec.name, "reason"): "route matrix"}
    if "authorization" in client.headers:
        headers = {"Idempotency-Key": f"matrix-{uuid.uuid4().hex}"}
        return await client.post(path, json=fields, headers=headers)
    return await _as_browser(client, path, token, fields)
