"""What the sinks received, per alert, and what seed 001 says each alert must reach.

A delivery is ``(integration, detail)``: ``("webhook", receiver)`` for opsdeck's API hook,
``("pagerduty", severity)``, ``("slack", channel)`` and ``("email", recipient)``. Together
they identify the receivers a route chose. The dead man's switch's heartbeats (the Watchdog,
always firing) and requests the sink refused deliver no alert to anyone, so they are not
deliveries; :func:`heartbeats` reads the former.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from alert_rules.alert import Alert
from tests.alerting.sinks import API_HOOK, HEARTBEAT, PAGERDUTY, SLACK, HttpRequest, Mail

Delivery = tuple[str, str]
UNKNOWN = "<unrecognised>"

ENG_ONCALL = "eng-oncall@example.com"
TEAM_MAILBOXES = {"finance": "finance@example.com", "support": "cs-lead@example.com"}
# Seed 001: critical and high page, medium goes to Slack and email; every alert also reaches
# opsdeck's API (incidents, escalation, one-click actions, and the SMS of critical pages),
# from the receiver of its severity (so it hears the group key PagerDuty's events use).
PD_SEVERITY = {"critical": "critical", "high": "error"}
RECEIVER = {"critical": "page-critical", "high": "page-high", "medium": "notify-medium"}


def slack_channel(team: str) -> str:
    return "#ops-booka" if team == "bookings" else f"#ops-{team}"


def business_hours(at: datetime) -> bool:
    """alertmanager.yml's ``business-hours``: Monday to Friday, 08:00-18:00 UTC."""
    at = at.astimezone(UTC)
    return at.weekday() < 5 and 8 <= at.hour < 18


def expected(alert: Alert, at: datetime) -> set[Delivery]:
    out: set[Delivery] = {
        ("webhook", RECEIVER[alert.severity]),
        ("slack", slack_channel(alert.team)),
    }
    if alert.severity in PD_SEVERITY:
        out.add(("pagerduty", PD_SEVERITY[alert.severity]))
    if alert.severity == "medium":
        out.add(("email", ENG_ONCALL))
    if alert.team == "finance" or (alert.team == "support" and business_hours(at)):
        out.add(("email", TEAM_MAILBOXES[alert.team]))
    return out


def heartbeats(requests: list[HttpRequest]) -> list[HttpRequest]:
    """What reached the dead man's switch and was taken."""
    return [r for r in requests if r.path == HEARTBEAT and not r.refused]


def _http(request: HttpRequest) -> list[tuple[str, Delivery]]:
    body: Any = request.body
    if request.path == HEARTBEAT or request.refused:
        return []
    try:
        if request.path == API_HOOK:
            return [
                (a["labels"]["alertname"], ("webhook", body["receiver"])) for a in body["alerts"]
            ]
        if request.path == PAGERDUTY:
            name = body["payload"]["summary"].split(":", 1)[0]
            return [(name, ("pagerduty", body["payload"]["severity"]))]
        if request.path == SLACK:
            # title: "[FIRING] AlertName (severity)"
            name = body["attachments"][0]["title"].split()[1]
            return [(name, ("slack", body["channel"]))]
    except (KeyError, IndexError, TypeError):
        return [(UNKNOWN, ("malformed", request.path))]  # the test lists it, with the path
    return [(UNKNOWN, ("http", request.path))]


def received(requests: list[HttpRequest], mails: list[Mail]) -> dict[str, set[Delivery]]:
    """alertname → what reached the sinks for it."""
    out: dict[str, set[Delivery]] = defaultdict(set)
    for request in requests:
        for name, delivery in _http(request):
            out[name].add(delivery)
    for mail in mails:
        # Subject: "[opsdeck <severity|finance|support>] AlertName"
        name = str(mail.message["Subject"]).rsplit(" ", 1)[-1]
        for recipient in mail.recipients:
            out[name].add(("email", recipient))
    return out
