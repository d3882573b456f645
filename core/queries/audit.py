"""ops.audit_log: append, read back for verification, retention, checkpoints.

Only :mod:`core.audit` (and :mod:`core.audit_checkpoints`, which reads) run these:
:data:`NEXT` then :data:`INSERT` through its ``record`` and ``record_in``, so every audit
row is written one way (tests/core/test_audit.py holds the code to it). The services reach
the chain head only through the SECURITY DEFINER functions of 0016_database_roles.
"""

from __future__ import annotations

# Locks the chain head until the transaction ends and answers what the row's link hashes.
NEXT = (
    "SELECT chain_seq, at, prev_hash, canonical FROM ops.audit_chain_next(%(actor)s, "
    "%(actor_role)s, %(action)s, %(target_type)s, %(target_id)s, %(reason)s, %(outcome)s, "
    "%(request_id)s, %(ip_address)s, %(details)s)"
)
# ``at`` is the server's now(), stamped by the trigger: the writer does not send one.
INSERT = (
    "INSERT INTO ops.audit_log (chain_seq, actor, actor_role, action, target_type, target_id, "
    "reason, outcome, request_id, ip_address, details, prev_hash, hash) VALUES (%(chain_seq)s, "
    "%(actor)s, %(actor_role)s, %(action)s, %(target_type)s, %(target_id)s, %(reason)s, "
    "%(outcome)s, %(request_id)s, %(ip_address)s, %(details)s, %(prev_hash)s, %(hash)s) "
    "RETURNING chain_seq"
)
# What ops.audit_canonical() reads, as stored: the hash is recomputed in Python from these.
CHAIN = (
    "SELECT chain_seq, at, actor, actor_role, action, target_type, target_id, reason, outcome, "
    "request_id, host(ip_address), details::text, prev_hash, hash FROM ops.audit_log "
    "ORDER BY chain_seq"
)
HEAD = "SELECT seq, hash, keyed_from FROM ops.audit_chain_state()"
ROW_HASH = "SELECT hash FROM ops.audit_log WHERE chain_seq = %(seq)s"
LAST_RETENTION = (
    "SELECT (details->>'through_seq')::bigint FROM ops.audit_log "
    "WHERE action = 'audit.retention' AND details ? 'through_seq' ORDER BY chain_seq DESC LIMIT 1"
)
RETENTION = "SELECT deleted, through_seq FROM ops.audit_apply_retention(%(days)s)"
EXPORT = (
    "SELECT chain_seq, at, actor, actor_role, action, target_type, target_id, reason, outcome, "
    "request_id, host(ip_address) AS ip_address, details, encode(hash, 'hex') AS hash "
    "FROM ops.audit_log WHERE at >= %(since)s AND at < %(until)s ORDER BY chain_seq"
)
