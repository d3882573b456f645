"""API logs (seeds 000, 001): filter by status, method, route or path prefix, time, key,
account, request id; full-text search over request id, bodies and error message; the
detail shows the stack trace, truncated bodies and user context, with a timeline of the
account's requests around it. Bodies and messages are scrubbed of PII like every field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from psycopg import AsyncConnection

from api.drilldowns.spec import (
    DetailView,
    Field,
    Filter,
    ListView,
    Planned,
    Rows,
    Section,
    Subject,
)
from api.pii import PiiKind
from api.queries import api_logs as sql
from api.queries.listing import PageRequest
from api.runtime import Runtime
from core.settings import ApiSettings

REQUEST = Subject("api_log", "request_id")
LEXEME = re.compile(r"'(?:[^']|'')*'")  # as tsquery prints it, quotes doubled
MAX_LEXEMES = 4


async def _estimate(conn: AsyncConnection[Any], query: str, params: Mapping[str, Any]) -> float:
    row = await (await conn.execute(query, params)).fetchone()
    return float(row[0][0]["Plan"]["Plan Rows"]) if row else 0.0


async def _required(conn: AsyncConnection[Any], q: str) -> list[str]:
    """The lexemes every match of ``q`` holds, quoted as to_tsquery reads them: those of the
    part an index can answer, unless that part holds an OR."""
    row = await (await conn.execute(sql.INDEXABLE, {"q": q})).fetchone()
    tree = str(row[0]) if row else ""
    return [] if "|" in tree else list(dict.fromkeys(LEXEME.findall(tree)))[:MAX_LEXEMES]


async def _rarest(
    conn: AsyncConnection[Any], query: str, filters: Mapping[str, Any], probes: list[str]
) -> tuple[float, str | None]:
    """The planner's estimate of the rows holding the rarest of ``probes``, and that probe;
    without probes, of the rows matching the whole query."""
    if not probes:
        return max(1.0, await _estimate(conn, query, {**filters, "q_probe": None})), None
    counts = [(await _estimate(conn, query, {**filters, "q_probe": p}), p) for p in probes]
    count, probe = min(counts)
    return max(1.0, count), probe


async def search_plan(
    conn: AsyncConnection[Any], request: PageRequest, settings: ApiSettings
) -> Planned:
    """How a search page is read: walking the range newest first, or collecting the
    matches from the GIN index; the first plan gets a time budget, the other follows. The
    index is asked for the rarest lexeme every match holds (``q_probe``), and each
    candidate's stored document is checked against the whole query.

    The planner multiplies the frequencies of words that occur together and cannot tell a
    word common today from one common a month ago, so the choice is made here. Walking to
    a page's end costs about R x limit / M rows, M the matches inside the range (bounded by
    the rarest lexeme's estimate). Collecting costs a row fetch per match, and the index
    knows no time: it hands over the matches of every day, the range is checked on each. A
    word common over 30 days but rare today is cheap to walk to and dear to collect; the
    planner's estimate for a word it has no statistics for, though, grows with the table.
    So the index goes first only when both the matches in the range and those at any time
    say so."""
    filters = request.filters
    if "q" not in filters:
        return Planned([()])
    probes = await _required(conn, str(filters["q"]))
    in_range, _ = await _rarest(conn, sql.SEARCH_ESTIMATE, filters, probes)
    walked = await _estimate(conn, sql.RANGE_ESTIMATE, filters) * (request.limit + 1) / in_range
    collected, probe = await _rarest(conn, sql.SEARCH_ESTIMATE_ALL_TIME, filters, probes)
    binds = {"q_probe": probe}
    cost = settings.search_index_row_cost
    if in_range * cost < walked and collected * cost < walked:
        return Planned([sql.FROM_THE_INDEX, sql.ALONG_THE_TIME], binds)
    return Planned([sql.ALONG_THE_TIME, sql.FROM_THE_INDEX], binds)


def search_binds(query: str) -> dict[str, Any]:
    """What a search binds beside the query: no probe (the index is asked for the whole
    query) until a page's plan chooses one."""
    return {"q_probe": None}


METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

LOG_FIELDS = (
    Field("id", "Id", "integer"),
    Field("request_id", "Request id", link="/api-logs/{request_id}"),
    Field("started_at", "Started", "date-time"),
    Field("method", "Method"),
    Field("path", "Path", pii=PiiKind.TEXT),
    Field("route", "Route"),
    Field("status_code", "Status", "integer"),
    Field("duration_ms", "ms", "number"),
    Field("api_key_id", "API key", nullable=True),
    Field("account_id", "Account", nullable=True, link="/accounts/{account_id}/timeline"),
    Field("ip_address", "IP address", nullable=True, pii=PiiKind.IP),
    Field("livemode", "Live", "boolean"),
    Field("api_version", "API version", nullable=True),
    Field("error_type", "Error type", nullable=True),
    Field("error_message", "Error message", nullable=True, pii=PiiKind.TEXT),
)

