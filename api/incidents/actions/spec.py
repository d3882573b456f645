"""What an action is: a permission, a summary of what it will touch, and an effect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from api.incidents.context import Incidents
from api.runtime import Runtime

Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True)
class Target:
    """The query parameters a data link or an alert's action link carries."""

    alertname: str | None = None
    incident: int | None = None
    panel: str | None = None
    failure_code: str | None = None
    template: str | None = None
    source: str = "api"

    def label(self) -> str:
        if self.incident is not None:
            return f"incident:{self.incident}"
        if self.alertname:
            return f"alertname:{self.alertname}"
        if self.panel:
            return f"panel:{self.panel}"
        return "platform"

    def as_dict(self) -> dict[str, Any]:
        found = {
            "alertname": self.alertname,
            "incident": self.incident,
            "panel": self.panel,
            "failure_code": self.failure_code,
            "template": self.template,
        }
        return {k: v for k, v in found.items() if v is not None}


@dataclass(frozen=True)
class Summary:
    """What the confirmation page shows: what will happen, and to how much."""

    will: str
    counts: Mapping[str, int] = field(default_factory=dict)
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class Context:
    runtime: Runtime
    incidents: Incidents
    actor: str
    reason: str
    target: Target
    key: str
    now: datetime


@dataclass(frozen=True)
class Outcome:
    """What the effect did; ``incidents`` are the incidents whose timeline records it."""

    message: str
    result: Mapping[str, Any] = field(default_factory=dict)
    incidents: tuple[int, ...] = ()


Summarizer = Callable[[Runtime, Incidents, Target], Awaitable[Summary]]
Effect = Callable[[Context], Awaitable[Outcome]]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    title: str
    permission: str
    summarize: Summarizer
    effect: Effect
