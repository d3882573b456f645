"""Live lists over ops tables: ``changed_at``, stamped by the database on every visible change.

The live lists tail their tables by the commit horizon (``core/horizon.py``), which needs an
event time written by the transaction that makes the change, from the database clock. The
platform's tables have ``updated_at`` (0001's trigger); opsdeck's own lists do not: inbound
events have no such column, and incidents take ``updated_at`` from the engine's injected
clock. So outbound deliveries, inbound events and incidents get ``changed_at``, set to
``clock_timestamp()`` on insert and on every update that changes a column the lists show
(a lease renewal or a heartbeat changes none, and stays out of the live lists), each with
an index the tails read through. Rows older than this revision keep ``-infinity``: they are
history, never tailed. ``ops.webhook_log`` gains the column, last, so the webhooks list
is tailed through the view it is read from.

Revision ID: 0023_live_lists
Revises: 0004_access, 0005_webhooks
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0023_live_lists"
down_revision = ("0004_access", "0005_webhooks")
branch_labels = None
depends_on = None

# table -> the columns whose change the lists show
SHOWN = {
    "webhook_deliveries": (
        "status, attempts, last_status, last_error, next_attempt_at, delivered_at, endpoint_id"
    ),
    "webhook_inbound_events": (
        "status, attempts, last_error, next_attempt_at, processed_at, event_type"
    ),
    "incidents": (
        "title, severity, status, services, started_at, acknowledged_at, resolved_at, owner, "
        "runbook_url"
    ),
}

VIEW = """
CREATE OR REPLACE VIEW ops.webhook_log AS
SELECT d.id, 'outbound'::text AS direction, d.status, m.event_type, d.endpoint_id,
       e.url AS target, NULL::text AS provider, d.attempts, d.last_status, d.last_error,
       d.next_attempt_at, d.created_at, d.delivered_at AS done_at, m.uid AS reference{delivery}
FROM ops.webhook_deliveries d
JOIN ops.webhook_messages m ON m.id = d.message_id
JOIN ops.webhook_endpoints e ON e.id = d.endpoint_id
UNION ALL
SELECT i.id, 'inbound', i.status, i.event_type, NULL, i.provider, i.provider, i.attempts,
       NULL, i.last_error, CASE WHEN i.status = 'pending' THEN i.next_attempt_at END,
       i.received_at, i.processed_at, i.event_key{inbound}
FROM ops.webhook_inbound_events i;
"""

FUNCTION = """
CREATE FUNCTION ops.stamp_changed_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_at := clock_timestamp();
    RETURN NEW;
END
$$;
"""


def _table(table: str, shown: str) -> str:
    old = ", ".join(f"OLD.{c.strip()}" for c in shown.split(","))
    new = ", ".join(f"NEW.{c.strip()}" for c in shown.split(","))
    return f"""
ALTER TABLE ops.{table} ADD COLUMN changed_at timestamptz NOT NULL DEFAULT '-infinity';
CREATE INDEX {table}_changed ON ops.{table} (changed_at);
CREATE TRIGGER {table}_inserted BEFORE INSERT ON ops.{table}
    FOR EACH ROW EXECUTE FUNCTION ops.stamp_changed_at();
CREATE TRIGGER {table}_changed BEFORE UPDATE ON ops.{table}
    FOR EACH ROW WHEN (({old}) IS DISTINCT FROM ({new}))
    EXECUTE FUNCTION ops.stamp_changed_at();
"""


def upgrade() -> None:
    op.execute(FUNCTION)
    for table, shown in SHOWN.items():
        op.execute(_table(table, shown))
    op.execute(VIEW.format(delivery=", d.changed_at", inbound=", i.changed_at"))


def downgrade() -> None:
    op.execute("DROP VIEW ops.webhook_log")
    op.execute(VIEW.format(delivery="", inbound="").replace("CREATE OR REPLACE", "CREATE"))
    for table in SHOWN:
        op.execute(f"DROP TRIGGER {table}_changed ON ops.{table}")
        op.execute(f"DROP TRIGGER {table}_inserted ON ops.{table}")
        op.execute(f"ALTER TABLE ops.{table} DROP COLUMN changed_at")
    op.execute("DROP FUNCTION ops.stamp_changed_at()")
