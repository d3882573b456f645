"""Suspend payouts and Resume payouts: the first click asks, a second approver (another
person: another user id, whatever credential either used) confirms within
``incidents.approval_ttl_seconds``; then the platform hears ``payouts.suspended`` /
``payouts.resumed`` through the outbound webhook outbox, in the same transaction. A request
left unapproved that long expires: it can no longer be approved and blocks nothing."""

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


def _ttl(incidents: Incidents) -> dict[str, float]:
    return {"ttl": incidents.settings.approval_ttl_seconds}


def summary_for(kind: str) -> Summarizer:
    async def summarize(runtime: Runtime, incidents: Incidents, target: Target) -> Summary:
        count, cents = await _scheduled(runtime)
        async with runtime.ops.connection() as conn:
            pending = await (
                await conn.execute(sql.PENDING_PAYOUT_REQUEST, _ttl(incidents))
            ).fetchone()
        waiting = (
            f" {pending[2]} asked to {pending[1]} ({pending[3]}); another person's click "
            "approves it."
            if pending and pending[1] == kind
            else " A second person must approve before it takes effect."
        )
        return Summary(
            f"{kind.capitalize()} payouts.{waiting}",
            {"payouts": count, "amount_cents": cents},
        )

    return summarize


def _second_person(ctx: Context, requester: object) -> int:
    """The approver's user id, if they are a person other than the requester: people are
    compared, never credentials (one user's session and keys, before and after rotation,
    are one person)."""
    if ctx.user_id is None or requester is None:
        raise Problem(
            403, "this approval cannot be tied to a person other than the requester: refused"
        )
    if requester == ctx.user_id:
        raise Problem(
            409,
            "a second approver is required: another person must confirm "
            "(the requester's own sessions and API keys are the same person)",
        )
    return ctx.user_id


async def _approve(conn: Conn, ctx: Context, kind: str, pending: tuple[object, ...]) -> Outcome:
    approver = _second_person(ctx, pending[4])
    params = {"id": pending[0], "actor": ctx.actor, "user_id": approver}
    await conn.execute(sql.APPROVE_PAYOUT_CHANGE, params)
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


async def _request(conn: Conn, ctx: Context, kind: str) -> Outcome:
    if ctx.user_id is None:
        raise Problem(403, "a payout change must be asked for by a person (an opsdeck user)")
    params = {"kind": kind, "actor": ctx.actor, "user_id": ctx.user_id, "reason": ctx.reason}
    row = await (await conn.execute(sql.REQUEST_PAYOUT_CHANGE, params)).fetchone()
    assert row is not None
    return Outcome(
        f"request to {kind} payouts recorded; it awaits a second approver",
        {"request": row[0], "approved": False},
    )


def effect_for(kind: str) -> Effect:
    async def effect(ctx: Context) -> Outcome:
        ttl = _ttl(ctx.incidents)
        async with ctx.runtime.ops.connection() as conn, conn.transaction():
            await conn.execute(sql.EXPIRE_PAYOUT_REQUESTS, ttl)
            pending = await (await conn.execute(sql.PENDING_PAYOUT_REQUEST, ttl)).fetchone()
            if pending is not None and pending[1] == kind:
                return await _approve(conn, ctx, kind, pending)
            if pending is not None:
                raise Problem(409, f"a request to {pending[1]} payouts awaits its approver")
            return await _request(conn, ctx, kind)

    return effect
