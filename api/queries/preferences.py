"""A person's own settings on ``ops.users``: the time zone pages show times in."""

from __future__ import annotations

TIME_ZONE = "SELECT time_zone FROM ops.users WHERE id = %(id)s"
# The previous zone comes back for the audit entry.
SET_TIME_ZONE = """
UPDATE ops.users u SET time_zone = %(zone)s
FROM (SELECT id, time_zone FROM ops.users WHERE id = %(id)s FOR UPDATE) before
WHERE u.id = before.id
RETURNING before.time_zone
"""
