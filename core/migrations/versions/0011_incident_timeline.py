"""Incidents run by hand: escalation plans that can be redrawn, and notifications that
are not steps of a plan.

- ``ops.escalation_steps.plan``: the generation of the incident's escalation plan. A
  change of team or severity (or a reopen) cancels the pending steps and plans the policy
  again as the next generation, so a step still fires once per (incident, plan, level,
  round).
- ``ops.notifications``: only a step's notifications are unique (per step, transport,
  recipient and kind). The others (Slack message updates, pager acknowledgements and
  resolutions) follow each change of an incident: two incidents resolved, or one resolved
  twice after a reopen, send two.

Revision ID: 0011_incident_timeline
Revises: 0006_incidents
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0011_incident_timeline"
down_revision = "0006_incidents"
branch_labels = ("incident_timeline",)
depends_on = None

UPGRADE = """
ALTER TABLE ops.escalation_steps
    ADD COLUMN plan integer NOT NULL DEFAULT 0,
    DROP CONSTRAINT escalation_steps_incident_id_level_round_key,
    ADD CONSTRAINT escalation_steps_plan_level_round UNIQUE (incident_id, plan, level, round);
ALTER TABLE ops.notifications
    DROP CONSTRAINT notifications_step_id_transport_recipient_kind_key;
CREATE UNIQUE INDEX notifications_step_once
    ON ops.notifications (step_id, transport, recipient, kind) WHERE step_id IS NOT NULL;
CREATE INDEX notifications_incident ON ops.notifications (incident_id, id);
"""

DOWNGRADE = """
DROP INDEX ops.notifications_incident, ops.notifications_step_once;
DELETE FROM ops.notifications a USING ops.notifications b
WHERE a.id > b.id AND a.step_id IS NOT DISTINCT FROM b.step_id
  AND a.transport = b.transport AND a.recipient = b.recipient AND a.kind = b.kind;
ALTER TABLE ops.notifications ADD CONSTRAINT notifications_step_id_transport_recipient_kind_key
    UNIQUE NULLS NOT DISTINCT (step_id, transport, recipient, kind);
DELETE FROM ops.escalation_steps WHERE plan > 0;
ALTER TABLE ops.escalation_steps
    DROP CONSTRAINT escalation_steps_plan_level_round,
    DROP COLUMN plan,
    ADD CONSTRAINT escalation_steps_incident_id_level_round_key UNIQUE (incident_id, level, round);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
