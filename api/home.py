"""The home page: what needs attention now, each item a count that links to its page
filtered to exactly the rows counted. Open incidents by severity, webhook dead letters not
yet reprocessed, disabled webhook endpoints, payout changes waiting for their second
person, and services whose newest health check is stale. A role sees only the items whose
page it may open (and nothing is counted for it otherwise)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from api.auth.principal import Principal
from api.drilldowns.service_checks import SERVICES
from api.incidents.actions.catalog import BY_NAME
from api.incidents.metrics import SEVERITIES
from api.pages import render
from api.queries import attention as sql
from api.routing import RouteSpec, principal_of, runtime_of
from api.runtime import Runtime
from api.status.queries import status as status_sql

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OPEN_STATUSES = ("triggered", "acknowledged")
PAYOUT_KINDS = ("suspend", "resume")


@dataclass(frozen=True)
class Item:
    key: str  # names the item in the page (data-attention)
    label: str
    count: int
    href: str
    detail: str = ""


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded down exactly (never up past the row)."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def link(path: str, pairs: Sequence[tuple[str, str]], oldest: datetime | None) -> str:
    """The page filtered by ``pairs``, its range from the oldest row counted to now (the
    page's own default range when nothing was counted)."""
    query = list(pairs)
    if oldest is not None:
        query += [("from", str(epoch_ms(oldest))), ("to", "now")]
    return f"{path}?{urlencode(query)}"


async def _incidents(runtime: Runtime) -> list[Item]:
    async with runtime.ops.connection() as conn:
        cursor = await conn.execute(sql.OPEN_INCIDENTS, {"statuses": list(OPEN_STATUSES)})
        found = {str(s): (int(n), oldest) for s, n, oldest in await cursor.fetchall()}
    items = []
    for severity in sorted({*SEVERITIES, *found}, key=_severity_order):
        count, oldest = found.get(severity, (0, None))
        pairs = [*(("status", s) for s in OPEN_STATUSES), ("severity", severity)]
        items.append(
            Item(
                f"incidents-{severity}",
                f"Open {severity} incidents",
                count,
                link("/incidents", pairs, oldest),
            )
        )
    return items


def _severity_order(severity: str) -> tuple[int, str]:
    known = SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)
    return known, severity


async def _one(runtime: Runtime, query: str) -> tuple[int, datetime | None]:
    async with runtime.ops.connection() as conn:
        row = await (await conn.execute(query)).fetchone()
    return (int(row[0]), row[1]) if row else (0, None)


async def _webhooks(runtime: Runtime) -> list[Item]:
    dead, dead_oldest = await _one(runtime, sql.OPEN_DEAD_LETTERS)
    disabled, disabled_oldest = await _one(runtime, sql.DISABLED_ENDPOINTS)
    return [
        Item(
            "dead-letters",
            "Webhook dead letters to reprocess",
            dead,
            link("/webhook-dead-letters", [("open", "true")], dead_oldest),
        ),
        Item(
            "disabled-endpoints",
            "Disabled webhook endpoints",
            disabled,
            link("/webhook-endpoints", [("enabled", "false")], disabled_oldest),
        ),
    ]


async def _payouts(runtime: Runtime, principal: Principal) -> list[Item]:
    ttl = {"ttl": runtime.settings.incidents.approval_ttl_seconds}
    async with runtime.ops.connection() as conn:
        rows = await (await conn.execute(sql.PENDING_PAYOUT_CHANGES, ttl)).fetchall()
    waiting = {str(kind): int(n) for kind, n in rows}
    return [
        Item(
            f"payouts-{kind}",
            f"{kind.capitalize()} payouts: awaiting a second person",
            waiting.get(kind, 0),
            f"/actions/{kind}-payouts",
        )
        for kind in PAYOUT_KINDS
        if principal.can(BY_NAME[f"{kind}-payouts"].permission)
    ]


async def _stale_checks(runtime: Runtime) -> list[Item]:
    """One item per service whose newest check is older than the staleness threshold (or
    that was never checked), linking to that check."""
    stale_seconds = runtime.settings.thresholds.service_check_stale_seconds
    params = {"services": list(SERVICES), "stale_seconds": stale_seconds}
    async with runtime.platform.connection() as conn:
        rows = await (await conn.execute(status_sql.LATEST_CHECKS, params)).fetchall()
    latest = {str(service): (at, bool(stale)) for service, _, at, stale in rows}
    items = []
    for service in SERVICES:
        at, stale = latest.get(service, (None, True))
        if stale:
            href = link("/service-checks", [("service", service)], at)
            detail = "never checked" if at is None else "newest check"
            items.append(Item(f"stale-{service}", service, 1, href, detail))
    return items


async def attention(runtime: Runtime, principal: Principal) -> list[tuple[str, list[Item]]]:
    """The items this principal may open, in groups: (heading, items)."""
    groups: list[tuple[str, list[Item]]] = []
    if principal.can("incidents.read"):
        groups.append(("Incidents", await _incidents(runtime)))
    if principal.can("webhooks.read"):
        groups.append(("Webhooks", await _webhooks(runtime)))
    payouts = await _payouts(runtime, principal)
    if payouts:
        groups.append(("Payout changes", payouts))
    if principal.can("operations.read"):
        groups.append(("Stale service checks", await _stale_checks(runtime)))
    return groups


async def home(request: Request) -> Response:
    groups = await attention(runtime_of(request), principal_of(request))
    context: dict[str, Any] = {"groups": groups, "stale_seconds": _stale_seconds(request)}
    return render(request, "index.html", context)


def _stale_seconds(request: Request) -> int:
    return int(runtime_of(request).settings.thresholds.service_check_stale_seconds)


ROUTES = (
    RouteSpec(
        "/",
        "home",
        home,
        "signed_in",
        "html",
        "What needs attention now, and the pages you may open",
        tags=("system",),
    ),
)
