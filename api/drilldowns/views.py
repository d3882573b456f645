"""List, detail and export endpoints of every drilldown, and their route specs.

Each list view is served three ways from one query: JSON for programs
(``/api/v1/<name>``), HTML for people arriving from Grafana (``/<name>``) and a streamed
export (``/api/v1/<name>/export``, CSV or JSON). Every row goes through the PII masking step
before any of them sees it. Exports run on their own pools, within slots and a deadline
(:mod:`api.drilldowns.export_limits`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import nullcontext, suppress
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import anyio
import psycopg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.auth.principal import Principal
from api.display.cells import Cell, cells
from api.display.viewer import zone_of
from api.drilldowns import counts, range_control, render
from api.drilldowns.csv_encoding import CsvEncoder
from api.drilldowns.export_limits import DeadlineStreamingResponse, ExportSlots
from api.drilldowns.params import ListParams, choice, cursor_scope, grafana_params, parse_list
from api.drilldowns.plans import planned
from api.drilldowns.spec import (
    DetailView,
    ListView,
    Page,
    Planned,
    Section,
    Subject,
    record_schema,
)
from api.live.page import live_page
from api.pages import render as render_page
from api.pii import Masker, PiiKind, mask_rows
from api.problems import Problem
from api.queries import access as access_sql
from api.queries.listing import BOUNDARY, ID_KEY, SORT_KEY, PageRequest, as_text
from api.routing import Param, RouteSpec, audit_entry, principal_of, runtime_of
from api.runtime import Runtime
from core.audit import record

Grants = Mapping[str, frozenset[str]]
EXPORT_FORMATS = ("csv", "json")


async def grants_of(runtime: Runtime, principal: Principal) -> Grants:
    """The subjects this principal may see unmasked now (only while it may unmask)."""
    if not principal.can("pii.unmask"):
        return {}
    async with runtime.ops.connection() as conn:
        cursor = await conn.execute(access_sql.ACTIVE_GRANTS, {"actor": principal.name})
        found: dict[str, set[str]] = {}
        for subject_type, subject_id in await cursor.fetchall():
            found.setdefault(subject_type, set()).add(subject_id)
    return {k: frozenset(v) for k, v in found.items()}


def masker(
    runtime: Runtime,
    pii: Mapping[str, PiiKind],
    subject: Subject | None,
    names: Sequence[str],
    grants: Grants,
) -> Masker:
    unmasked = grants.get(subject.type, frozenset()) if subject else frozenset()
    return Masker(names, pii, subject.column if subject else None, unmasked, runtime.keys.pii)


def _pool(runtime: Runtime, view: ListView) -> Any:
    return runtime.platform if view.database == "platform" else runtime.ops


def _page_request(runtime: Runtime, view: ListView, params: ListParams) -> PageRequest:
    settled = view.settled(runtime.settings) if view.settled else {}
    return PageRequest(
        filters={**params.filters, **settled},
        sort=params.sort,
        descending=params.descending,
        after=params.after,
        limit=params.limit,
        scan_budget=runtime.api.scan_budget_rows,
    )


async def fetch_page(runtime: Runtime, view: ListView, params: ListParams) -> Page:
    request = _page_request(runtime, view, params)
    budget_ms = max(1, int(runtime.api.search_plan_budget_seconds * 1000))
    async with (
        _pool(runtime, view).connection() as conn,
        conn.transaction() if view.plan else nullcontext(),
    ):
        decided = await view.plan(conn, request, runtime.api) if view.plan else Planned([()])
        chosen = replace(request, filters={**request.filters, **decided.binds})
        query, args = view.query(chosen, export=False)
        names, rows = await planned(conn, decided.plans, budget_ms, query, args)
    boundary = None
    if BOUNDARY in names:
        flag = names.index(BOUNDARY)
        boundary = next((r for r in rows if r[flag]), None)
        rows = [r for r in rows if not r[flag]]
    keys = [names.index(SORT_KEY), names.index(ID_KEY)] if SORT_KEY in names else []
    if view.page_sql is not None:
        keys = [i for i, n in enumerate(names) if n.startswith("key_")]
    next_key, partial = None, False
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        next_key = [rows[-1][i] for i in keys]
    elif boundary is not None:
        next_key, partial = [boundary[i] for i in keys], True
    return Page(names, rows, next_key, partial)


def _query_for(params: ListParams, view: ListView, **extra: Any) -> dict[str, Any]:
    query: dict[str, Any] = {k: v for k, v in params.shown.items() if v is not None}
    query["from"], query["to"] = params.range.start_ms, params.range.end_ms
    if params.livemode is not None:
        query["livemode"] = params.livemode
    if params.sort != view.sorts[0] or params.order != "desc":
        query["sort"], query["order"] = params.sort, params.order
    query.update(extra)
    return query


def _paging(query: dict[str, Any], params: ListParams, runtime: Runtime) -> dict[str, Any]:
    """The list's query for its other pages: the page size too, when it is not the default."""
    if params.limit == runtime.api.page_size_default:
        return query
    return {**query, "limit": params.limit}


