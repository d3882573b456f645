"""Running an action once per idempotency key, whoever asks (a page, an API key, a Slack
button), and leaving its trace."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from api.confirmation import Claim, once
from api.incidents.actions.recording import action_entry, record_outcome
from api.incidents.actions.spec import ActionSpec, Context, Outcome
from api.problems import Problem


@dataclass(frozen=True)
class Caller:
    role: str
    request_id: str | None = None
    ip: str | None = None


@dataclass(frozen=True)
class _ActionRun:
    """An action's effect as :func:`api.confirmation.once` runs it; its trace is the audit
    entry, the timeline of the incidents it touched and an annotation."""

    spec: ActionSpec
    ctx: Context
    caller: Caller

    async def apply(self) -> Outcome:
        return await self.spec.effect(self.ctx)

    def kept(self, done: Outcome) -> dict[str, Any]:
        return {"outcome": done.message, "result": dict(done.result)}

    def replay(self, kept: Mapping[str, Any]) -> Outcome:
        return Outcome(kept["outcome"], kept["result"])

    async def failed(self, problem: Problem) -> None:
        await self._record(Outcome(problem.detail), "failed", {"status": problem.status})

    async def succeeded(self, done: Outcome) -> None:
        await self._record(done, "ok", dict(done.result))

    async def _record(self, outcome: Outcome, status: str, details: dict[str, Any]) -> None:
        spec, ctx, caller = self.spec, self.ctx, self.caller
        entry = action_entry(spec, ctx, caller.role, status, details, caller.request_id, caller.ip)
        await record_outcome(ctx.runtime, spec, ctx, outcome, entry)


async def perform(spec: ActionSpec, ctx: Context, caller: Caller) -> tuple[Outcome, bool]:
    """(outcome, replayed): the effect runs for the first request with this key; a repeat
    gets the first one's outcome; a concurrent repeat gets 409."""
    claim = Claim(ctx.key, spec.name, ctx.actor, ctx.target.label(), ctx.reason)
    return await once(ctx.runtime.ops, claim, _ActionRun(spec, ctx, caller))
