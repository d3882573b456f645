"""Suspend payouts and Resume payouts: the first click asks, a second approver (another
person) confirms; then the platform hears ``payouts.suspended`` / ``payouts.resumed``
through the outbound webhook outbox, in the same transaction."""

from __future__ import annotations

from api.incidents.actions.spec import (
    Conn,
    Context,
    Effect,
    Outcome,
    Summarizer,
    Summary,
    Target,
)
from api.incidents.context import Incidents
from api.incidents.queries import actions as sql
from api.problems import Problem
from api.runtime import Runtime
from gateway.outbox import enqueue_async

EVENTS = {"suspend": "payouts.suspended", "resume": "payouts.resumed"}


async def _scheduled(runtime: Runtime) -> tuple[int, int]:
    async with runtime.platform.connection() as conn:
        row = await (await conn.execute(sql.SCHEDULED_PAYOUTS)).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def summary_for(kind: str) -> Summarizer:
    async def summarize(runtime: Runtime, incidents: Incidents, target: Target) -> Summary:
        count, cents = await _scheduled(runtime)
        async with runtime.ops.connection() as conn:
            pending = await (await conn.execute(sql.PENDING_PAYOUT_REQUEST)).fetchone()
        waiting = (
            f" {pending[2]} asked to {pending[1]} ({pending[3]}); your click approves it."
            if pending and pending[1] == kind
            else " A second person must approve before it takes effect."
        )
        return Summary(
            f"{kind.capitalize()} payouts.{waiting}",
            {"payouts": count, "amount_cents": cents},
        )

    return summarize


async def _approve(conn: Conn, ctx: Context, kind: str, pending: tuple[object, ...]) -> Outcome:
    if pending[2] == ctx.actor:
        raise Problem(409, "a second approver is required: another person must confirm")
    await conn.execute(sql.APPROVE_PAYOUT_CHANGE, {"id": pending[0], "actor": ctx.actor})
    data = {
        "requested_by": pending[2],
        "approved_by": ctx.actor,
        "reason": pending[3],
        "request": pending[0],
    }
    event = await enqueue_async(conn, EVENTS[kind], data, source_key=f"payouts:{pending[0]}")
    return Outcome(
        f"payouts {kind}{'ed' if kind == 'suspend' else 'd'}: approved by {ctx.actor}",
        {"request": pending[0], "approved": True, "event": event.uid},
    )


def effect_for(kind: str) -> Effect:
    async def effect(ctx: Context) -> Outcome:
        async with ctx.runtime.ops.connection() as conn, conn.transaction():
            pending = await (await conn.execute(sql.PENDING_PAYOUT_REQUEST)).fetchone()
            if pending is not None and pending[1] == kind:
                return await _approve(conn, ctx, kind, pending)
            if pending is not None:
                raise Problem(409, f"a request to {pending[1]} payouts awaits its approver")
            params = {"kind": kind, "actor": ctx.actor, "reason": ctx.reason}
            row = await (await conn.execute(sql.REQUEST_PAYOUT_CHANGE, params)).fetchone()
        assert row is not None
        return Outcome(
            f"request to {kind} payouts recorded; it awaits a second approver",
            {"request": row[0], "approved": False},
        )

    return effect
