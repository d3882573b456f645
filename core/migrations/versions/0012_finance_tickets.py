"""Finance tickets you can work: a status (open → in progress → resolved), an owner, the
transaction, alert or incident they came from, and their history.

- ``ops.finance_tickets`` grows ``owner``, ``transaction_id``, ``alertname``,
  ``incident_id``, ``source``, ``updated_at`` and ``resolved_at``; what earlier tickets
  kept in ``context`` fills them in, and their status is held to the three statuses.
- ``ops.finance_ticket_events``: each ticket's history (opened, status changes, owner
  changes, the finance route notified or not), oldest first.

Revision ID: 0012_finance_tickets
Revises: 0006_incidents
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0012_finance_tickets"
down_revision = "0006_incidents"
branch_labels = ("finance",)
depends_on = None

UPGRADE = r"""
ALTER TABLE ops.finance_tickets
    ADD COLUMN owner          text,
    ADD COLUMN transaction_id bigint,
    ADD COLUMN alertname      text,
    ADD COLUMN incident_id    bigint REFERENCES ops.incidents ON DELETE SET NULL,
    ADD COLUMN source         text NOT NULL DEFAULT 'api',
    ADD COLUMN updated_at     timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN resolved_at    timestamptz;
UPDATE ops.finance_tickets t
SET transaction_id = CASE WHEN context->>'transaction' ~ '^\d{1,18}$'
                          THEN (context->>'transaction')::bigint END,
    alertname = context->>'alertname',
    incident_id = (SELECT i.id FROM ops.incidents i
                   WHERE context->>'incident' ~ '^\d{1,18}$'
                     AND i.id = (context->>'incident')::bigint),
    source = coalesce(context->>'source', 'api'),
    updated_at = opened_at,
    status = CASE WHEN status IN ('open', 'in_progress', 'resolved') THEN status ELSE 'open' END;
ALTER TABLE ops.finance_tickets
    ADD CONSTRAINT finance_tickets_status CHECK (status IN ('open', 'in_progress', 'resolved'));
CREATE INDEX finance_tickets_opened ON ops.finance_tickets (opened_at, id);
CREATE INDEX finance_tickets_transaction ON ops.finance_tickets (transaction_id)
    WHERE transaction_id IS NOT NULL;

CREATE TABLE ops.finance_ticket_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id bigint NOT NULL REFERENCES ops.finance_tickets ON DELETE CASCADE,
    at        timestamptz NOT NULL DEFAULT now(),
    kind      text NOT NULL,
    actor     text NOT NULL,
    detail    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX finance_ticket_events_ticket ON ops.finance_ticket_events (ticket_id, id);
"""

DOWNGRADE = """
DROP TABLE ops.finance_ticket_events;
DROP INDEX ops.finance_tickets_opened, ops.finance_tickets_transaction;
ALTER TABLE ops.finance_tickets
    DROP CONSTRAINT finance_tickets_status,
    DROP COLUMN owner, DROP COLUMN transaction_id, DROP COLUMN alertname,
    DROP COLUMN incident_id, DROP COLUMN source, DROP COLUMN updated_at,
    DROP COLUMN resolved_at;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
