"""Incidents, escalation and one-click actions.

- ``ops.incidents`` grows what Alertmanager tells: the group key it deduplicates on, the
  alert name and team, who acknowledged and resolved, suggested actions. Its alerts (one
  row per fingerprint) are in ``ops.incident_alerts``, its timeline in
  ``ops.incident_events``.
- ``ops.escalation_steps``: one row per (incident, level, round), planned when the incident
  opens. UNIQUE, and claimed ``FOR UPDATE SKIP LOCKED`` in the transaction that marks it
  fired and queues its notifications: a step fires once, across restarts and crashes.
- ``ops.notifications``: what a transport must send, retried until sent or given up.
- ``ops.action_requests``: one row per idempotency key, so a double submit has one effect.
- ``ops.silences``: the Alertmanager silence behind each muted target, so a second "Mute
  1h" extends it. ``ops.payout_suspensions`` (two approvers), ``ops.maintenance_mode``,
  ``ops.grafana_annotations`` (queued until Grafana answers) and ``ops.action_leases``.

Revision ID: 0006_incidents
Revises: 0004_access
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0006_incidents"
down_revision = "0004_access"
branch_labels = ("incidents",)
depends_on = ("0005_webhooks",)

UPGRADE = r"""
UPDATE ops.incidents SET status = 'triggered' WHERE status NOT IN ('acknowledged', 'resolved');
ALTER TABLE ops.incidents
    ADD COLUMN group_key         text,
    ADD COLUMN dedup_key         text,
    ADD COLUMN alertname         text,
    ADD COLUMN team              text,
    ADD COLUMN summary           text NOT NULL DEFAULT '',
    ADD COLUMN source            text NOT NULL DEFAULT 'manual',
    ADD COLUMN acknowledged_by   text,
    ADD COLUMN resolved_by       text,
    ADD COLUMN suggested_actions jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN updated_at        timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT incidents_status CHECK (status IN ('triggered', 'acknowledged', 'resolved'));
-- One open incident per Alertmanager group; a resolved group may open a new one later.
CREATE UNIQUE INDEX incidents_open_group ON ops.incidents (group_key)
    WHERE resolved_at IS NULL AND group_key IS NOT NULL;
CREATE INDEX incidents_open ON ops.incidents (severity) WHERE resolved_at IS NULL;

CREATE TABLE ops.incident_alerts (
    incident_id bigint NOT NULL REFERENCES ops.incidents ON DELETE CASCADE,
    fingerprint text NOT NULL,
    alertname   text NOT NULL,
    status      text NOT NULL CHECK (status IN ('firing', 'resolved')),
    labels      jsonb NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz,
    PRIMARY KEY (incident_id, fingerprint)
);
CREATE INDEX incident_alerts_fingerprint ON ops.incident_alerts (fingerprint);

CREATE TABLE ops.incident_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES ops.incidents ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL,
    actor       text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX incident_events_incident ON ops.incident_events (incident_id, id);

CREATE TABLE ops.escalation_steps (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES ops.incidents ON DELETE CASCADE,
    level       integer NOT NULL,
    round       integer NOT NULL,
    due_at      timestamptz NOT NULL,
    fired_at    timestamptz,
    cancelled_at timestamptz,
    UNIQUE (incident_id, level, round)
);
CREATE INDEX escalation_steps_due ON ops.escalation_steps (due_at)
    WHERE fired_at IS NULL AND cancelled_at IS NULL;

CREATE TABLE ops.notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id     bigint NOT NULL REFERENCES ops.incidents ON DELETE CASCADE,
    step_id         bigint REFERENCES ops.escalation_steps ON DELETE CASCADE,
    transport       text NOT NULL,
    recipient       text NOT NULL,
    kind            text NOT NULL,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    response        jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    UNIQUE NULLS NOT DISTINCT (step_id, transport, recipient, kind)
);
CREATE INDEX notifications_due ON ops.notifications (next_attempt_at) WHERE status = 'pending';

CREATE TABLE ops.action_requests (
    idempotency_key text PRIMARY KEY,
    action          text NOT NULL,
    actor           text NOT NULL,
    target          text NOT NULL DEFAULT '',
    reason          text NOT NULL DEFAULT '',
    status          text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    result          jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);

CREATE TABLE ops.silences (
    target      text PRIMARY KEY,
    silence_id  text NOT NULL,
    ends_at     timestamptz NOT NULL,
    created_by  text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ops.payout_suspensions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('suspend', 'resume')),
    status        text NOT NULL CHECK (status IN ('pending', 'approved')),
    requested_by  text NOT NULL,
    approved_by   text,
    reason        text NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    approved_at   timestamptz,
    CHECK (approved_by IS NULL OR approved_by <> requested_by)
);
-- At most one request waits for its second approver at a time.
CREATE UNIQUE INDEX payout_suspensions_pending ON ops.payout_suspensions ((true))
    WHERE status = 'pending';

CREATE TABLE ops.maintenance_mode (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    enabled    boolean NOT NULL,
    changed_by text NOT NULL,
    reason     text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ops.action_leases (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    lease_until timestamptz NOT NULL
);

CREATE TABLE ops.finance_tickets (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    opened_by   text NOT NULL,
    reason      text NOT NULL,
    context     jsonb NOT NULL,
    status      text NOT NULL DEFAULT 'open',
    opened_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ops.grafana_annotations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    text            text NOT NULL,
    tags            text[] NOT NULL,
    at              timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    grafana_id      bigint
);
CREATE INDEX grafana_annotations_due ON ops.grafana_annotations (next_attempt_at)
    WHERE status = 'pending';
"""

DOWNGRADE = """
DROP TABLE ops.grafana_annotations, ops.finance_tickets, ops.action_leases,
    ops.maintenance_mode, ops.payout_suspensions, ops.silences, ops.action_requests,
    ops.notifications, ops.escalation_steps, ops.incident_events, ops.incident_alerts;
DROP INDEX ops.incidents_open_group, ops.incidents_open;
ALTER TABLE ops.incidents
    DROP CONSTRAINT incidents_status,
    DROP COLUMN group_key, DROP COLUMN dedup_key, DROP COLUMN alertname, DROP COLUMN team,
    DROP COLUMN summary,
    DROP COLUMN source, DROP COLUMN acknowledged_by, DROP COLUMN resolved_by,
    DROP COLUMN suggested_actions, DROP COLUMN updated_at;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
