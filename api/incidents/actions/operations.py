"""Maintenance mode on/off, Notify partners, Open finance ticket, Reprocess dead letters."""

from __future__ import annotations

from api.finance import notify as finance_notify
from api.finance import tickets
from api.incidents.actions.spec import Context, Effect, Outcome, Summarizer, Summary, Target
from api.incidents.context import Incidents
from api.incidents.queries import actions as sql
from api.problems import Problem, invalid
from api.runtime import Runtime
from gateway.outbox import enqueue_async
from gateway.replay import reprocess_dead_letters

PARTNER_EVENT = "partner.notice"
# Partner notices, by template name: subject and body ({reason} is the actor's reason).
TEMPLATES = {
    "incident": (
        "Service disruption",
        "We are investigating a disruption affecting bookings or payments. {reason}",
    ),
    "maintenance": (
        "Scheduled maintenance",
        "Bookings are paused briefly for maintenance. {reason}",
    ),
    "payments-delay": (
        "Payment processing delay",
        "Some payments or payouts are delayed while we reconcile them. {reason}",
    ),
}
DEFAULT_TEMPLATE = {"PaymentReconciliationDriftHigh": "payments-delay"}


async def _one_int(runtime: Runtime, query: str, params: dict[str, object] | None = None) -> int:
    async with runtime.ops.connection() as conn:
        row = await (await conn.execute(query, params)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def maintenance_summary(enabled: bool) -> Summarizer:
    async def summarize(runtime: Runtime, incidents: Incidents, target: Target) -> Summary:
        now = await _one_int(runtime, sql.MAINTENANCE)
        state = "on" if now else "off"
        event = "maintenance.enabled" if enabled else "maintenance.disabled"
        return Summary(
            f"Maintenance mode is {state}; turn it {'on' if enabled else 'off'} and tell the "
            f"platform ({event}).",
            {
                "webhook endpoints": await _one_int(
                    runtime, sql.PARTNER_ENDPOINTS, {"event_type": event}
                )
            },
        )

    return summarize


def maintenance(enabled: bool) -> Effect:
    async def effect(ctx: Context) -> Outcome:
        event = "maintenance.enabled" if enabled else "maintenance.disabled"
        async with ctx.runtime.ops.connection() as conn, conn.transaction():
            params = {"enabled": enabled, "actor": ctx.actor, "reason": ctx.reason}
            await conn.execute(sql.SET_MAINTENANCE, params)
            data = {"enabled": enabled, "by": ctx.actor, "reason": ctx.reason}
            sent = await enqueue_async(conn, event, data, source_key=f"action:{ctx.key}")
        return Outcome(f"maintenance mode {'on' if enabled else 'off'}", {"event": sent.uid})

    return effect


def _template(target: Target) -> tuple[str, tuple[str, str]]:
    name = target.template or DEFAULT_TEMPLATE.get(target.alertname or "", "incident")
    if name not in TEMPLATES:
        raise invalid("template", f"unknown template {name!r}")
    return name, TEMPLATES[name]


async def notify_summary(runtime: Runtime, incidents: Incidents, target: Target) -> Summary:
    name, (subject, body) = _template(target)
    endpoints = await _one_int(runtime, sql.PARTNER_ENDPOINTS, {"event_type": PARTNER_EVENT})
    return Summary(
        f"Send the '{name}' partner notice ({subject}) as {PARTNER_EVENT}.",
        {"partner endpoints": endpoints},
        (body.format(reason="<your reason>"),),
    )


async def notify_partners(ctx: Context) -> Outcome:
    name, (subject, body) = _template(ctx.target)
    data = {"template": name, "subject": subject, "body": body.format(reason=ctx.reason)}
    async with ctx.runtime.ops.connection() as conn, conn.transaction():
        sent = await enqueue_async(conn, PARTNER_EVENT, data, source_key=f"action:{ctx.key}")
    return Outcome(
        f"partner notice sent to {sent.deliveries} endpoint(s)",
        {"event": sent.uid, "deliveries": sent.deliveries},
    )


async def finance_summary(runtime: Runtime, incidents: Incidents, target: Target) -> Summary:
    async with runtime.platform.connection() as conn:
        row = await (
            await conn.execute(sql.FAILED_PAYMENTS, {"code": target.failure_code})
        ).fetchone()
    count, cents = (int(row[0]), int(row[1])) if row else (0, 0)
    return Summary(
        "Open a finance ticket with this context.",
        {"failed payments (24h)": count, "amount_cents": cents},
    )


async def open_finance_ticket(ctx: Context) -> Outcome:
    """Open the ticket, then tell the finance route (each attempt is on its history)."""
    named = ctx.target.as_dict()
    origin = tickets.Origin(
        transaction=named.get("transaction"),
        alertname=ctx.target.alertname,
        incident=ctx.target.incident,
        source=ctx.target.source,
    )
    context = {**named, "source": ctx.target.source}
    async with ctx.runtime.ops.connection() as conn, conn.transaction():
        ticket = await tickets.open_ticket(conn, origin, ctx.actor, ctx.reason, context, ctx.now)
    notified = await finance_notify.announce(ctx.runtime, ctx.incidents, ticket)
    return Outcome(f"finance ticket #{ticket} opened", {"ticket": ticket, "notified": notified})


async def dead_letters_summary(runtime: Runtime, incidents: Incidents, target: Target) -> Summary:
    async with runtime.ops.connection() as conn:
        rows = await (await conn.execute(sql.OPEN_DEAD_LETTERS)).fetchall()
    counts = {f"{r[0]} dead letters": int(r[1]) for r in rows}
    return Summary("Put open dead letters back in line (one batch, under a lease).", counts)


async def reprocess(ctx: Context) -> Outcome:
    lease = {"name": "reprocess-dead-letters", "holder": ctx.key}
    seconds = ctx.incidents.settings.reprocess_lease_seconds
    async with ctx.runtime.ops.connection() as conn:
        taken = await (await conn.execute(sql.TAKE_LEASE, {**lease, "seconds": seconds})).fetchone()
        if taken is None:
            raise Problem(409, "dead letters are being reprocessed right now; retry shortly")
        try:
            async with conn.transaction():
                done = await reprocess_dead_letters(
                    conn, None, ctx.incidents.settings.reprocess_batch
                )
        finally:
            await conn.execute(sql.RELEASE_LEASE, lease)
    return Outcome(
        f"reprocessing {done.outbound} outbound and {done.inbound} inbound dead letters",
        {"outbound": done.outbound, "inbound": done.inbound},
    )
