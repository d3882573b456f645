"""Opsgenie Alert API v2 — legacy: Opsgenie support ends on 2027-04-05, so it is only
ever a secondary pager. The alert's ``alias`` is the incident's dedup key (the PagerDuty
one), so create, acknowledge and close address the same Opsgenie alert."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from api.incidents.transports.base import Outgoing
from api.incidents.transports.http import HttpSeam

PRIORITIES = {"critical": "P1", "high": "P2", "medium": "P3"}


class OpsgenieTransport:
    name = "opsgenie"

    def __init__(self, http: HttpSeam, api_url: str, api_key: str) -> None:
        self.http = http
        self.base = api_url.rstrip("/") + "/v2/alerts"
        self.headers = {"Authorization": f"GenieKey {api_key}"}

    def request(self, note: Outgoing) -> tuple[str, dict[str, Any]]:
        incident = note.incident
        alias = str(incident["dedup_key"])
        if note.kind == "trigger":
            body = {
                "message": str(incident["title"])[:130],
                "alias": alias,
                "description": str(incident.get("summary") or "")[:15000],
                "priority": PRIORITIES.get(str(incident["severity"]), "P3"),
                "source": "opsdeck",
                "tags": ["opsdeck", str(incident.get("team") or "")],
                "details": {"incident": str(incident["id"])},
            }
            return self.base, body
        action = {"acknowledge": "acknowledge", "resolve": "close"}[note.kind]
        url = f"{self.base}/{quote(alias, safe='')}/{action}?identifierType=alias"
        return url, {"source": "opsdeck", "note": f"{action} in opsdeck"}

    async def send(self, note: Outgoing) -> dict[str, Any]:
        url, body = self.request(note)
        response = await self.http.post_json(url, body, self.headers)
        answer: dict[str, Any] = response.json()
        return {"requestId": answer.get("requestId"), "result": answer.get("result")}
