"""The finance tickets' routes: the list (a drilldown over ``ops.finance_tickets``, JSON,
page and CSV), a ticket's page and JSON, and the confirmed changes that move it through
its statuses and give it an owner."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.confirmed_changes import Change, Done, Edit, Input, Proposal, change_routes
from api.drilldowns.render import jsonable
from api.drilldowns.spec import Field, Filter, ListView
from api.drilldowns.views import list_routes
from api.finance import tickets
from api.finance.queries import tickets as sql
from api.pages import render
from api.problems import Problem, invalid
from api.routing import Param, RouteSpec, runtime_of

READ = "finance_tickets.read"
EXPORT = "finance_tickets.export"
MANAGE = "finance_tickets.manage"
TAGS = ("finance-tickets",)
FIELDS = (
    Field("id", "Id", "integer", link="/finance-tickets/{id}"),
    Field("status", "Status", show="badge"),
    Field("owner", "Owner", nullable=True),
    Field(
        "transaction_id", "Transaction", "integer", nullable=True, link="/payments/{transaction_id}"
    ),
    Field("alertname", "Alert", nullable=True),
    Field("incident_id", "Incident", "integer", nullable=True, link="/incidents/{incident_id}"),
    Field("opened_by", "Opened by"),
    Field("reason", "Reason"),
    Field("source", "Source"),
    Field("opened_at", "Opened", "date-time"),
    Field("updated_at", "Updated", "date-time"),
    Field("resolved_at", "Resolved", "date-time", nullable=True),
)
LIST = ListView(
    name="finance-tickets",
    title="Finance tickets",
    permission=READ,
    export_permission=EXPORT,
    listing=sql.LIST,
    fields=FIELDS,
    filters=(
        Filter("status", "ticket status (repeatable)", choices=tickets.STATUSES, multiple=True),
        Filter("owner", "owner", max_length=200),
        Filter("transaction", "the transaction it came from", "integer", minimum=1),
        Filter("alertname", "the alert it came from", max_length=200),
    ),
    sorts=("opened_at", "id"),
    database="ops",
    default_from="now-30d",
    time_label="opened",
    description="Finance tickets opened from alerts, incidents and payment rows.",
)
ID = Param("id", {"type": "integer", "minimum": 1}, "finance ticket id", "path", required=True)
TICKET_SCHEMA = {
    "type": "object",
    "required": ["ticket", "history", "next_statuses"],
    "properties": {
        "ticket": {"type": "object"},
        "history": {"type": "array", "items": {"type": "object"}},
        "next_statuses": {"type": "array", "items": {"type": "string"}},
    },
}


def _ticket_id(request: Request) -> int:
    raw = str(request.path_params["id"])
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise invalid("id", "a finance ticket id")
    return int(raw)


async def _load(request: Request) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ticket = _ticket_id(request)
    async with runtime_of(request).ops.connection() as conn:
        row = await tickets.get(conn, ticket)
        if row is None:
            raise Problem(404, f"no finance ticket {ticket}")
        return row, await tickets.history(conn, ticket)


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: jsonable(v) for k, v in record.items()}


async def ticket_json(request: Request) -> Response:
    row, history = await _load(request)
    body = {
        "ticket": _jsonable(row),
        "history": [_jsonable(h) for h in history],
        "next_statuses": list(tickets.NEXT[row["status"]]),
    }
    return JSONResponse(body)


async def ticket_page(request: Request) -> Response:
    row, history = await _load(request)
    context = {
        "ticket": row,
        "history": history,
        "labels": tickets.LABELS,
        "next_statuses": tickets.NEXT[row["status"]],
    }
    return render(request, "finance_ticket.html", context)


def _target(request: Request) -> str:
    return str(_ticket_id(request))


def _wanted_status(request: Request) -> str:
    status = request.query_params.get("status", "")
    if status not in tickets.STATUSES:
        raise invalid("status", f"one of {', '.join(tickets.STATUSES)}")
    return status


async def _current(request: Request) -> dict[str, Any]:
    row, _ = await _load(request)
    return row


async def propose_status(request: Request) -> Proposal:
    status, row = _wanted_status(request), await _current(request)
    if status not in tickets.NEXT[row["status"]]:
        allowed = ", ".join(tickets.NEXT[row["status"]])
        raise Problem(409, f"ticket {row['id']} is {row['status']}: it can move to {allowed}")
    label, now = tickets.LABELS[status], tickets.LABELS[row["status"]]
    return Proposal(f"Move finance ticket #{row['id']} from {now} to {label}.")


async def apply_status(edit: Edit) -> Done:
    ticket, status = _ticket_id(edit.request), _wanted_status(edit.request)
    async with edit.runtime.ops.connection() as conn, conn.transaction():
        before = await tickets.move(conn, ticket, status, edit.actor, edit.now)
    message = f"finance ticket #{ticket} is {tickets.LABELS[status].lower()}"
    return Done(
        message, {"ticket": ticket, "from": before, "to": status}, f"/finance-tickets/{ticket}"
    )


async def propose_owner(request: Request) -> Proposal:
    row = await _current(request)
    offered = request.query_params.get("owner") or row["owner"] or ""
    held = f"owned by {row['owner']}" if row["owner"] else "unowned"
    return Proposal(
        f"Give finance ticket #{row['id']} ({held}) to a new owner.",
        (Input("owner", "Owner", offered[:200]),),
    )


async def apply_owner(edit: Edit) -> Done:
    ticket, owner = _ticket_id(edit.request), edit.values["owner"]
    async with edit.runtime.ops.connection() as conn, conn.transaction():
        before = await tickets.assign(conn, ticket, owner, edit.actor, edit.now)
    result = {"ticket": ticket, "from": before, "to": owner}
    return Done(
        f"finance ticket #{ticket} is owned by {owner}", result, f"/finance-tickets/{ticket}"
    )


STATUS_CHANGE = Change(
    "finance-ticket-status",
    "Change finance ticket status",
    "finance_ticket",
    _target,
    propose_status,
    apply_status,
)
OWNER_CHANGE = Change(
    "finance-ticket-owner",
    "Assign finance ticket",
    "finance_ticket",
    _target,
    propose_owner,
    apply_owner,
)
STATUS_PARAM = Param(
    "status",
    {"type": "string", "enum": list(tickets.STATUSES)},
    "the status to move to",
    required=True,
)
OWNER_PARAM = Param("owner", {"type": "string", "maxLength": 200}, "the owner to propose")


def _change_routes(change: Change, path: str, name: str, param: Param) -> list[RouteSpec]:
    run_errors = {404: "no such finance ticket", 409: "the ticket cannot make this change"}
    return change_routes(change, path, name, MANAGE, (ID, param), TAGS, run_errors=run_errors)


def routes() -> list[RouteSpec]:
    return [
        *list_routes(LIST),
        RouteSpec(
            "/api/v1/finance-tickets/{id}",
            "finance_ticket_detail",
            ticket_json,
            READ,
            "json",
            "Finance ticket: its origin, status, owner and history",
            params=(ID,),
            schema=TICKET_SCHEMA,
            tags=TAGS,
            errors={404: "no such finance ticket"},
        ),
        RouteSpec(
            "/finance-tickets/{id}",
            "finance_ticket_detail_page",
            ticket_page,
            READ,
            "html",
            "Finance ticket (page for people)",
            params=(ID,),
            tags=TAGS,
            errors={404: "no such finance ticket"},
        ),
        *_change_routes(
            STATUS_CHANGE, "/finance-tickets/{id}/status", "finance_ticket_status", STATUS_PARAM
        ),
        *_change_routes(
            OWNER_CHANGE, "/finance-tickets/{id}/owner", "finance_ticket_owner", OWNER_PARAM
        ),
    ]
