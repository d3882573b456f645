"""``POST /hooks/slack/interactions``: the Acknowledge / Create incident / Mute 1h buttons
of the escalation message. The signature is checked and Slack gets its 200 at once (it
gives up after 3 s); the action runs in the background through the same idempotent path
as the web and API actions, and the message is then updated with who did what.

The clicker is the opsdeck user their Slack team id and user id are mapped to
(``opsdeck slack-users``), acting with that user's role and named by that username. A click
from an unmapped or disabled user, or one whose role lacks the button's permission, is
answered with an ephemeral message and does nothing."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.incidents import escalation, store
from api.incidents.actions.catalog import BY_NAME
from api.incidents.actions.perform import Caller, perform
from api.incidents.actions.spec import Context, Target
from api.incidents.context import Incidents, incidents_of
from api.incidents.slack_signature import verify
from api.problems import Problem
from api.rbac import allowed
from api.routing import RouteSpec, runtime_of
from api.runtime import Runtime
from api.slack_users import SLACK_ID, SlackPerson, person_of
from core import json_depth

log = logging.getLogger(__name__)
PATH = "/hooks/slack/interactions"
BUTTONS = {"acknowledge": "acknowledge", "create_incident": "create-incident", "mute_1h": "mute-1h"}
EPHEMERAL_SCHEMA = {
    "type": "object",
    "required": ["response_type", "text"],
    "properties": {"response_type": {"const": "ephemeral"}, "text": {"type": "string"}},
}


class Refused(Exception):
    """A click that does nothing; the message tells the clicker why (only them)."""


@dataclass(frozen=True)
class Clicker:
    """Who clicked: Slack's ids (stable; the display name is the user's to change) and
    the opsdeck user they are mapped to."""

    team_id: str
    slack_user_id: str
    person: SlackPerson


def _payload(body: bytes) -> dict[str, Any]:
    try:
        raw = parse_qs(body.decode("utf-8"), strict_parsing=True)["payload"][0]
        payload = json_depth.loads(raw)
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


def _slack_ids(payload: dict[str, Any]) -> tuple[str, str] | None:
    """(team id, user id) of the clicking Slack user, as Slack sends them."""
    team, user = payload.get("team"), payload.get("user")
    if not isinstance(team, dict) or not isinstance(user, dict):
        return None
    team_id, user_id = str(team.get("id") or ""), str(user.get("id") or "")
    if not SLACK_ID.match(team_id) or not SLACK_ID.match(user_id):
        return None
    return team_id, user_id


def _ephemeral(text: str) -> JSONResponse:
    """An answer only the clicking user sees; nothing was done."""
    return JSONResponse({"response_type": "ephemeral", "text": text})


async def _clicker(runtime: Runtime, payload: dict[str, Any]) -> Clicker:
    """The mapped, enabled opsdeck user behind the click."""
    ids = _slack_ids(payload)
    if ids is None:
        raise Refused("Slack did not say who clicked; nothing was done.")
    async with runtime.ops.connection() as conn:
        person = await person_of(conn, *ids)
    if person is None:
        raise Refused(
            f"Your Slack account ({ids[0]}/{ids[1]}) is not linked to an opsdeck user, so "
            "nothing was done. Ask an opsdeck admin to run `opsdeck slack-users map "
            f"{ids[0]} {ids[1]} <your opsdeck username>`."
        )
    if person.disabled:
        raise Refused(f"The opsdeck user {person.username} is disabled; nothing was done.")
    return Clicker(ids[0], ids[1], person)


def _check_role(clicker: Clicker, clicks: list[tuple[str, int, str]]) -> None:
    """Every button clicked is one the clicker's opsdeck role may press."""
    for name, _, _ in clicks:
        permission = BY_NAME[name].permission
        if not allowed(clicker.person.role, permission):
            raise Refused(
                f"{clicker.person.username} ({clicker.person.role}) does not hold "
                f"{permission}, so nothing was done."
            )


async def _click(
    runtime: Runtime, incidents: Incidents, clicker: Clicker, click: tuple[str, int, str]
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
    person = clicker.person
    # Slack's retries repeat action_ts.
    key = f"slack:{action_ts}:{clicker.team_id}:{clicker.slack_user_id}:{name}:{incident}"
    ctx = Context(
        runtime,
        incidents,
        person.username,
        "Slack button",
        target,
        key,
        incidents.clock(),
        user_id=person.user_id,
    )
    outcome, replayed = await perform(BY_NAME[name], ctx, Caller(person.role))
    if name != "acknowledge" and not replayed:  # acknowledging updates the message itself
        async with runtime.ops.connection() as conn:
            kind = f"{name}:{person.username}"
            await escalation.notify(conn, incident, "slack", "update", kind, ctx.now)
    log.info("slack: %s %s on incident %s: %s", person.username, name, incident, outcome.message)


async def _work(
    runtime: Runtime, incidents: Incidents, clicker: Clicker, clicks: list[tuple[str, int, str]]
) -> None:
    who = clicker.person.username
    for click in clicks:
        try:
            await _click(runtime, incidents, clicker, click)
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
    clicks = _clicks(payload)
    if not clicks:
        return Response(status_code=200)
    try:
        clicker = await _clicker(runtime, payload)
        _check_role(clicker, clicks)
    except Refused as refused:
        log.warning("slack: a click was refused: %s", refused)
        return _ephemeral(str(refused))
    task = asyncio.create_task(_work(runtime, incidents, clicker, clicks), name="slack-interaction")
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
        "Slack button clicks (signed v0) of mapped users: acknowledged at once, acted on in "
        "the background with the mapped opsdeck user's role; any other click is refused in "
        "an ephemeral message",
        methods=("POST",),
        alternatives={"application/json": EPHEMERAL_SCHEMA},
        body={"application/x-www-form-urlencoded": {"type": "object"}},
        tags=("incidents",),
        media_type="text/plain",
        errors={401: "a missing, stale or wrong Slack signature"},
    ),
)
