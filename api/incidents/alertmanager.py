"""Alertmanager's webhook payload (version 4), validated, and what an incident takes from it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# Alertmanager sends this for "not resolved yet".
ZERO_TIME_YEAR = 1


class Alert(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    startsAt: datetime
    endsAt: datetime | None = None
    fingerprint: Annotated[str, Field(min_length=1, max_length=64)]

    @property
    def ended(self) -> datetime | None:
        if self.status != "resolved" or self.endsAt is None or self.endsAt.year <= ZERO_TIME_YEAR:
            return None
        return self.endsAt


class Notification(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    version: Literal["4"]
    groupKey: Annotated[str, Field(min_length=1, max_length=1000)]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = {}
    commonLabels: dict[str, str] = {}
    commonAnnotations: dict[str, str] = {}
    alerts: Annotated[list[Alert], Field(min_length=1, max_length=1000)]

    @property
    def fingerprints(self) -> list[str]:
        return sorted({a.fingerprint for a in self.alerts})

    def label(self, name: str, default: str = "") -> str:
        first = self.alerts[0].labels.get(name, default)
        return self.commonLabels.get(name, self.groupLabels.get(name, first))

    def annotation(self, name: str) -> str:
        return self.commonAnnotations.get(name, self.alerts[0].annotations.get(name, ""))

    @property
    def services(self) -> list[str]:
        found = {a.labels.get("service") or a.labels.get("team", "") for a in self.alerts}
        return sorted(s for s in found if s)

    @property
    def started_at(self) -> datetime:
        return min(a.startsAt for a in self.alerts)


def suggested_actions(actions_annotation: str) -> list[dict[str, str]]:
    """The alert's ``actions`` annotation ("Name: url" per line) as [{name, url}]."""
    found = []
    for line in actions_annotation.splitlines():
        name, sep, url = line.partition(": ")
        if sep and url.strip():
            found.append({"name": name.strip(), "url": url.strip()})
    return found
