"""Slack: ``chat.postMessage`` with Block Kit buttons (Acknowledge, Create incident, Mute
1h), and ``chat.update`` of that message when someone acts on the incident."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.incidents.transports.base import Outgoing
from api.incidents.transports.http import HttpSeam, TransportError

BUTTONS = (("acknowledge", "Acknowledge", "primary"), ("create_incident", "Create incident", ""))
MUTE = ("mute_1h", "Mute 1h", "danger")
# Slack answers 200 with ok=false; these errors are worth another try.
TRANSIENT = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable"})


def _button(action_id: str, text: str, style: str, incident: int) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": str(incident),
    }
    if style:
        button["style"] = style
    return button


def _text(incident: Mapping[str, Any]) -> str:
    return f"[{incident['severity']}] {incident['title']} ({incident['status']})"


def blocks(incident: Mapping[str, Any], footer: str | None = None) -> list[dict[str, Any]]:
    lines = [f"*{_text(incident)}*"]
    if incident.get("summary"):
        lines.append(str(incident["summary"]))
    if incident.get("runbook_url"):
        lines.append(f"<{incident['runbook_url']}|Runbook>")
    result: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}
    ]
    ident = int(incident["id"])
    if incident["status"] == "triggered":
        buttons = [_button(a, t, s, ident) for a, t, s in (*BUTTONS, MUTE)]
        result.append({"type": "actions", "block_id": f"incident-{ident}", "elements": buttons})
    if footer is not None:
        result.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    return result


def _footer(kind: str) -> str:
    if kind.startswith("ack:"):
        return f"Acknowledged by {kind.removeprefix('ack:')}"
    if kind == "resolved":
        return "Resolved"
    action, _, who = kind.partition(":")
    done = {"mute-1h": "Muted for 1h", "create-incident": "Incident declared"}.get(action, action)
    return f"{done} by {who}" if who else done


class SlackTransport:
    name = "slack"

    def __init__(self, http: HttpSeam, api_url: str, token: str) -> None:
        self.http = http
        self.api_url = api_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    async def _call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post_json(f"{self.api_url}/{method}", body, self.headers)
        answer: dict[str, Any] = response.json()
        if not answer.get("ok"):
            error = str(answer.get("error", "unknown"))
            raise TransportError(f"slack {method}: {error}", permanent=error not in TRANSIENT)
        return answer

    async def send(self, note: Outgoing) -> dict[str, Any]:
        incident = note.incident
        if note.recipient != "update":
            body = {"channel": note.recipient, "text": _text(incident), "blocks": blocks(incident)}
            answer = await self._call("chat.postMessage", body)
            return {"channel": answer["channel"], "ts": answer["ts"]}
        if note.previous is None:
            raise TransportError("the Slack message is not posted yet", permanent=False)
        footer = _footer(note.kind)
        body = {
            "channel": note.previous["channel"],
            "ts": note.previous["ts"],
            "text": _text(incident),
            "blocks": blocks(incident, footer),
        }
        answer = await self._call("chat.update", body)
        return {"channel": answer["channel"], "ts": answer["ts"]}
