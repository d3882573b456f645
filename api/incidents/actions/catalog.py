"""The one table of one-click actions: name (its path under /actions/), permission,
confirmation summary and effect. Permissions follow seed 001: incidents for Ops, payment
actions for Finance, everything for Super Admin (see api/rbac.py)."""

from __future__ import annotations

from api.incidents.actions import (
    incident_actions,
    incident_changes,
    operations,
    payouts,
    silence,
)
from api.incidents.actions.spec import ActionSpec

INCIDENTS = "incidents.manage"
OPERATIONAL = "actions.operational"
FINANCE = "actions.finance"

ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        "acknowledge",
        "Acknowledge",
        INCIDENTS,
        incident_actions.acknowledge_summary,
        incident_actions.acknowledge,
    ),
    ActionSpec(
        "create-incident",
        "Create incident",
        INCIDENTS,
        incident_actions.create_summary,
        incident_actions.create_incident,
        inputs=incident_actions.CREATE_INPUTS,
    ),
    ActionSpec(
        "resolve",
        "Resolve",
        INCIDENTS,
        incident_changes.open_summary(
            "Resolve: escalation stops, the pagers and Slack are told it is over."
        ),
        incident_changes.resolve,
    ),
    ActionSpec(
        "reopen",
        "Reopen",
        INCIDENTS,
        incident_changes.reopen_summary,
        incident_changes.reopen,
    ),
    ActionSpec(
        "reassign",
        "Reassign",
        INCIDENTS,
        incident_changes.open_summary(
            "Reassign the owner and/or the team; a new team escalates through its own policy"
            " until someone acknowledges."
        ),
        incident_changes.reassign,
        inputs=(incident_changes.OWNER, incident_changes.TEAM),
    ),
    ActionSpec(
        "set-severity",
        "Change severity",
        INCIDENTS,
        incident_changes.open_summary(
            "Change the severity; until someone acknowledges, escalation is planned again"
            " from now with the transports the severity calls for."
        ),
        incident_changes.set_severity,
        inputs=(incident_changes.SEVERITY,),
    ),
    ActionSpec(
        "add-note",
        "Add note",
        INCIDENTS,
        incident_changes.note_summary,
        incident_changes.add_note,
        reason_field="note",
        reason_label="Note",
    ),
    ActionSpec("mute-1h", "Mute 1h", INCIDENTS, silence.mute_summary, silence.mute),
    ActionSpec(
        "suspend-payouts",
        "Suspend payouts",
        FINANCE,
        payouts.summary_for("suspend"),
        payouts.effect_for("suspend"),
    ),
    ActionSpec(
        "resume-payouts",
        "Resume payouts",
        FINANCE,
        payouts.summary_for("resume"),
        payouts.effect_for("resume"),
    ),
    ActionSpec(
        "open-finance-ticket",
        "Open finance ticket",
        FINANCE,
        operations.finance_summary,
        operations.open_finance_ticket,
    ),
    ActionSpec(
        "notify-partners",
        "Notify partners",
        OPERATIONAL,
        operations.notify_summary,
        operations.notify_partners,
    ),
    ActionSpec(
        "reprocess-dead-letters",
        "Reprocess dead letters",
        OPERATIONAL,
        operations.dead_letters_summary,
        operations.reprocess,
    ),
    ActionSpec(
        "maintenance-on",
        "Maintenance mode on",
        OPERATIONAL,
        operations.maintenance_summary(True),
        operations.maintenance(True),
    ),
    ActionSpec(
        "maintenance-off",
        "Maintenance mode off",
        OPERATIONAL,
        operations.maintenance_summary(False),
        operations.maintenance(False),
    ),
)
BY_NAME = {a.name: a for a in ACTIONS}
