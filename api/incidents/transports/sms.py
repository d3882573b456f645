"""SMS through a Twilio-compatible API: ``POST /2010-04-01/Accounts/{sid}/Messages.json``,
form-encoded ``To``, ``From``, ``Body``, HTTP basic auth with the account SID and token.
Critical incidents text each person the escalation step pages."""

from __future__ import annotations

from typing import Any

from api.incidents.transports.base import Outgoing
from api.incidents.transports.http import HttpSeam

MAX_BODY = 320  # two SMS segments


class SmsTransport:
    name = "sms"

    def __init__(self, http: HttpSeam, api_url: str, sid: str, token: str, sender: str) -> None:
        self.http = http
        self.url = f"{api_url.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        self.auth = (sid, token)
        self.sender = sender

    def body(self, note: Outgoing) -> str:
        incident = note.incident
        text = f"[{incident['severity']}] #{incident['id']} {incident['title']}"
        if incident.get("runbook_url"):
            text += f" {incident['runbook_url']}"
        return text[:MAX_BODY]

    async def send(self, note: Outgoing) -> dict[str, Any]:
        fields = {"To": note.recipient, "From": self.sender, "Body": self.body(note)}
        response = await self.http.post_form(self.url, fields, auth=self.auth)
        answer: dict[str, Any] = response.json()
        return {"sid": answer.get("sid"), "status": answer.get("status")}
