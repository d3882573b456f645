"""SQL of the escalation engine: planned steps, their claim, and the notifications queue."""

from __future__ import annotations

PLAN_STEP = """
INSERT INTO ops.escalation_steps (incident_id, plan, level, round, due_at)
VALUES (%(incident)s, %(plan)s, %(level)s, %(round)s, %(due_at)s)
ON CONFLICT (incident_id, plan, level, round) DO NOTHING
"""

# The generation a redrawn plan takes: one past the incident's latest.
NEXT_PLAN = """
SELECT coalesce(max(plan) + 1, 0) FROM ops.escalation_steps WHERE incident_id = %(incident)s
"""

# Due steps of incidents still unacknowledged; a step is claimed once, by one engine.
CLAIM_DUE = """
SELECT s.id, s.incident_id, s.level, s.round, i.team, i.severity, s.plan
FROM ops.escalation_steps s
JOIN ops.incidents i ON i.id = s.incident_id
WHERE s.fired_at IS NULL AND s.cancelled_at IS NULL AND s.due_at <= %(now)s
  AND i.status = 'triggered'
ORDER BY s.due_at, s.id
LIMIT %(limit)s
FOR UPDATE OF s SKIP LOCKED
"""

MARK_FIRED = "UPDATE ops.escalation_steps SET fired_at = %(now)s WHERE id = %(id)s"

CANCEL_STEPS = """
UPDATE ops.escalation_steps SET cancelled_at = %(now)s
WHERE incident_id = %(incident)s AND fired_at IS NULL AND cancelled_at IS NULL
"""

NOTIFY = """
INSERT INTO ops.notifications (incident_id, step_id, transport, recipient, kind, payload,
                               next_attempt_at)
VALUES (%(incident)s, %(step)s, %(transport)s, %(recipient)s, %(kind)s, %(payload)s, %(now)s)
ON CONFLICT DO NOTHING
"""

CLAIM_NOTIFICATIONS = """
SELECT n.id, n.incident_id, n.transport, n.recipient, n.kind, n.payload, n.attempts
FROM ops.notifications n
WHERE n.status = 'pending' AND n.next_attempt_at <= %(now)s
ORDER BY n.next_attempt_at, n.id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""

SENT = """
UPDATE ops.notifications
SET status = 'sent', attempts = attempts + 1, sent_at = %(now)s, response = %(response)s,
    last_error = NULL
WHERE id = %(id)s
"""

RETRY = """
UPDATE ops.notifications
SET attempts = attempts + 1, next_attempt_at = %(next)s, last_error = %(error)s
WHERE id = %(id)s
"""

FAILED = """
UPDATE ops.notifications
SET status = 'failed', attempts = attempts + 1, last_error = %(error)s
WHERE id = %(id)s
"""

# The Slack message of an incident (to update in place) once it was posted.
SLACK_MESSAGE = """
SELECT response FROM ops.notifications
WHERE incident_id = %(incident)s AND transport = 'slack' AND kind = 'page' AND status = 'sent'
ORDER BY id LIMIT 1
"""

STEPS = """
SELECT level, round, due_at, fired_at, cancelled_at FROM ops.escalation_steps
WHERE incident_id = %(incident)s ORDER BY plan, round, level
"""

# Whether the incident was announced in Slack (its message posted, or queued to be).
SLACK_ANNOUNCED = """
SELECT EXISTS (
    SELECT FROM ops.notifications
    WHERE incident_id = %(incident)s AND transport = 'slack' AND kind = 'page'
      AND status <> 'failed')
"""

# The engine's leader lock (core/leadership.py): its row in ops.leaders, and the advisory
# lock that fences firing steps against an election.
ENGINE_LEADER = "escalation-engine"
ENGINE_FENCE_KEY = 7_220_260_007

# The pagers an incident was triggered in: acknowledge and resolve go to those only.
TRIGGERED_PAGERS = """
SELECT DISTINCT transport FROM ops.notifications
WHERE incident_id = %(incident)s AND kind = 'trigger'
ORDER BY transport
"""
