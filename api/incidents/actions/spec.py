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
    booking: int | None = None  # a row of Recent Double-bookings
    transaction: int | None = None  # a row of Recent Payment Mismatches
    source: str = "api"

    def label(self) -> str:
        if self.incident is not None:
            return f"incident:{self.incident}"
        if self.transaction is not None:
            return f"transaction:{self.transaction}"
        if self.booking is not None:
            return f"booking:{self.booking}"
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
            "booking": self.booking,
            "transaction": self.transaction,
        }
        return {k: v for k, v in found.items() if v is not None}


@dataclass(frozen=True)
class Summary:
    """What the confirmation page shows: what will happen, and to how much."""

    will: str
    counts: Mapping[str, int] = field(default_factory=dict)
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class Input:
    """A field of an action's form (and of its JSON body) besides the reason: what the
    confirmation page asks for. ``choices`` lists the accepted values (from the running
    API's on-call file, say); ``many`` takes a comma-separated list."""

    name: str
    label: str
    description: str
    choices: Callable[[Incidents], tuple[str, ...]] | None = None
    required: bool = False
    many: bool = False
    max_length: int = 200

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": self.max_length, "description": self.description}


@dataclass(frozen=True)
class Context:
    runtime: Runtime
    incidents: Incidents
    actor: str
    reason: str
    target: Target
    key: str
    now: datetime
    inputs: Mapping[str, Any] = field(default_factory=dict)  # parsed values of the Inputs
    # The person acting (ops.users.id) whatever the credential; two-person rules compare it.
    user_id: int | None = None


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
    inputs: tuple[Input, ...] = ()
    # The form field the reason is read from: a note's text is its reason.
    reason_field: str = "reason"
    reason_label: str = "Reason"
