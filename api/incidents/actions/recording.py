"""Where an action leaves its trace: the audit log, the timeline of the incidents it
touched, and a Grafana annotation (queued; :mod:`api.incidents.grafana_annotations` sends it)."""

from __future__ import annotations

from typing import Any

from api.incidents.actions.spec import ActionSpec, Context, Outcome
from api.incidents.queries import actions as sql
from api.incidents.timeline import add_event
from api.runtime import Runtime
from core.audit import AuditEntry, record_in


def action_entry(
    spec: ActionSpec,
    ctx: Context,
    role: str,
    outcome: str,
    details: dict[str, Any],
    request_id: str | None,
    ip: str | None,
) -> AuditEntry:
    """The audit entry of one run of an action, for whoever asked: a page or an API key
    (``request_id`` and ``ip`` from their request) or a Slack button (neither). Requests'
    own events use :func:`api.routing.audit_entry`."""
    return AuditEntry(
        actor=ctx.actor,
        actor_role=role,
        action=f"action.{spec.name}",
        target_type="action_target",
        target_id=ctx.target.label(),
        reason=ctx.reason,
        outcome=outcome,
        request_id=request_id,
        ip_address=ip,
        details={"idempotency_key": ctx.key, "source": ctx.target.source, **details},
    )


async def record_outcome(
    runtime: Runtime, spec: ActionSpec, ctx: Context, outcome: Outcome, entry: AuditEntry
) -> None:
    """The audit entry, timeline events and the annotation, in one transaction."""
    text = f"{spec.title} by {ctx.actor} on {ctx.target.label()}: {outcome.message}"
    async with runtime.ops.connection() as conn, conn.transaction():
        await record_in(conn, entry)
        for incident in outcome.incidents:
            detail = {"action": spec.name, "reason": ctx.reason, "outcome": outcome.message}
            await add_event(conn, incident, "action", ctx.actor, ctx.now, detail)
        tags = ["opsdeck", "action", spec.name]
        await conn.execute(sql.QUEUE_ANNOTATION, {"text": text, "tags": tags, "at": ctx.now})
