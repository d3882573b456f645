"""On-call as data: users, rotating schedules, escalation policies and teams.

``alert_rules/oncall.yaml`` is the one file the incident escalation and the PagerDuty sync
read. :func:`load_oncall` validates it (every reference resolves, escalation levels are
contiguous from minute 0) and answers who is on call at a moment.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core import assets

ONCALL_FILE = assets.alert_rules() / "oncall.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class User(_Model):
    id: str
    name: str
    email: str
    phone: str


class Schedule(_Model):
    id: str
    name: str
    time_zone: str
    handoff: datetime
    turn_days: Annotated[int, Field(ge=1)]
    users: Annotated[tuple[str, ...], Field(min_length=1)]

    def on_call(self, at: datetime) -> str:
        """The user id on call at ``at`` (turns run forwards and backwards from handoff)."""
        turns = (at - self.handoff) // timedelta(days=self.turn_days)
        return self.users[turns % len(self.users)]


class Level(_Model):
    from_minute: Annotated[int, Field(ge=0)]
    to_minute: int
    targets: Annotated[tuple[str, ...], Field(min_length=1)]  # schedule ids

    @property
    def escalation_delay_minutes(self) -> int:
        """How long this level has before the next one is paged (PagerDuty's delay)."""
        return self.to_minute - self.from_minute


class EscalationPolicy(_Model):
    id: str
    name: str
    levels: Annotated[tuple[Level, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _contiguous(self) -> EscalationPolicy:
        start = 0
        for level in self.levels:
            if level.from_minute != start or level.to_minute <= level.from_minute:
                raise ValueError(f"policy {self.id}: levels must run on from minute 0")
            start = level.to_minute
        return self

    def level_at(self, minutes: float) -> Level | None:
        """The level paged ``minutes`` after the incident opened; None past the last."""
        return next((lv for lv in self.levels if lv.from_minute <= minutes < lv.to_minute), None)


class Team(_Model):
    id: str
    escalation_policy: str
    slack_channel: str
    email: str | None = None


class OnCall(_Model):
    users: tuple[User, ...]
    schedules: tuple[Schedule, ...]
    escalation_policies: tuple[EscalationPolicy, ...]
    teams: tuple[Team, ...]

    @model_validator(mode="after")
    def _references(self) -> OnCall:
        users = {u.id for u in self.users}
        schedules = {s.id for s in self.schedules}
        policies = {p.id for p in self.escalation_policies}
        problems = [
            *(
                f"schedule {s.id}: unknown user {u}"
                for s in self.schedules
                for u in s.users
                if u not in users
            ),
            *(
                f"policy {p.id}: unknown schedule {t}"
                for p in self.escalation_policies
                for lv in p.levels
                for t in lv.targets
                if t not in schedules
            ),
            *(
                f"team {t.id}: unknown policy"
                for t in self.teams
                if t.escalation_policy not in policies
            ),
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def user(self, user_id: str) -> User:
        return next(u for u in self.users if u.id == user_id)

    def schedule(self, schedule_id: str) -> Schedule:
        return next(s for s in self.schedules if s.id == schedule_id)

    def team(self, team_id: str) -> Team:
        return next(t for t in self.teams if t.id == team_id)

    def policy(self, policy_id: str) -> EscalationPolicy:
        return next(p for p in self.escalation_policies if p.id == policy_id)

    def paged(self, team_id: str, opened: datetime, at: datetime) -> list[User]:
        """Who a ``team`` incident opened at ``opened`` pages at ``at``."""
        level = self.policy(self.team(team_id).escalation_policy).level_at(
            (at - opened).total_seconds() / 60
        )
        if level is None:
            return []
        return [self.user(self.schedule(s).on_call(at)) for s in level.targets]


def load_oncall(path: Path = ONCALL_FILE) -> OnCall:
    return OnCall.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
