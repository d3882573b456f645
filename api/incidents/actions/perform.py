"""Running an action once per idempotency key, whoever asks (a page, an API key, a Slack
button), and leaving its trace."""

from __future__ import annotations

from dataclasses import dataclass

from api.incidents.actions import requests as idempotency
from api.incidents.actions.recording import action_entry, record_outcome
from api.incidents.actions.spec import ActionSpec, Context, Outcome
from api.problems import Problem


@dataclass(frozen=True)
class Caller:
    role: str
    request_id: str | None = None
    ip: str | None = None


async def perform(spec: ActionSpec, ctx: Context, caller: Caller) -> tuple[Outcome, bool]:
    """(outcome, replayed): the effect runs for the first request with this key; a repeat
    gets the first one's outcome; a concurrent repeat gets 409."""
    runtime = ctx.runtime
    async with runtime.ops.connection() as conn:
        previous = await idempotency.claim(
            conn, ctx.key, spec.name, ctx.actor, ctx.target.label(), ctx.reason
        )
    if previous is not None:
        if previous.status != "done":
            raise Problem(409, "this request is still running; it runs once")
        return Outcome(previous.result["outcome"], previous.result["result"]), True
    try:
        outcome = await spec.effect(ctx)
    except Problem as problem:
        async with runtime.ops.connection() as conn:
            await idempotency.release(conn, ctx.key)
        details = {"status": problem.status}
        entry = action_entry(
            spec, ctx, caller.role, "failed", details, caller.request_id, caller.ip
        )
        await record_outcome(runtime, spec, ctx, Outcome(problem.detail), entry)
        raise
    async with runtime.ops.connection() as conn:
        stored = {"outcome": outcome.message, "result": dict(outcome.result)}
        await idempotency.finish(conn, ctx.key, "done", stored)
    details = dict(outcome.result)
    entry = action_entry(spec, ctx, caller.role, "ok", details, caller.request_id, caller.ip)
    await record_outcome(runtime, spec, ctx, outcome, entry)
    return outcome, False
