"""``opsdeck oncall sync``: make PagerDuty's schedules and escalation policy match the
on-call file, through PagerDuty's REST API v2, when PagerDuty is the pager of record.

The ``pagerduty`` package's :class:`~pagerduty.RestApiV2Client` speaks the API: it reads
every page of an index (classic ``offset``/``limit``/``more`` pagination), so an object on
page 2 is found and never created twice, and it retries 429 and 5xx answers with backoff.
Objects are found by exact name (PagerDuty's ``query`` matches substrings; the client
compares the whole name, case-insensitively as PagerDuty's uniqueness does) and updated in
place (PUT) or created (POST): running the sync twice changes nothing the second time.
Users are matched by email and never created. Every failure is a :class:`SyncError`."""

from __future__ import annotations

import math
import ssl
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import pagerduty

from core.oncall import EscalationPolicy, OnCall, Schedule

ACCEPT = "application/vnd.pagerduty+json;version=2"
# Retries per status before the sync gives up (PagerDuty asks clients to back off on 429;
# a 5xx is usually a short outage). The client doubles its wait after each attempt.
RETRIES = {429: 5, 500: 3, 502: 3, 503: 3, 504: 3}
# What the client raises: HTTP errors after its retries, network errors, a refused URL.
CLIENT_ERRORS = (pagerduty.Error, pagerduty.UrlError)


class SyncError(Exception):
    pass


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


def rest_client(
    base_url: str,
    token: str,
    *,
    timeout: float = 10.0,
    verify: ssl.SSLContext | bool = True,
    backoff_seconds: float = 1.5,
) -> pagerduty.RestApiV2Client:
    """A REST API v2 client for ``token`` (a REST API key) at ``base_url`` (https only);
    ``verify`` is the TLS trust (a context for a private CA); the wait before a retry
    starts at twice ``backoff_seconds`` and doubles. Close it (``with``) when done."""
    try:
        client = pagerduty.RestApiV2Client(token, base_url=base_url.rstrip("/"), verify=verify)
    except CLIENT_ERRORS as exc:  # a URL that is not https
        raise SyncError(f"PagerDuty API URL {base_url!r}: {exc}") from exc
    client.timeout = math.ceil(timeout)  # the client's read timeout is whole seconds
    client.retry = dict(RETRIES)
    client.max_http_attempts = sum(RETRIES.values())
    client.sleep_timer = backoff_seconds
    return client


def _find(
    rest: pagerduty.RestApiV2Client, collection: str, value: str, key: str = "name"
) -> dict[str, Any] | None:
    try:
        found = rest.find(collection, value, attribute=key)
    except CLIENT_ERRORS as exc:
        raise SyncError(f"PagerDuty GET /{collection} ({key} {value!r}): {exc}") from exc
    return None if found is None else dict(found)


def _write(
    rest: pagerduty.RestApiV2Client, method: str, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    try:
        answer = rest.rpost(path, json=body) if method == "POST" else rest.rput(path, json=body)
    except CLIENT_ERRORS as exc:
        raise SyncError(f"PagerDuty {method} {path}: {exc}") from exc
    if not isinstance(answer, dict):
        raise SyncError(f"PagerDuty {method} {path}: expected an object, got {answer!r:.200}")
    return answer


def _user_ids(rest: pagerduty.RestApiV2Client, oncall: OnCall) -> dict[str, str]:
    ids = {}
    for user in oncall.users:
        found = _find(rest, "users", user.email, key="email")
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
    rest: pagerduty.RestApiV2Client,
    collection: str,
    name: str,
    body: dict[str, Any],
    report: SyncReport,
) -> str:
    existing = _find(rest, collection, name)
    kind = next(iter(body))
    if existing is None:
        created = _write(rest, "POST", f"/{collection}", body)
        report.created.append(f"{kind} {name}")
        return str(created["id"])
    _write(rest, "PUT", f"/{collection}/{existing['id']}", body)
    report.updated.append(f"{kind} {name}")
    return str(existing["id"])


def sync(rest: pagerduty.RestApiV2Client, oncall: OnCall, loops: int) -> SyncReport:
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