def _encode(query: Mapping[str, Any]) -> str:
    """A query string the same route reads back: booleans as ``true``/``false``."""

    def text(value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list | tuple):
            return [text(v) for v in value]
        return value

    return urlencode({k: text(v) for k, v in query.items() if v is not None}, doseq=True)


def next_cursor(runtime: Runtime, view: ListView, params: ListParams, page: Page) -> str | None:
    if page.next_key is None:
        return None
    return runtime.keys.encode_cursor(cursor_scope(view, params.sort, params.order), page.next_key)


def _mode(livemode: str | None) -> str | None:
    return {"true": "live", "false": "test", "all": "all"}.get(livemode or "")


async def _list_data(
    request: Request, view: ListView
) -> tuple[ListParams, Page, Masker, str | None]:
    runtime = runtime_of(request)
    params = parse_list(request, view, runtime)
    page = await fetch_page(runtime, view, params)
    mask = masker(
        runtime, view.pii, view.subject, page.names, await grants_of(runtime, principal_of(request))
    )
    rows = await mask_rows(mask, page.rows, runtime.api.pii_off_loop_chars)
    page = Page(page.names, rows, page.next_key, page.partial)
    return params, page, mask, next_cursor(runtime, view, params, page)


def list_json(view: ListView) -> Any:
    async def endpoint(request: Request) -> Response:
        params, page, _, cursor = await _list_data(request, view)
        body: dict[str, Any] = {
            "data": [render.record(view.fields, page.names, row) for row in page.rows],
            "next_cursor": cursor,
            "partial": page.partial,
            "range": {"from": params.range.start.isoformat(), "to": params.range.end.isoformat()},
            "sort": params.sort,
            "order": params.order,
            "mode": _mode(params.livemode),
        }
        return JSONResponse(body)

    return endpoint


async def count_matches(runtime: Runtime, view: ListView, params: ListParams) -> counts.Count:
    """How many rows the list's filters match, whatever page is shown."""
    async with _pool(runtime, view).connection() as conn:
        return await counts.count(conn, view, _page_request(runtime, view, params), runtime.api)


def list_html(view: ListView) -> Any:
    async def endpoint(request: Request) -> Response:
        live = await live_page(request, view)  # before the rows: its cursor precedes them
        params, page, _, cursor = await _list_data(request, view)
        principal = principal_of(request)
        query = _query_for(params, view)
        paging = _paging(query, params, runtime_of(request))
        zone = zone_of(request)
        matched = await count_matches(runtime_of(request), view, params)
        return render_page(
            request,
            "list.html",
            {
                "view": view,
                "params": params,
                "mode": _mode(params.livemode),
                "rows": [cells(view.fields, page.names, row, zone) for row in page.rows],
                "matches": matched.of(len(page.rows)),
                "matches_exact": matched.exact,
                "range": range_control.control(
                    params, view, zone, request.query_params.get("timezone")
                ),
                "partial": page.partial,
                "next_url": f"/{view.name}?{_encode({**paging, 'cursor': cursor})}"
                if cursor
                else None,
                "first_url": f"/{view.name}?{_encode(paging)}" if params.after else None,
                "export_url": (
                    f"/api/v1/{view.name}/export?{_encode(query)}"
                    if principal.can(view.export_permission)
                    else None
                ),
                "masked": bool(view.pii),
                "live": live,
                "keys": [live.key(page.names, row) for row in page.rows] if live else [],
            },
        )

    return endpoint


