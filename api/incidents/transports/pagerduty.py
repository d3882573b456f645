"""PagerDuty Events API v2: trigger, acknowledge and resolve one alert per incident.

An incident opened by Alertmanager uses the ``dedup_key`` Alertmanager's own PagerDuty
integration sends for the same alert group (:func:`alertmanager_dedup_key`): opsdeck's
API sits in the same receiver as that integration (``alert_rules/alertmanager.yml``), so
both senders' triggers are one PagerDuty alert and the on-call is paged once, and an
acknowledgement or resolve sent from opsdeck acts on the alert Alertmanager opened."""

from __future__ import annotations

import hashlib
from typing import Any

from api.incidents.transports.base import Outgoing
from api.incidents.transports.http import HttpSeam

SEVERITIES = {"critical": "critical", "high": "error", "medium": "warning"}
SOURCE = "opsdeck"


def alertmanager_dedup_key(group_key: str) -> str:
    """The ``dedup_key`` of Alertmanager's PagerDuty events for an alert group: the SHA-256
    of the group key (the ``groupKey`` of its webhook), in hex."""
    return hashlib.sha256(group_key.encode()).hexdigest()


class PagerDutyTransport:
    name = "pagerduty"

    def __init__(self, http: HttpSeam, events_url: str, routing_key: str) -> None:
        self.http = http
        self.url = events_url.rstrip("/") + "/v2/enqueue"
        self.routing_key = routing_key

    def body(self, note: Outgoing) -> dict[str, Any]:
        incident = note.incident
        body: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": note.kind,
            "dedup_key": incident["dedup_key"],
        }
        if note.kind == "trigger":
            body["payload"] = {
                "summary": str(incident["title"])[:1024],
                "source": SOURCE,
                "severity": SEVERITIES.get(str(incident["severity"]), "warning"),
                "component": ",".join(incident.get("services") or []) or None,
                "group": incident.get("team"),
                "custom_details": {"incident": incident["id"], "summary": incident["summary"]},
            }
            body["payload"] = {k: v for k, v in body["payload"].items() if v is not None}
            if incident.get("runbook_url"):
                body["links"] = [{"href": incident["runbook_url"], "text": "Runbook"}]
        return body

    async def send(self, note: Outgoing) -> dict[str, Any]:
        response = await self.http.post_json(self.url, self.body(note))
        answer: dict[str, Any] = response.json()
        return {"dedup_key": answer.get("dedup_key"), "status": answer.get("status")}
