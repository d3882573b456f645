"""ops.audit_log: append, read back for verification, retention.

Only :mod:`core.audit` runs these: :data:`INSERT` through its ``record`` and ``record_in``,
so every audit row is written one way (tests/core/test_audit.py holds the code to it).
"""

from __future__ import annotations

INSERT = (
    "INSERT INTO ops.audit_log (actor, actor_role, action, target_type, target_id, reason, "
    "outcome, request_id, ip_address, details) VALUES (%(actor)s, %(actor_role)s, %(action)s, "
    "%(target_type)s, %(target_id)s, %(reason)s, %(outcome)s, %(request_id)s, %(ip_address)s, "
    "%(details)s) RETURNING chain_seq"
)
# What ops.audit_canonical() reads, as stored: the hash is recomputed in Python from these.
CHAIN = (
    "SELECT chain_seq, at, actor, actor_role, action, target_type, target_id, reason, outcome, "
    "request_id, host(ip_address), details::text, prev_hash, hash FROM ops.audit_log "
    "ORDER BY chain_seq"
)
HEAD = "SELECT seq, hash FROM ops.audit_chain_head"
LAST_RETENTION = (
    "SELECT (details->>'through_seq')::bigint FROM ops.audit_log "
    "WHERE action = 'audit.retention' AND details ? 'through_seq' ORDER BY chain_seq DESC LIMIT 1"
)
RETENTION = (
    "WITH gone AS (DELETE FROM ops.audit_log "
    "WHERE at < now() - make_interval(days => %(days)s) RETURNING chain_seq) "
    "SELECT count(*), max(chain_seq) FROM gone"
)
EXPORT = (
    "SELECT chain_seq, at, actor, actor_role, action, target_type, target_id, reason, outcome, "
    "request_id, host(ip_address) AS ip_address, details, encode(hash, 'hex') AS hash "
    "FROM ops.audit_log WHERE at >= %(since)s AND at < %(until)s ORDER BY chain_seq"
)