Chunks = AsyncGenerator[tuple[list[str], Sequence[Sequence[Any]]], None]


async def _export_chunks(
    runtime: Runtime, view: ListView, params: ListParams, grants: Grants, *, columns: bool
) -> Chunks:
    """Every row, masked, in batches: as rows, or (``columns``) as columns."""
    query, args = view.query(_page_request(runtime, view, params), export=True)
    if columns:  # CSV: every cell as PostgreSQL's text, times in UTC (csv_encoding)
        wanted = {f.name: f.type == "array" for f in view.fields}
        if view.subject is not None:
            wanted.setdefault(view.subject.column, False)
        query = as_text(query, list(wanted.items()))
    batch = runtime.api.export_batch_rows
    remaining = runtime.api.export_max_rows
    async with (
        runtime.exports.of(view.database).connection() as conn,
        conn.transaction(),
        conn.cursor(name="export") as cursor,
    ):
        cursor.itersize = batch
        # Every row will be read: plan for all of them (hash joins), not for the first few.
        await conn.execute("SET LOCAL cursor_tuple_fraction = 1")
        if columns:
            await conn.execute("SET LOCAL TimeZone = 'UTC'")
        await cursor.execute(query, args)
        names = [column.name for column in cursor.description or ()]
        mask = masker(runtime, view.pii, view.subject, names, grants)

        def masked(rows: list[Any]) -> Sequence[Sequence[Any]]:
            return mask.apply_to_columns(rows) if columns else [mask.apply(r) for r in rows]

        # The next batch is fetched while this one is masked (and encoded) in a worker
        # thread, so the database and Python work at the same time.
        pending = asyncio.ensure_future(cursor.fetchmany(min(batch, remaining)))
        try:
            while rows := await pending:
                remaining -= len(rows)
                if remaining > 0:
                    pending = asyncio.ensure_future(cursor.fetchmany(min(batch, remaining)))
                yield names, await anyio.to_thread.run_sync(masked, rows)
                if remaining <= 0:
                    break
        finally:
            if not pending.done():
                pending.cancel()
                with suppress(asyncio.CancelledError, psycopg.Error):
                    await pending


def export(view: ListView) -> Any:
    async def endpoint(request: Request) -> Response:
        runtime = runtime_of(request)
        principal = principal_of(request)
        params = parse_list(request, view, runtime, paged=False)
        fmt = choice(request, "format", EXPORT_FORMATS, "csv")
        release = await ExportSlots(runtime.redis, runtime.api).acquire(principal.name)
        try:
            return await _export_response(request, view, params, fmt, release)
        except BaseException:
            await release()
            raise

    return endpoint


async def _export_response(
    request: Request,
    view: ListView,
    params: ListParams,
    fmt: str,
    release: Callable[[], Awaitable[None]],
) -> Response:
    runtime = runtime_of(request)
    details = {"format": fmt, "query": _query_for(params, view)}
    await record(
        runtime.ops, audit_entry(request, "export", target_type=view.name, details=details)
    )
    grants = await grants_of(runtime, principal_of(request))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    headers = {"Content-Disposition": f'attachment; filename="{view.name}-{stamp}.{fmt}"'}
    chunks = _export_chunks(runtime, view, params, grants, columns=fmt == "csv")
    content = _json_body(view, chunks) if fmt == "json" else _csv_body(view, chunks)
    return DeadlineStreamingResponse(
        content,
        resources=(chunks,),
        deadline_seconds=runtime.api.export_deadline_seconds,
        release=release,
        media_type="application/json" if fmt == "json" else "text/csv; charset=utf-8",
        headers=headers,
    )


