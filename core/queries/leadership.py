"""SQL of the leader lock (core/leadership.py): the only place opsdeck takes a session
advisory lock, and the epochs of ``ops.leaders`` (migration 0010)."""

from __future__ import annotations

TRY_LOCK = "SELECT pg_try_advisory_lock(%(key)s)"

# Whether this session still holds the lock: a bigint advisory key shows in pg_locks as its
# high and low 32 bits (classid, objid) with objsubid 1.
HOLDS = """
SELECT EXISTS (
    SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1
      AND classid::bigint = (%(key)s::bigint >> 32) & 4294967295
      AND objid::bigint = %(key)s::bigint & 4294967295
)
"""

# An election takes the fence lock exclusively: it waits for the fenced writes in flight,
# and every fenced write after it reads the new epoch. Advisory locks cost no writes.
ELECT_LOCK = "SELECT pg_advisory_xact_lock(%(fence)s)"
ELECT = """
INSERT INTO ops.leaders (name, epoch, holder, elected_at)
VALUES (%(name)s, 1, %(holder)s, now())
ON CONFLICT (name) DO UPDATE
SET epoch = ops.leaders.epoch + 1, holder = EXCLUDED.holder, elected_at = now()
RETURNING epoch
"""

# ops.leader_fence takes the fence lock shared (until the transaction ends) and only then
# reads the epoch: a plain SELECT would read it from a snapshot taken before waiting out an
# election. The database clock comes along, for writers that stamp with it.
FENCE = "SELECT ops.leader_fence(%(name)s, %(fence)s), now()"
