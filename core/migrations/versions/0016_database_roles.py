"""The audit log against the app that writes it: a keyed chain the services may only extend.

The services connect as a role that may INSERT into ``ops.audit_log`` and nothing more
(core.database_roles grants it after every ``opsdeck migrate``); the chain head is out of
its reach. Everything it needs from the head goes through SECURITY DEFINER functions owned
by the owner role:

- ``ops.audit_chain_next(...)`` locks the head (until the writer's transaction ends, so
  writers queue and the chain never forks) and answers the next ``chain_seq``, the time the
  row will carry, the previous hash and the row's canonical text. The writer computes
  ``hash = HMAC-SHA256(key, prev_hash || canonical)`` itself (core.audit): the key never
  reaches the database, so whoever rewrites rows there cannot recompute the chain.
- The ``audit_log_chain`` trigger now refuses a row that does not follow the head, stamps
  ``at`` with the server's ``now()`` whatever the writer sent (a back-dated row would be
  deletable at once under the retention rule), and moves the head.
- ``ops.audit_chain_state()`` reads the head; ``ops.audit_apply_retention(days)`` deletes
  rows older than ``greatest(days, 90)`` days, the only DELETE the services can make.

``audit_chain_head.keyed_from`` is the first row of the keyed chain: rows before it were
hashed with plain SHA-256 by the old trigger, and ``opsdeck audit verify`` checks them so.

Revision ID: 0016_database_roles
Revises: 0002_ops_base
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0016_database_roles"
down_revision = "0002_ops_base"
branch_labels = ("database_roles",)
depends_on = None

DEFINER = "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp"

UPGRADE = rf"""
ALTER TABLE ops.audit_chain_head ADD COLUMN keyed_from bigint;
UPDATE ops.audit_chain_head SET keyed_from = seq + 1;
ALTER TABLE ops.audit_chain_head ALTER COLUMN keyed_from SET NOT NULL;

CREATE FUNCTION ops.audit_chain_next(
    p_actor text, p_actor_role text, p_action text, p_target_type text, p_target_id text,
    p_reason text, p_outcome text, p_request_id text, p_ip_address inet, p_details jsonb
) RETURNS TABLE (chain_seq bigint, at timestamptz, prev_hash bytea, canonical text)
{DEFINER} AS $$
DECLARE
    head ops.audit_chain_head;
    r ops.audit_log;
BEGIN
    SELECT * INTO head FROM ops.audit_chain_head FOR UPDATE;
    r.chain_seq := head.seq + 1;
    r.at := date_trunc('microseconds', now());
    r.actor := p_actor;
    r.actor_role := p_actor_role;
    r.action := p_action;
    r.target_type := p_target_type;
    r.target_id := p_target_id;
    r.reason := p_reason;
    r.outcome := p_outcome;
    r.request_id := p_request_id;
    r.ip_address := p_ip_address;
    r.details := p_details;
    RETURN QUERY SELECT r.chain_seq, r.at, head.hash, ops.audit_canonical(r);
END $$;

CREATE OR REPLACE FUNCTION ops.audit_chain() RETURNS trigger {DEFINER} AS $$
DECLARE
    head ops.audit_chain_head;
BEGIN
    SELECT * INTO head FROM ops.audit_chain_head FOR UPDATE;
    IF NEW.chain_seq IS DISTINCT FROM head.seq + 1 OR NEW.prev_hash IS DISTINCT FROM head.hash
       OR NEW.hash IS NULL OR length(NEW.hash) <> 32 THEN
        RAISE EXCEPTION 'an audit row must follow the chain head (row %): '
            'write it through ops.audit_chain_next()', head.seq + 1
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.at := date_trunc('microseconds', now());
    UPDATE ops.audit_chain_head SET seq = NEW.chain_seq, hash = NEW.hash;
    RETURN NEW;
END $$;

CREATE FUNCTION ops.audit_chain_state()
RETURNS TABLE (seq bigint, hash bytea, keyed_from bigint) {DEFINER} STABLE AS $$
BEGIN
    RETURN QUERY SELECT h.seq, h.hash, h.keyed_from FROM ops.audit_chain_head h;
END $$;

CREATE FUNCTION ops.audit_apply_retention(p_days integer)
RETURNS TABLE (deleted bigint, through_seq bigint) {DEFINER} AS $$
BEGIN
    RETURN QUERY WITH gone AS (
        DELETE FROM ops.audit_log
        WHERE ops.audit_log.at < now() - make_interval(days => greatest(p_days, 90))
        RETURNING ops.audit_log.chain_seq
    ) SELECT count(*), max(gone.chain_seq) FROM gone;
END $$;

REVOKE ALL ON FUNCTION ops.audit_chain_next(text, text, text, text, text, text, text, text,
    inet, jsonb), ops.audit_chain(), ops.audit_chain_state(), ops.audit_apply_retention(integer)
    FROM PUBLIC;
"""

# 0002's trigger, unkeyed: it hashes in the database and keeps a caller's ``at``.
DOWNGRADE = r"""
DROP FUNCTION ops.audit_chain_next(text, text, text, text, text, text, text, text, inet, jsonb);
DROP FUNCTION ops.audit_chain_state();
DROP FUNCTION ops.audit_apply_retention(integer);
CREATE OR REPLACE FUNCTION ops.audit_chain() RETURNS trigger LANGUAGE plpgsql
SECURITY INVOKER AS $$
DECLARE
    head ops.audit_chain_head;
BEGIN
    SELECT * INTO head FROM ops.audit_chain_head FOR UPDATE;
    NEW.at := date_trunc('microseconds', coalesce(NEW.at, now()));
    NEW.chain_seq := head.seq + 1;
    NEW.prev_hash := head.hash;
    NEW.hash := sha256(head.hash || convert_to(ops.audit_canonical(NEW), 'UTF8'));
    UPDATE ops.audit_chain_head SET seq = NEW.chain_seq, hash = NEW.hash;
    RETURN NEW;
END $$;
GRANT EXECUTE ON FUNCTION ops.audit_chain() TO PUBLIC;
ALTER TABLE ops.audit_chain_head DROP COLUMN keyed_from;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
