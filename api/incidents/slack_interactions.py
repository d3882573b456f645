"""``POST /hooks/slack/interactions``: the Acknowledge / Create incident / Mute 1h buttons
of the escalation message. The signature is checked and Slack gets its 200 at once (it
gives up after 3 s); the action runs in the background through the same idempotent path
as the web and API actions, and the message is then updated with who did what."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from api.incidents import escalation, store
from api.incidents.actions.catalog import BY_NAME
from api.incidents.actions.perform import Caller, perform
from api.incidents.actions.spec import Context, Target
from api.incidents.context import Incidents, incidents_of
from api.incidents.slack_signature import verify
from api.problems import Problem
from api.routing import RouteSpec, runtime_of
from api.runtime import Runtime

log = logging.getLogger(__name__)
PATH = "/hooks/slack/interactions"
BUTTONS = {"acknowledge": "acknowledge", "create_incident": "create-incident", "mute_1h": "mute-1h"}
SLACK_ROLE = "ops"  # people in the on-call channel act as Ops (seed 001: incidents and alerts)


def _payload(body: bytes) -> dict[str, Any]:
    try:
        raw = parse_qs(body.decode("utf-8"), strict_parsing=True)["payload"][0]
        payload = json.loads(raw)
    except (KeyError, ValueError, UnicodeDecodeError):
        raise Problem(400, "expected a form field 'payload' holding Slack's JSON") from None
    if not isinstance(payload, dict):
        raise Problem(400, "the payload must be a JSON object")
    return payload


def _clicks(payload: dict[str, Any]) -> list[tuple[str, int, str]]:
    """(action name, incident, action_ts) of each known button in the payload."""
    found = []
    for action in payload.get("actions") or []:
        name = BUTTONS.get(str(action.get("action_id")))
        value = str(action.get("value", ""))
        if name and value.isdigit():
            found.append((name, int(value), str(action.get("action_ts", ""))))
    return found


async def _click(
    runtime: Runtime, incidents: Incidents, user: str, click: tuple[str, int, str]
) -> None:
    name, incident, action_ts = click
    async with runtime.ops.connection() as conn:
        row = await store.get(conn, incident)
    if row is None:
        log.warning("slack: incident %s is unknown", incident)
        return
    target = Target(alertname=row["alertname"], incident=incident, source="slack")
    if name != "acknowledge":
        target = Target(alertname=row["alertname"], source="slack")
    actor = f"slack:{user}"
    key = f"slack:{action_ts}:{user}:{name}:{incident}"  # Slack's retries repeat action_ts
    ctx = Context(runtime, incidents, actor, "Slack button", target, key, incidents.clock())
    outcome, replayed = await perform(BY_NAME[name], ctx, Caller(SLACK_ROLE))
    if name != "acknowledge" and not replayed:  # acknowledging updates the message itself
        async with runtime.ops.connection() as conn:
            kind = f"{name}:{user}"
            await escalation.notify(conn, incident, "slack", "update", kind, ctx.now)
    log.info("slack: %s %s on incident %s: %s", user, name, incident, outcome.message)


async def _work(runtime: Runtime, incidents: Incidents, payload: dict[str, Any]) -> None:
    user = payload.get("user") or {}
    who = str(user.get("username") or user.get("name") or user.get("id") or "unknown")
    for click in _clicks(payload):
        try:
            await _click(runtime, incidents, who, click)
        except Problem as problem:
            log.warning("slack: %s by %s failed: %s", click[0], who, problem.detail)
        except Exception:
            log.exception("slack: %s by %s failed", click[0], who)


async def slack_interactions(request: Request) -> Response:
    incidents, runtime = incidents_of(request), runtime_of(request)
    secret = incidents.settings.slack_signing_secret
    if secret is None:
        raise Problem(401, "Slack buttons are off: incidents.slack_signing_secret is not set")
    body = await request.body()
    verify(
        secret.get_secret_value(),
        request.headers.get("x-slack-request-timestamp"),
        request.headers.get("x-slack-signature"),
        body,
        incidents.clock().timestamp(),
        incidents.settings.slack_tolerance_seconds,
    )
    payload = _payload(body)
    task = asyncio.create_task(_work(runtime, incidents, payload), name="slack-interaction")
    incidents.background.add(task)
    task.add_done_callback(incidents.background.discard)
    return Response(status_code=200)


ROUTES = (
    RouteSpec(
        PATH,
        "slack_interactions",
        slack_interactions,
        None,
        "text",
        "Slack button clicks (signed v0): acknowledged at once, acted on in the background",
        methods=("POST",),
        body={"application/x-www-form-urlencoded": {"type": "object"}},
        tags=("incidents",),
        media_type="text/plain",
        errors={401: "a missing, stale or wrong Slack signature"},
    ),
)
