"""SQL of the incident page: the incident, and its whole timeline in one ordered list."""

from __future__ import annotations

INCIDENT = """
SELECT id, title, severity, status, team, owner, services, source, alertname, summary,
       runbook_url, started_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by
FROM ops.incidents WHERE id = %(incident)s
"""

# Alerts firing and resolved (from their rows), the escalation steps fired and still
# planned with each notification they queued (who, by which transport, how it went), the
# notifications that belong to no step (message updates, pager acknowledgements), and the
# recorded events (opened, actions, notes, ...) except those the rows above tell better.
# A notification's time is when it was sent, else when it is (or was last) due.
ENTRIES = """
SELECT at, kind, actor, detail FROM (
    SELECT e.at, e.kind, e.actor, e.detail, 0 AS source, e.id AS seq
    FROM ops.incident_events e
    WHERE e.incident_id = %(incident)s
      AND e.kind NOT IN ('alerts', 'escalation', 'notified', 'notification_failed')
    UNION ALL
    SELECT a.starts_at, 'alert_firing', 'alertmanager',
           jsonb_build_object('alertname', a.alertname, 'fingerprint', a.fingerprint), 1, 0
    FROM ops.incident_alerts a WHERE a.incident_id = %(incident)s
    UNION ALL
    SELECT a.ends_at, 'alert_resolved', 'alertmanager',
           jsonb_build_object('alertname', a.alertname, 'fingerprint', a.fingerprint), 1, 1
    FROM ops.incident_alerts a
    WHERE a.incident_id = %(incident)s AND a.status = 'resolved' AND a.ends_at IS NOT NULL
    UNION ALL
    SELECT coalesce(s.fired_at, s.due_at),
           CASE WHEN s.fired_at IS NULL THEN 'escalation_planned' ELSE 'escalation_fired' END,
           'escalation',
           jsonb_build_object(
               'plan', s.plan, 'level', s.level, 'round', s.round,
               'notified', coalesce((
                   SELECT jsonb_agg(jsonb_build_object(
                       'transport', n.transport, 'recipient', n.recipient, 'kind', n.kind,
                       'status', n.status, 'attempts', n.attempts, 'error', n.last_error)
                       ORDER BY n.id)
                   FROM ops.notifications n WHERE n.step_id = s.id), '[]'::jsonb)),
           2, s.id
    FROM ops.escalation_steps s
    WHERE s.incident_id = %(incident)s AND s.cancelled_at IS NULL
    UNION ALL
    SELECT coalesce(n.sent_at, n.next_attempt_at), 'notification', n.transport,
           jsonb_build_object(
               'transport', n.transport, 'recipient', n.recipient, 'kind', n.kind,
               'status', n.status, 'attempts', n.attempts, 'error', n.last_error),
           3, n.id
    FROM ops.notifications n WHERE n.incident_id = %(incident)s AND n.step_id IS NULL
) entries
ORDER BY at, source, seq
"""