API_LOGS = ListView(
    name="api-logs",
    title="API logs",
    permission="api_logs.read",
    export_permission="api_logs.export",
    listing=sql.API_LOGS,
    fields=LOG_FIELDS,
    filters=(
        Filter("status", "status code (repeatable)", "integer", multiple=True, minimum=100),
        Filter("status_class", "2xx, 4xx, 5xx ...", choices=("1xx", "2xx", "3xx", "4xx", "5xx")),
        Filter("method", "HTTP method", choices=METHODS),
        Filter("route", "route template, e.g. /v1/bookings/{id}", max_length=200),
        Filter("path_prefix", "raw path prefix, e.g. /v1/bookings/bk_12", max_length=200),
        Filter("api_key_id", "API key id", max_length=100),
        Filter("account_id", "account id", max_length=100),
        Filter("request_id", "request id", max_length=100),
        Filter("idempotency_key", "idempotency key", max_length=255),
        Filter("error_type", "error type, e.g. api_error", max_length=60),
        Filter("min_duration_ms", "slower than this many ms", "integer", minimum=0),
        Filter(
            "q",
            'full text: request id, bodies, error message ("quoted phrases", -not)',
            max_length=200,
            derive=search_binds,
        ),
    ),
    sorts=("started_at", "duration_ms", "id"),
    livemode=True,
    subject=REQUEST,
    time_label="started",
    plan=search_plan,
)

TIMELINE_FIELDS = (
    Field("request_id", "Request", link="/api-logs/{request_id}"),
    Field("started_at", "Started", "date-time"),
    Field("method", "Method"),
    Field("path", "Path", pii=PiiKind.TEXT),
    Field("status_code", "Status", "integer"),
    Field("duration_ms", "ms", "number"),
    Field("error_type", "Error type", nullable=True),
    Field("idempotency_key", "Idempotency key", nullable=True),
)


async def load_request(runtime: Runtime, request_id: str) -> Mapping[str, Rows] | None:
    api = runtime.api
    async with runtime.platform.connection() as conn:
        cursor = await conn.execute(
            sql.REQUEST, {"request_id": request_id, "preview": api.body_preview_bytes}
        )
        row = await cursor.fetchone()
        if row is None:
            return None
        names = [c.name for c in cursor.description or ()]
        record = dict(zip(names, row, strict=True))
        around = await conn.execute(
            sql.AROUND,
            {
                "account_id": record["account_id"],
                "at": record["started_at"],
                "window": api.timeline_window_seconds,
                "idempotency_key": record["idempotency_key"],
                "limit": api.timeline_max_events,
            },
        )
        around_names = [c.name for c in around.description or ()]
        return {"request": (names, [row]), "timeline": (around_names, await around.fetchall())}


API_LOG_DETAIL = DetailView(
    name="api_log",
    title="API request",
    permission="api_logs.read",
    path="/api-logs/{request_id}",
    key=Filter("request_id", "request id", max_length=100),
    sections=(
        Section(
            "request",
            "Request",
            (
                *LOG_FIELDS,
                Field("idempotency_key", "Idempotency key", nullable=True),
                Field("user_id", "User", nullable=True, pii=PiiKind.IDENTIFIER),
                Field("stack_trace", "Stack trace", nullable=True, pii=PiiKind.TEXT),
                Field("request_body", "Request body", nullable=True, pii=PiiKind.TEXT),
                Field("request_body_truncated", "Request body truncated", "boolean"),
                Field("response_body", "Response body", nullable=True, pii=PiiKind.TEXT),
                Field("response_body_truncated", "Response body truncated", "boolean"),
            ),
            subject=REQUEST,
        ),
        Section(
            "timeline",
            "Timeline: the account's requests around it, and retries with its idempotency key",
            TIMELINE_FIELDS,
            many=True,
        ),
    ),
    load=load_request,
    unmask=("api_log", "request", "request_id"),
    mode=("request", "livemode"),
)


async def load_account(runtime: Runtime, account_id: str) -> Mapping[str, Rows] | None:
    async with runtime.platform.connection() as conn:
        cursor = await conn.execute(
            sql.ACCOUNT_TIMELINE,
            {"account_id": account_id, "limit": runtime.api.timeline_max_events},
        )
        rows = await cursor.fetchall()
        names = [c.name for c in cursor.description or ()]
    if not rows:
        return None
    return {"timeline": (names, rows)}


ACCOUNT_TIMELINE = DetailView(
    name="account_timeline",
    title="Account timeline",
    permission="api_logs.read",
    path="/accounts/{account_id}/timeline",
    key=Filter("account_id", "account id", max_length=100),
    sections=(
        Section(
            "timeline", "The account's latest requests, oldest first", TIMELINE_FIELDS, many=True
        ),
    ),
    load=load_account,
)
