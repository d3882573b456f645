"""Incidents and the audit trail (seed 001, row 3): lists over the ops tables. The incidents
part fills ``ops.incidents`` and serves each incident's page (api/incidents/page.py);
every part writes the audit log."""

from __future__ import annotations

from api.drilldowns.spec import Field, Filter, ListView
from api.pii import PiiKind
from api.queries import ops_lists as sql

INCIDENT_FIELDS = (
    Field("id", "Id", "integer", link="/incidents/{id}"),
    Field("title", "Title"),
    Field("severity", "Severity", show="badge"),
    Field("status", "Status", show="badge"),
    Field("services", "Services", "array"),
    Field("started_at", "Started", "date-time"),
    Field("acknowledged_at", "Acknowledged", "date-time", nullable=True),
    Field("resolved_at", "Resolved", "date-time", nullable=True),
    Field("owner", "Owner", nullable=True),
    Field("runbook_url", "Runbook", nullable=True),
)

INCIDENTS = ListView(
    name="incidents",
    title="Incidents",
    permission="incidents.read",
    export_permission="incidents.export",
    listing=sql.INCIDENTS,
    fields=INCIDENT_FIELDS,
    filters=(
        Filter("status", "incident status (repeatable)", max_length=40, multiple=True),
        Filter("severity", "severity (repeatable)", max_length=40, multiple=True),
        Filter("service", "affected service", max_length=100),
        Filter("owner", "owner", max_length=200),
    ),
    sorts=("started_at", "id"),
    database="ops",
    default_from="now-30d",
    time_label="started",
)


AUDIT = ListView(
    name="audit",
    title="Audit trail",
    permission="audit.read",
    export_permission="audit.export",
    listing=sql.AUDIT,
    fields=(
        Field("chain_seq", "Seq", "integer"),
        Field("at", "At", "date-time"),
        Field("actor", "Actor"),
        Field("actor_role", "Role", nullable=True),
        Field("action", "Action"),
        Field("target_type", "Target type", nullable=True),
        Field("target_id", "Target", nullable=True),
        Field("reason", "Reason", nullable=True),
        Field("outcome", "Outcome", show="badge"),
        Field("request_id", "Request", nullable=True),
        Field("ip_address", "IP address", nullable=True, pii=PiiKind.IP),
        Field("details", "Details"),
    ),
    filters=(
        Filter("actor", "who", max_length=200),
        Filter("action", "what, e.g. sign_in, pii.unmask, export", max_length=100),
        Filter("target_type", "target type", max_length=100),
        Filter("target_id", "target id", max_length=200),
        Filter("outcome", "ok or failed", max_length=40),
    ),
    sorts=("at", "chain_seq"),
    database="ops",
    default_from="now-7d",
    time_label="at",
    description="Append-only and hash-chained; `opsdeck audit verify` checks the chain.",
)
