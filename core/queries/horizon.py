"""The commit horizon: the event time before which every platform event is visible."""

from __future__ import annotations

CAN_SEE_ACTIVITY = """
SELECT NOT pg_is_in_recovery()
   AND (pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER')
        OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user))
"""

# Both readings return (horizon, the statement's snapshot, the clock after taking it):
# every transaction the snapshot sees committed before that clock (core/commits.py).
#
# statement_timestamp() is read before pg_stat_activity is: a transaction that starts
# after the read starts after it too. Sessions that never write the platform are ignored
# (%(ignored)s: core.horizon.ignored_applications, from core/application_names.py).
ACTIVITY = """
SELECT least(statement_timestamp(), min(xact_start)) - %(margin)s * interval '1 second',
       pg_current_snapshot()::text, clock_timestamp()
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
  AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
  AND NOT (application_name = ANY(%(ignored)s::text[]))
"""

LOOKBACK = """
SELECT statement_timestamp() - %(lookback)s * interval '1 second',
       pg_current_snapshot()::text, clock_timestamp()
"""

# The id of the calling transaction if it wrote anything (NULL otherwise), read before it
# commits: opsdeck's own writes are not the platform's commits.
OWN_TRANSACTION = "SELECT pg_current_xact_id_if_assigned()::text"
