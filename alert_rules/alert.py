"""One alerting rule as opsdeck writes it, and the vocabulary every rule shares: the Go
templates that render ``$value``, the severities (seed 001's: critical pages and texts,
high pages, medium goes to Slack and email; ``none`` reaches no person, as the Watchdog's
heartbeat) and the teams (``team`` picks the Slack channel and adds the finance and CS-lead
mailboxes)."""

from __future__ import annotations

from dataclasses import dataclass, field

PERCENT = "{{ $value | humanizePercentage }}"
DURATION = "{{ $value | humanizeDuration }}"
COUNT = '{{ $value | printf "%.0f" }}'
SEVERITIES = ("critical", "high", "medium", "none")
TEAMS = ("bookings", "platform", "finance", "support", "opsdeck")


@dataclass(frozen=True)
class Alert:
    """One alerting rule. ``description`` holds ``{value}`` where the live value goes."""

    name: str
    expr: str
    for_: str
    severity: str
    team: str
    summary: str
    description: str
    value: str  # the Go template that renders $value in the description
    suggested_action: str
    dashboard: str  # dashboard uid
    panel: str  # panel title on that dashboard
    actions: tuple[str, ...] = ("acknowledge", "create-incident", "mute-1h")
    injection: str | None = None  # `opsdeck simulate --inject` kind that makes it fire
    seed: bool = True  # one of seed 001's alerts
    inhibits: tuple[str, ...] = field(default=())


def pct(ratio: float) -> str:
    return f"{ratio * 100:g}%"
