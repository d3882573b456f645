"""``opsdeck oncall sync``: make PagerDuty's schedules and escalation policy match the
on-call file, through PagerDuty's REST API v2, when PagerDuty is the pager of record.
Objects are found by name and updated in place (PUT) or created (POST): running the sync
twice changes nothing the second time. Users are matched by email and never created."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import httpx

from alert_rules.oncall import EscalationPolicy, OnCall, Schedule

ACCEPT = "application/vnd.pagerduty+json;version=2"


class SyncError(Exception):
    pass


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


class PagerDutyRest:
    def __init__(self, client: httpx.Client, base_url: str, token: str) -> None:
        self.client = client
        self.base = base_url.rstrip("/")
        self.headers = {
            "Authorization": f"Token token={token}",
            "Accept": ACCEPT,
            "Content-Type": "application/json",
        }

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.client.request(
                method, f"{self.base}{path}", headers=self.headers, **kwargs
            )
        except httpx.HTTPError as exc:
            raise SyncError(f"PagerDuty unreachable: {exc}") from exc
        if response.is_error:
            raise SyncError(
                f"PagerDuty {method} {path}: {response.status_code} {response.text[:300]}"
            )
        answer: dict[str, Any] = response.json()
        return answer

    def find(self, collection: str, name: str, key: str = "name") -> dict[str, Any] | None:
        found = self.call("GET", f"/{collection}", params={"query": name})[collection]
        return next((item for item in found if item.get(key) == name), None)


def _user_ids(rest: PagerDutyRest, oncall: OnCall) -> dict[str, str]:
    ids = {}
    for user in oncall.users:
        found = rest.find("users", user.email, key="email")
        if found is None:
            raise SyncError(f"no PagerDuty user with email {user.email} ({user.id})")
        ids[user.id] = str(found["id"])
    return ids


def schedule_body(schedule: Schedule, users: dict[str, str]) -> dict[str, Any]:
    start = schedule.handoff.astimezone(UTC).isoformat()
    layer = {
        "name": "Rotation",
        "start": start,
        "rotation_virtual_start": start,
        "rotation_turn_length_seconds": schedule.turn_days * 86_400,
        "users": [{"user": {"id": users[u], "type": "user_reference"}} for u in schedule.users],
    }
    return {
        "schedule": {
            "type": "schedule",
            "name": schedule.name,
            "time_zone": schedule.time_zone,
            "description": f"opsdeck on-call file: {schedule.id}",
            "schedule_layers": [layer],
        }
    }


def policy_body(policy: EscalationPolicy, schedules: dict[str, str], loops: int) -> dict[str, Any]:
    rules = [
        {
            "escalation_delay_in_minutes": level.escalation_delay_minutes,
            "targets": [{"id": schedules[t], "type": "schedule_reference"} for t in level.targets],
        }
        for level in policy.levels
    ]
    return {
        "escalation_policy": {
            "type": "escalation_policy",
            "name": policy.name,
            "num_loops": loops,
            "escalation_rules": rules,
            "description": f"opsdeck on-call file: {policy.id}",
        }
    }


def _upsert(
    rest: PagerDutyRest, collection: str, name: str, body: dict[str, Any], report: SyncReport
) -> str:
    existing = rest.find(collection, name)
    kind = next(iter(body))
    if existing is None:
        created = rest.call("POST", f"/{collection}", json=body)[kind]
        report.created.append(f"{kind} {name}")
        return str(created["id"])
    rest.call("PUT", f"/{collection}/{existing['id']}", json=body)
    report.updated.append(f"{kind} {name}")
    return str(existing["id"])


def sync(rest: PagerDutyRest, oncall: OnCall, loops: int) -> SyncReport:
    report = SyncReport()
    users = _user_ids(rest, oncall)
    schedules = {
        s.id: _upsert(rest, "schedules", s.name, schedule_body(s, users), report)
        for s in oncall.schedules
    }
    for policy in oncall.escalation_policies:
        body = policy_body(policy, schedules, loops)
        _upsert(rest, "escalation_policies", policy.name, body, report)
    return report