async def _json_body(view: ListView, chunks: Chunks) -> AsyncGenerator[bytes, None]:
    async def records() -> AsyncIterator[list[dict[str, Any]]]:
        async for names, rows in chunks:
            yield [render.record(view.fields, names, r) for r in rows]

    async for part in render.json_array(records()):
        yield part


async def _csv_body(view: ListView, chunks: Chunks) -> AsyncGenerator[bytes, None]:
    encoder = None
    async for names, batch in chunks:
        if encoder is None:
            encoder = CsvEncoder(view.fields, names)
            yield encoder.header
        yield await anyio.to_thread.run_sync(encoder.encode_columns, batch)
    if encoder is None:
        yield CsvEncoder(view.fields, [f.name for f in view.fields]).header


# -- detail pages ---------------------------------------------------------------------------


async def _detail_data(
    request: Request, view: DetailView
) -> tuple[dict[str, Any], dict[str, bool]]:
    runtime = runtime_of(request)
    key = view.key.parse([request.path_params[view.key.name]])
    loaded = await view.load(runtime, key)
    if loaded is None:
        raise Problem(404, f"no {view.title.lower()} {key}")
    grants = await grants_of(runtime, principal_of(request))
    sections: dict[str, Any] = {}
    masked: dict[str, bool] = {}
    for section in view.sections:
        names, rows = loaded[section.name]
        mask = masker(runtime, section.pii, section.subject, names, grants)
        kept = [(names, r) for r in await mask_rows(mask, rows, runtime.api.pii_off_loop_chars)]
        masked[section.name] = bool(section.pii) and not all(mask.is_unmasked(r) for r in rows)
        sections[section.name] = kept if section.many else (kept[0] if kept else None)
    return sections, masked


def detail_json(view: DetailView) -> Any:
    async def endpoint(request: Request) -> Response:
        sections, masked = await _detail_data(request, view)
        body: dict[str, Any] = {}
        for section in view.sections:
            value = sections[section.name]
            if section.many:
                body[section.name] = [render.record(section.fields, n, r) for n, r in value]
            else:
                body[section.name] = render.record(section.fields, *value) if value else None
        body["masked"] = any(masked.values())
        return JSONResponse(body)

    return endpoint


def _section_rows(section: Section, value: Any, request: Request) -> list[list[Cell]]:
    pairs = value if section.many else ([value] if value else [])
    zone = zone_of(request)
    return [cells(section.fields, names, row, zone) for names, row in pairs]


def detail_html(view: DetailView) -> Any:
    async def endpoint(request: Request) -> Response:
        sections, masked = await _detail_data(request, view)
        unmask = None
        if view.unmask and principal_of(request).can("pii.unmask"):
            subject_type, section_name, column = view.unmask
            value = sections[section_name]
            if value and masked.get(section_name):
                names, row = value
                unmask = {"subject_type": subject_type, "subject_id": str(row[names.index(column)])}
        shown = [
            {
                "section": s,
                "rows": _section_rows(s, sections[s.name], request),
                "masked": masked[s.name],
            }
            for s in view.sections
        ]
        mode = None
        if view.mode and sections[view.mode[0]]:
            names, row = sections[view.mode[0]]
            mode = "live" if row[names.index(view.mode[1])] else "test"
        return render_page(
            request,
            "detail.html",
            {
                "view": view,
                "sections": shown,
                "unmask": unmask,
                "next": str(request.url.path),
                "mode": mode,
            },
        )

    return endpoint


# -- route specs ----------------------------------------------------------------------------

