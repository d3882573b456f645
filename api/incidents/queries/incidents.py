"""SQL of incidents: opening, alerts, the timeline, acknowledgement and resolution."""

from __future__ import annotations

LOCK_GROUP = "SELECT pg_advisory_xact_lock(hashtext('incident:' || %(key)s))"

# The open incident of a group, or one that already holds one of these fingerprints.
FIND_OPEN = """
SELECT i.id, i.status FROM ops.incidents i
WHERE i.resolved_at IS NULL
  AND (i.group_key = %(key)s OR EXISTS (
      SELECT FROM ops.incident_alerts a
      WHERE a.incident_id = i.id AND a.fingerprint = ANY(%(fingerprints)s)))
ORDER BY i.id LIMIT 1
FOR UPDATE
"""

OPEN = """
INSERT INTO ops.incidents (title, severity, status, services, started_at, owner, runbook_url,
                           group_key, alertname, team, summary, source, suggested_actions)
VALUES (%(title)s, %(severity)s, 'triggered', %(services)s, %(started_at)s, %(owner)s,
        %(runbook_url)s, %(group_key)s, %(alertname)s, %(team)s, %(summary)s, %(source)s,
        %(suggested_actions)s)
RETURNING id
"""

UPSERT_ALERT = """
INSERT INTO ops.incident_alerts (incident_id, fingerprint, alertname, status, labels,
                                 starts_at, ends_at)
VALUES (%(incident)s, %(fingerprint)s, %(alertname)s, %(status)s, %(labels)s, %(starts_at)s,
        %(ends_at)s)
ON CONFLICT (incident_id, fingerprint) DO UPDATE
SET status = excluded.status, ends_at = excluded.ends_at, labels = excluded.labels
"""

FIRING_ALERTS = """
SELECT count(*) FROM ops.incident_alerts WHERE incident_id = %(incident)s AND status = 'firing'
"""

FINGERPRINTS = """
SELECT fingerprint FROM ops.incident_alerts WHERE incident_id = %(incident)s ORDER BY fingerprint
"""

EVENT = """
INSERT INTO ops.incident_events (incident_id, kind, actor, detail, at)
VALUES (%(incident)s, %(kind)s, %(actor)s, %(detail)s, %(at)s)
"""

ACKNOWLEDGE = """
UPDATE ops.incidents
SET status = 'acknowledged', acknowledged_at = %(at)s, acknowledged_by = %(actor)s,
    owner = coalesce(owner, %(actor)s), updated_at = %(at)s
WHERE id = %(incident)s AND status = 'triggered'
RETURNING id
"""

RESOLVE = """
UPDATE ops.incidents
SET status = 'resolved', resolved_at = %(at)s, resolved_by = %(actor)s, updated_at = %(at)s
WHERE id = %(incident)s AND resolved_at IS NULL
RETURNING id
"""

GET = """
SELECT id, title, severity, status, services, started_at, owner, runbook_url, group_key,
       alertname, team, summary, acknowledged_at, acknowledged_by, resolved_at,
       suggested_actions, dedup_key
FROM ops.incidents WHERE id = %(incident)s
"""

OPEN_BY_ALERTNAME = """
SELECT id FROM ops.incidents
WHERE resolved_at IS NULL AND alertname = %(alertname)s ORDER BY id
"""

TIMELINE = """
SELECT at, kind, actor, detail FROM ops.incident_events
WHERE incident_id = %(incident)s ORDER BY id
"""

OPEN_BY_SEVERITY = """
SELECT severity, count(*) FROM ops.incidents WHERE resolved_at IS NULL GROUP BY severity
"""

SET_DEDUP_KEY = "UPDATE ops.incidents SET dedup_key = %(dedup)s WHERE id = %(incident)s"

# What a person changes by hand; each answers the values it replaced (None: nothing matched).
REOPEN = """
UPDATE ops.incidents
SET status = 'triggered', resolved_at = NULL, resolved_by = NULL, acknowledged_at = NULL,
    acknowledged_by = NULL, updated_at = %(at)s
WHERE id = %(incident)s AND resolved_at IS NOT NULL
RETURNING team
"""

REASSIGN = """
WITH before AS (
    SELECT id, owner, team FROM ops.incidents
    WHERE id = %(incident)s AND resolved_at IS NULL FOR UPDATE)
UPDATE ops.incidents i
SET owner = coalesce(%(owner)s::text, i.owner), team = coalesce(%(team)s::text, i.team),
    updated_at = %(at)s
FROM before WHERE i.id = before.id
RETURNING before.owner, before.team, i.owner, i.team, i.status
"""

SET_SEVERITY = """
WITH before AS (
    SELECT id, severity FROM ops.incidents
    WHERE id = %(incident)s AND resolved_at IS NULL FOR UPDATE)
UPDATE ops.incidents i SET severity = %(severity)s, updated_at = %(at)s
FROM before WHERE i.id = before.id
RETURNING before.severity, i.team, i.status
"""
