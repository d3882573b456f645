"""Lists over schema ops: incidents (owned by the incidents part) and the audit trail."""

from __future__ import annotations

from api.queries.listing import Listing

INCIDENT_COLUMNS = (
    "i.id, i.title, i.severity, i.status, i.services, i.started_at, i.acknowledged_at, "
    "i.resolved_at, i.owner, i.runbook_url"
)
INCIDENTS = Listing(
    columns=INCIDENT_COLUMNS,
    source="ops.incidents i",
    id_column="i.id",
    time_column="i.started_at",
    sorts={"started_at": "i.started_at", "id": "i.id"},
    conditions={
        "status": "i.status = ANY(%(status)s)",
        "severity": "i.severity = ANY(%(severity)s)",
        "service": "%(service)s = ANY(i.services)",
        "owner": "i.owner = %(owner)s",
    },
)

AUDIT = Listing(
    columns=(
        "a.chain_seq, a.at, a.actor, a.actor_role, a.action, a.target_type, a.target_id, "
        "a.reason, a.outcome, a.request_id, host(a.ip_address) AS ip_address, "
        "a.details::text AS details"
    ),
    source="ops.audit_log a",
    id_column="a.chain_seq",
    time_column="a.at",
    sorts={"at": "a.at", "chain_seq": "a.chain_seq"},
    conditions={
        "actor": "a.actor = %(actor)s",
        "action": "a.action = %(action)s",
        "target_type": "a.target_type = %(target_type)s",
        "target_id": "a.target_id = %(target_id)s",
        "outcome": "a.outcome = %(outcome)s",
    },
)