COMMON_PARAMS = (
    Param("from", {"type": "string", "maxLength": 40}, "start: epoch ms, ISO 8601 or now-24h"),
    Param("to", {"type": "string", "maxLength": 40}, "end: epoch ms, ISO 8601 or now"),
    Param(
        "timezone",
        {"type": "string", "maxLength": 64},
        "IANA time zone of from/to written without an offset (default UTC)",
    ),
)


def list_params(view: ListView, *, paged: bool) -> tuple[Param, ...]:
    params = list(COMMON_PARAMS)
    params += [Param(f.name, f.schema(), f.description) for f in view.filters]
    if view.livemode:
        params.append(
            Param(
                "livemode",
                {"type": "string", "enum": ["true", "false", "all"]},
                "live (default), test, or both",
            )
        )
    params.append(Param("sort", {"type": "string", "enum": list(view.sorts)}))
    params.append(Param("order", {"type": "string", "enum": ["desc", "asc"]}))
    if paged:
        params.append(Param("limit", {"type": "integer", "minimum": 1, "maximum": 500}))
        params.append(
            Param(
                "cursor", {"type": "string", "maxLength": 1000}, "next_cursor of the previous page"
            )
        )
    else:
        params.append(Param("format", {"type": "string", "enum": list(EXPORT_FORMATS)}))
    return (*params, *grafana_params(view))


def page_schema(view: ListView) -> dict[str, Any]:
    nullable_text = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    return {
        "type": "object",
        "required": ["data", "next_cursor", "partial", "range", "sort", "order", "mode"],
        "properties": {
            "data": {"type": "array", "items": record_schema(view.fields)},
            "next_cursor": nullable_text,
            "partial": {"type": "boolean"},
            "range": {
                "type": "object",
                "required": ["from", "to"],
                "properties": {
                    "from": {"type": "string", "format": "date-time"},
                    "to": {"type": "string", "format": "date-time"},
                },
            },
            "sort": {"type": "string"},
            "order": {"type": "string"},
            "mode": {
                "anyOf": [{"type": "string", "enum": ["live", "test", "all"]}, {"type": "null"}]
            },
        },
    }


def list_routes(view: ListView) -> list[RouteSpec]:
    tags = (view.name,)
    return [
        RouteSpec(
            f"/api/v1/{view.name}",
            f"{view.name}_list",
            list_json(view),
            view.permission,
            "json",
            f"{view.title}: one page",
            params=list_params(view, paged=True),
            schema=page_schema(view),
            tags=tags,
        ),
        RouteSpec(
            f"/{view.name}",
            f"{view.name}_page",
            list_html(view),
            view.permission,
            "html",
            f"{view.title} (page for people)",
            params=list_params(view, paged=True),
            tags=tags,
        ),
        RouteSpec(
            f"/api/v1/{view.name}/export",
            f"{view.name}_export",
            export(view),
            view.export_permission,
            "csv",
            f"{view.title}: every row, streamed as CSV (or JSON)",
            params=list_params(view, paged=False),
            tags=tags,
            alternatives={
                "application/json": {"type": "array", "items": record_schema(view.fields)}
            },
        ),
    ]


def detail_schema(view: DetailView) -> dict[str, Any]:
    properties = {s.name: s.schema() for s in view.sections}
    properties["masked"] = {"type": "boolean"}
    return {"type": "object", "required": list(properties), "properties": properties}


def detail_routes(view: DetailView) -> list[RouteSpec]:
    key = Param(view.key.name, view.key.schema(), location="path", required=True)
    return [
        RouteSpec(
            f"/api/v1{view.path}",
            f"{view.name}_detail",
            detail_json(view),
            view.permission,
            "json",
            view.title,
            params=(key,),
            schema=detail_schema(view),
            tags=(view.name,),
        ),
        RouteSpec(
            view.path,
            f"{view.name}_detail_page",
            detail_html(view),
            view.permission,
            "html",
            f"{view.title} (page for people)",
            params=(key,),
            tags=(view.name,),
        ),
    ]
