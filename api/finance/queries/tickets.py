"""SQL of finance tickets: opening, the list, one ticket, its history, status and owner."""

from __future__ import annotations

from api.queries.listing import Listing

COLUMNS = (
    "t.id, t.status, t.owner, t.transaction_id, t.alertname, t.incident_id, t.opened_by, "
    "t.reason, t.source, t.opened_at, t.updated_at, t.resolved_at"
)

LIST = Listing(
    columns=COLUMNS,
    source="ops.finance_tickets t",
    id_column="t.id",
    time_column="t.opened_at",
    sorts={"opened_at": "t.opened_at", "id": "t.id"},
    conditions={
        "status": "t.status = ANY(%(status)s)",
        "owner": "t.owner = %(owner)s",
        "transaction": "t.transaction_id = %(transaction)s",
        "alertname": "t.alertname = %(alertname)s",
    },
)

OPEN = """
INSERT INTO ops.finance_tickets (opened_by, reason, context, transaction_id, alertname,
                                 incident_id, source, opened_at, updated_at)
VALUES (%(actor)s, %(reason)s, %(context)s, %(transaction)s, %(alertname)s,
        (SELECT id FROM ops.incidents WHERE id = %(incident)s), %(source)s, %(now)s, %(now)s)
RETURNING id
"""

GET = f"SELECT {COLUMNS}, t.context FROM ops.finance_tickets t WHERE t.id = %(id)s"

LOCK = "SELECT status, owner FROM ops.finance_tickets WHERE id = %(id)s FOR UPDATE"

SET_STATUS = """
UPDATE ops.finance_tickets
SET status = %(status)s, updated_at = %(now)s,
    resolved_at = CASE WHEN %(status)s = 'resolved' THEN %(now)s END
WHERE id = %(id)s
"""

SET_OWNER = (
    "UPDATE ops.finance_tickets SET owner = %(owner)s, updated_at = %(now)s WHERE id = %(id)s"
)

EVENT = """
INSERT INTO ops.finance_ticket_events (ticket_id, kind, actor, detail, at)
VALUES (%(ticket)s, %(kind)s, %(actor)s, %(detail)s, %(at)s)
"""

HISTORY = """
SELECT at, kind, actor, detail FROM ops.finance_ticket_events
WHERE ticket_id = %(id)s ORDER BY id
"""
