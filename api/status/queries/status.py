"""SQL of the status page: the services' latest checks and the public notices."""

from __future__ import annotations

# Per service, its latest check: (service, ok, checked_at, stale), one index probe each.
# Staleness is measured against the database clock that stamped ``checked_at``, as the
# exporter's ``opsdeck_service_up`` does.
LATEST_CHECKS = """
SELECT s, c.ok, c.checked_at,
       c.checked_at < now() - %(stale_seconds)s * interval '1 second'
FROM unnest(%(services)s::text[]) AS s
CROSS JOIN LATERAL (
    SELECT ok, checked_at FROM platform.service_checks WHERE service = s
    ORDER BY checked_at DESC LIMIT 1
) AS c
"""

OPEN_NOTICE = """
INSERT INTO ops.status_notices (incident_id, component, title, status, opened_at, updated_at)
VALUES (%(incident)s, %(component)s, %(title)s, 'investigating', %(now)s, %(now)s)
ON CONFLICT (incident_id) DO NOTHING
RETURNING id
"""

NOTICE_OF_INCIDENT = """
SELECT id, status FROM ops.status_notices WHERE incident_id = %(incident)s FOR UPDATE
"""

LOCK_NOTICE = "SELECT id, status, title FROM ops.status_notices WHERE id = %(id)s FOR UPDATE"

SET_STATUS = """
UPDATE ops.status_notices
SET status = %(status)s, updated_at = %(now)s,
    resolved_at = CASE WHEN %(status)s = 'resolved' THEN %(now)s END
WHERE id = %(id)s
"""

SET_TITLE = (
    "UPDATE ops.status_notices SET title = %(title)s, updated_at = %(now)s WHERE id = %(id)s"
)

ADD_UPDATE = """
INSERT INTO ops.status_notice_updates (notice_id, at, status, message, author)
VALUES (%(notice)s, %(now)s, %(status)s, %(message)s, %(author)s)
"""

LATEST_UPDATE = """
SELECT id, message FROM ops.status_notice_updates WHERE notice_id = %(notice)s
ORDER BY id DESC LIMIT 1
"""

EDIT_UPDATE = "UPDATE ops.status_notice_updates SET message = %(message)s WHERE id = %(id)s"

# Open notices, and those resolved in the window: what the public page shows.
PUBLIC_NOTICES = """
SELECT id, component, title, status, opened_at, updated_at, resolved_at
FROM ops.status_notices
WHERE resolved_at IS NULL OR resolved_at >= %(now)s - %(days)s * interval '1 day'
ORDER BY resolved_at IS NULL DESC, opened_at DESC
LIMIT 50
"""

PUBLIC_UPDATES = """
SELECT notice_id, at, status, message FROM ops.status_notice_updates
WHERE notice_id = ANY(%(notices)s) ORDER BY notice_id, id DESC
"""

NOTICE = """
SELECT id, component, title, status, opened_at, updated_at, resolved_at, incident_id
FROM ops.status_notices WHERE id = %(id)s
"""
