"""Finance tickets and status notices in the route x role test
(tests/api/test_route_roles.py): a record to act on, the query each change names, and a valid
confirmed POST, as the principal at hand."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from api.routing import RouteSpec
from tests.incidents.actions_client import post_change

OPEN_TICKET = """
INSERT INTO ops.finance_tickets (opened_by, reason, context, status)
VALUES ('route-matrix', 'route matrix ticket', '{}', 'open') RETURNING id
"""
OPEN_NOTICE = """
WITH notice AS (
    INSERT INTO ops.status_notices (component, title, status, opened_at, updated_at)
    VALUES ('booking_api', 'Bookings are failing', 'investigating', now(), now()) RETURNING id
)
INSERT INTO ops.status_notice_updates (notice_id, at, status, message, author)
SELECT id, now(), 'investigating', 'We are looking into it.', 'route-matrix' FROM notice
RETURNING notice_id
"""
# The change each route names in its query string.
QUERIES = {
    "finance_ticket_status": "status=in_progress",
    "finance_ticket_owner": "owner=grace",
}
FIELDS = {
    "finance_ticket_owner": {"owner": "grace"},
    "status_notice_wording": {"title": "Bookings are slow", "message": "A fix is rolling out."},
}


class Sql(Protocol):
    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]: ...


def change_samples(api: Sql) -> dict[str, str]:
    """A real id for the finance ticket and status notice routes, by route name."""
    ticket = str(api.sql(OPEN_TICKET)[0][0])
    notice = str(api.sql(OPEN_NOTICE)[0][0])
    names = ("finance_ticket", "finance_ticket_status", "finance_ticket_owner")
    return dict.fromkeys(names, ticket) | {"status_notice_wording": notice}


def change_query(spec: RouteSpec) -> str | None:
    return QUERIES.get(spec.name.removesuffix("_run"))


async def change_request(
    api: Sql, client: httpx.AsyncClient, spec: RouteSpec, method: str, path: str, token: str
) -> httpx.Response | None:
    """The confirmed POST of a finance-ticket or notice change; None for other routes. Each
    change is a first ask: the ticket goes back to open, and unowned, before it."""
    name = spec.name.removesuffix("_run")
    if method != "POST" or not name.startswith(("finance_ticket_", "status_notice_")):
        return None
    api.sql(
        "UPDATE ops.finance_tickets SET status = 'open', owner = NULL "
        "WHERE opened_by = 'route-matrix'"
    )
    fields = {**FIELDS.get(name, {}), "reason": "route matrix"}
    return await post_change(client, path, token, fields)
