"""Role-based access: the one permission table (seed 001's roles).

- super_admin: everything;
- ops: incidents, metrics, operational drilldowns (bookings, API logs) and operational actions;
- finance: payment views (payments, reconciliation, usage) and finance actions, PII masked;
- viewer: read-only views, no export, no unmask, no actions.

Every route names one permission (or none, for the public ones); every check goes through
:func:`allowed`. A part that adds routes adds its permissions here.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    SUPER_ADMIN = "super_admin"
    OPS = "ops"
    FINANCE = "finance"
    VIEWER = "viewer"


ROLES: tuple[Role, ...] = tuple(Role)
_ALL = frozenset(Role)
_SA, _OPS, _FIN, _VIEW = Role.SUPER_ADMIN, Role.OPS, Role.FINANCE, Role.VIEWER

# permission -> the roles that hold it.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "signed_in": _ALL,
    "bookings.read": frozenset({_SA, _OPS, _VIEW}),
    "bookings.export": frozenset({_SA, _OPS}),
    "payments.read": frozenset({_SA, _FIN}),
    "payments.export": frozenset({_SA, _FIN}),
    "reconciliation.read": frozenset({_SA, _FIN}),
    "reconciliation.export": frozenset({_SA, _FIN}),
    "api_logs.read": frozenset({_SA, _OPS}),
    "api_logs.export": frozenset({_SA, _OPS}),
    "usage.read": _ALL,
    "usage.export": frozenset({_SA, _FIN}),
    "incidents.read": _ALL,
    "incidents.export": frozenset({_SA, _OPS}),
    # Acknowledge, Create incident, Mute 1h (alert management: seed 001's Ops role).
    "incidents.manage": frozenset({_SA, _OPS}),
    "metrics.read": _ALL,
    # Calendar syncs and support tickets: operations, read by every operational role.
    "operations.read": frozenset({_SA, _OPS, _VIEW}),
    "operations.export": frozenset({_SA, _OPS}),
    "audit.read": frozenset({_SA}),
    "audit.export": frozenset({_SA}),
    "pii.unmask": frozenset({_SA}),
    "actions.operational": frozenset({_SA, _OPS}),
    "actions.finance": frozenset({_SA, _FIN}),
    # Finance tickets: their list, pages and export, and moving or assigning them.
    "finance_tickets.read": frozenset({_SA, _FIN}),
    "finance_tickets.export": frozenset({_SA, _FIN}),
    "finance_tickets.manage": frozenset({_SA, _FIN}),
    # The public status page's notices: editing their public wording.
    "status_notices.manage": frozenset({_SA, _OPS}),
    # Users: their roles, access, passwords, second factor, sessions, and everyone's keys.
    "users.manage": frozenset({_SA}),
    # One's own API keys: create, revoke, rotate, and their usage (a key without this
    # scope cannot make keys).
    "api_keys.manage": _ALL,
    # The webhook gateway: raw payloads in and out, so only the roles that operate it.
    "webhooks.read": frozenset({_SA, _OPS}),
    "webhooks.export": frozenset({_SA, _OPS}),
    "webhooks.manage": frozenset({_SA, _OPS}),
}


def allowed(role: Role, permission: str) -> bool:
    return role in PERMISSIONS[permission]


def permissions_of(role: Role) -> frozenset[str]:
    return frozenset(name for name, roles in PERMISSIONS.items() if role in roles)
