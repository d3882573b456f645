"""Schema "ops": everything opsdeck owns. The base holds the audit trail every part writes.

The audit log is append-only: a trigger refuses UPDATE, TRUNCATE and any DELETE that is
not retention (rows older than 90 days). Each row is chained to the previous one by
``hash = sha256(prev_hash || canonical row)``; ``opsdeck audit verify`` recomputes it.

Revision ID: 0002_ops_base
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0002_ops_base"
down_revision = None
branch_labels = ("ops",)
depends_on = None

UPGRADE = r"""
CREATE SCHEMA ops;

-- Grafana's PostgreSQL datasource logs in as this role (deployments give it LOGIN and a
-- password). It reads only the masked ops.grafana_* views each part grants it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'opsdeck_grafana') THEN
        CREATE ROLE opsdeck_grafana NOLOGIN;
    END IF;
END $$;
GRANT USAGE ON SCHEMA ops TO opsdeck_grafana;

-- Anomalies injected into the simulated platform (opsdeck simulate --inject), read by every
-- running live stream so that an injection reaches the demo's traffic too.
CREATE TABLE ops.simulator_anomalies (
    kind       text PRIMARY KEY,
    until      timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ops.audit_chain_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq       bigint NOT NULL,
    hash      bytea NOT NULL
);
INSERT INTO ops.audit_chain_head (seq, hash) VALUES (0, '\x'::bytea);

CREATE TABLE ops.audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain_seq   bigint NOT NULL UNIQUE,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    actor_role  text,
    action      text NOT NULL,
    target_type text,
    target_id   text,
    reason      text,
    outcome     text NOT NULL DEFAULT 'ok',
    request_id  text,
    ip_address  inet,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    prev_hash   bytea NOT NULL,
    hash        bytea NOT NULL
);
CREATE INDEX audit_log_at ON ops.audit_log (at);
CREATE INDEX audit_log_target ON ops.audit_log (target_type, target_id, at);

-- The canonical text of a row; opsdeck.audit computes the same bytes in Python.
CREATE FUNCTION ops.audit_canonical(r ops.audit_log) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT concat_ws(E'\x1f',
        r.chain_seq::text,
        to_char(r.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        r.actor, coalesce(r.actor_role, ''), r.action,
        coalesce(r.target_type, ''), coalesce(r.target_id, ''), coalesce(r.reason, ''),
        r.outcome, coalesce(r.request_id, ''), coalesce(host(r.ip_address), ''),
        r.details::text)
$$;

CREATE FUNCTION ops.audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head ops.audit_chain_head;
BEGIN
    -- The head row lock serialises writers, so the chain never forks.
    SELECT * INTO head FROM ops.audit_chain_head FOR UPDATE;
    NEW.at := date_trunc('microseconds', coalesce(NEW.at, now()));
    NEW.chain_seq := head.seq + 1;
    NEW.prev_hash := head.hash;
    NEW.hash := sha256(head.hash || convert_to(ops.audit_canonical(NEW), 'UTF8'));
    UPDATE ops.audit_chain_head SET seq = NEW.chain_seq, hash = NEW.hash;
    RETURN NEW;
END $$;

CREATE FUNCTION ops.audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.at < now() - interval '90 days' THEN
            RETURN OLD;  -- retention
        END IF;
    END IF;
    RAISE EXCEPTION 'ops.audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON ops.audit_log
    FOR EACH ROW EXECUTE FUNCTION ops.audit_chain();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON ops.audit_log
    FOR EACH ROW EXECUTE FUNCTION ops.audit_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON ops.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION ops.audit_refuse_change();

-- The Command Center's Audit Trail panel: who did what, without addresses or details.
CREATE VIEW ops.grafana_audit_trail AS
SELECT at, actor, actor_role, action, target_type, target_id, outcome, reason
FROM ops.audit_log;
GRANT SELECT ON ops.grafana_audit_trail TO opsdeck_grafana;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("DROP SCHEMA ops CASCADE")
