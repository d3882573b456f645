"""Telling the finance route that a ticket opened: the finance team's mailbox and Slack
channel (``alert_rules/oncall.yaml``), through the incident transports.

Each attempt, sent or not, is on the ticket's history: a transport that is not configured,
or that fails, leaves a ``notification_failed`` event saying why, never a silent skip."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from email.message import EmailMessage
from typing import Any

from api.finance import tickets
from api.incidents.context import Incidents
from api.incidents.transports.email import EmailTransport
from api.incidents.transports.http import TransportError
from api.incidents.transports.slack import SlackTransport
from api.runtime import Runtime

FINANCE_TEAM = "finance"
Sender = Callable[[Any, str, str, str], Awaitable[dict[str, Any]]]


def text_of(ticket: Mapping[str, Any], public_url: str) -> tuple[str, str]:
    """(subject, body) of the notice about ``ticket`` (its row, :func:`tickets.get`)."""
    subject = f"Finance ticket #{ticket['id']} opened by {ticket['opened_by']}"
    lines = [str(ticket["reason"]), ""]
    if ticket["transaction_id"] is not None:
        lines.append(f"Transaction: {public_url}/payments/{ticket['transaction_id']}")
    if ticket["alertname"]:
        lines.append(f"Alert: {ticket['alertname']}")
    if ticket["incident_id"] is not None:
        lines.append(f"Incident: {public_url}/incidents/{ticket['incident_id']}")
    lines.append(f"Ticket: {public_url}/finance-tickets/{ticket['id']}")
    return subject, "\n".join(lines)


async def _email(transport: Any, recipient: str, subject: str, body: str) -> dict[str, Any]:
    if not isinstance(transport, EmailTransport):
        raise TransportError("no email transport is configured", permanent=True)
    message = EmailMessage()
    message["To"] = recipient
    message["Subject"] = subject
    message.set_content(body)
    await transport.deliver(message)
    return {"to": recipient}


async def _slack(transport: Any, channel: str, subject: str, body: str) -> dict[str, Any]:
    if not isinstance(transport, SlackTransport):
        raise TransportError("no slack transport is configured", permanent=True)
    return dict(await transport.post(channel, f"*{subject}*\n{body}"))


async def announce(runtime: Runtime, incidents: Incidents, ticket: int) -> dict[str, str]:
    """Send the notice of ``ticket`` by email and Slack; per transport, "sent" or why not."""
    team = incidents.oncall.team(FINANCE_TEAM)
    public_url = incidents.settings.public_url.rstrip("/")
    async with runtime.ops.connection() as conn:
        row = await tickets.get(conn, ticket)
    assert row is not None
    subject, body = text_of(row, public_url)
    routes: list[tuple[str, str, Sender]] = [("slack", team.slack_channel, _slack)]
    if team.email:
        routes.append(("email", team.email, _email))
    outcomes: dict[str, str | None] = {}
    for name, recipient, send in routes:
        try:
            await send(incidents.transports.get(name), recipient, subject, body)
        except TransportError as failure:
            outcomes[name] = str(failure)
            continue
        outcomes[name] = None
    now = incidents.clock()
    async with runtime.ops.connection() as conn, conn.transaction():
        for name, recipient, _ in routes:
            detail: dict[str, Any] = {"transport": name, "recipient": recipient}
            problem = outcomes[name]
            if problem is None:
                await tickets.add_event(conn, ticket, "notified", name, now, detail)
            else:
                failed = {**detail, "error": problem}
                await tickets.add_event(conn, ticket, "notification_failed", name, now, failed)
    return {name: problem or "sent" for name, problem in outcomes.items()}
