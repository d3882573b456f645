"""One dashboard load as Grafana's browser makes it, timed.

A load resolves the dashboard's variables first (a query variable's request is part of
the load), then sends every drawn panel's request (annotations first, then panels in
layout order, :func:`dashboards.grafana_queries.board_queries`) with at most six in
flight, the browser's six connections to Grafana; the next panel starts as soon as any
one answers, so a slow panel holds one connection, not the others. A panel's queries go
out together, as Grafana's backend runs them in parallel, and the panel has answered when
its last query has. The load's time runs from its start until the last panel answered.

A query that fails or answers anything but success fails the load with
:class:`LoadFailed`, naming the panel and the query.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from dashboards.grafana_queries import PanelQueries, Query, board_queries
from dashboards.grafana_time import SCREEN_WIDTH, Datasource, Window
from dashboards.grafana_variables import (
    Selection,
    VariableRequest,
    select,
    static_selection,
    variable_options,
    variable_request,
)

BROWSER_CONNECTIONS = 6
GRAFANA_ROLE = "opsdeck_grafana"
POSTGRES_CONNECTIONS = 5  # the provisioned datasource's maxOpenConns
Clock = Callable[[], float]
T = TypeVar("T")


class QueryFailed(Exception):
    """A backend refused a query or answered something other than success."""


class LoadFailed(Exception):
    """A panel's query failed; the message names the panel, the query and why."""


@dataclass(frozen=True)
class QueryTime:
    query: Query
    seconds: float


@dataclass(frozen=True)
class PanelTime:
    """A panel's request: when it went out and when its last query answered, in seconds
    from the load's start."""

    name: str
    started: float
    finished: float
    queries: tuple[QueryTime, ...]

    @property
    def seconds(self) -> float:
        return self.finished - self.started


@dataclass(frozen=True)
class Load:
    seconds: float  # until the last panel answered
    variables_seconds: float
    panels: tuple[PanelTime, ...]


class Backends(Protocol):
    """Where a load's requests go: ``execute`` runs a panel's query, ``fetch`` a query
    variable's request (returning the answer's ``data``); both raise :class:`QueryFailed`."""

    async def execute(self, query: Query) -> None: ...

    async def fetch(self, request: VariableRequest) -> Any: ...


async def resolve_variables(
    board: Mapping[str, Any], window: Window, sources: Mapping[str, Datasource], backends: Backends
) -> list[Selection]:
    """Every variable's selection, in order (a later query may use an earlier value)."""
    selections: list[Selection] = []
    for variable in board.get("templating", {}).get("list", []):
        if variable["type"] != "query":
            selections.append(static_selection(variable, sources))
            continue
        request = variable_request(variable, window, selections)
        try:
            data = await backends.fetch(request)
        except QueryFailed as exc:
            raise LoadFailed(f"variable {variable['name']}: {exc}") from exc
        selections.append(select(variable, variable_options(variable, data)))
    return selections


async def run_panels(
    panels: Sequence[PanelQueries],
    execute: Callable[[Query], Awaitable[None]],
    origin: float,
    limit: int = BROWSER_CONNECTIONS,
    clock: Clock = time.perf_counter,
) -> list[PanelTime]:
    """Every panel's request, at most ``limit`` in flight, started in the given order."""
    connections = asyncio.Semaphore(limit)

    async def timed(panel: PanelQueries, query: Query) -> QueryTime:
        started = clock()
        try:
            await execute(query)
        except QueryFailed as exc:
            raise LoadFailed(f"{panel.name} query {query.ref}: {exc}\n  {query.text}") from exc
        return QueryTime(query, clock() - started)

    async def one(panel: PanelQueries) -> PanelTime:
        async with connections:
            started = clock() - origin
            queries = await _all([timed(panel, q) for q in panel.queries])
            return PanelTime(panel.name, started, clock() - origin, tuple(queries))

    return await _all([one(panel) for panel in panels])


async def _all(coroutines: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Run together; on the first failure cancel the rest and raise that failure."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coroutines]
    except ExceptionGroup as failed:
        first = failed.exceptions[0]
        while isinstance(first, ExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return [task.result() for task in tasks]


async def load(
    board: Mapping[str, Any],
    window: Window,
    sources: Mapping[str, Datasource],
    backends: Backends,
    screen_width: int = SCREEN_WIDTH,
    clock: Clock = time.perf_counter,
) -> Load:
    """One load of ``board`` over ``window``, timed as its viewer waits for it."""
    origin = clock()
    selections = await resolve_variables(board, window, sources, backends)
    variables = clock() - origin
    panels = board_queries(board, window, selections, sources, screen_width)
    times = await run_panels(panels, backends.execute, origin, clock=clock)
    last = max((p.finished for p in times), default=variables)
    return Load(last, variables, tuple(times))


# -- the real backends --------------------------------------------------------------------


def _data(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError as exc:
        raise QueryFailed(f"HTTP {response.status_code}: {response.text[:300]}") from exc
    if response.status_code != 200 or body.get("status") != "success":
        raise QueryFailed(f"HTTP {response.status_code}: {body.get('error') or body}")
    return body["data"]


class Grafana:
    """PromQL to a real Prometheus (POST, the datasource's ``httpMethod``) and SQL to a
    real PostgreSQL through a pool connected as Grafana's read-only role."""

    def __init__(self, http: httpx.AsyncClient, prometheus_url: str, pool: AsyncConnectionPool):
        self._http = http
        self._url = prometheus_url.rstrip("/")
        self._pool = pool

    async def execute(self, query: Query) -> None:
        if query.kind == "sql":
            await self._sql(query.text)
            return
        try:
            response = await self._http.post(self._url + query.path, data=query.params())
        except httpx.HTTPError as exc:
            raise QueryFailed(f"Prometheus: {exc!r}") from exc
        _data(response)

    async def fetch(self, request: VariableRequest) -> Any:
        try:
            response = await self._http.get(self._url + request.path, params=request.params)
        except httpx.HTTPError as exc:
            raise QueryFailed(f"Prometheus: {exc!r}") from exc
        return _data(response)

    async def _sql(self, text: str) -> None:
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(text)
                await cursor.fetchall()
        except psycopg.Error as exc:
            raise QueryFailed(f"PostgreSQL: {exc}") from exc


async def _as_grafana(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(GRAFANA_ROLE)))


@asynccontextmanager
async def grafana_pool(url: str) -> AsyncIterator[AsyncConnectionPool]:
    """Connections to ``url`` acting as Grafana's read-only role, as many as the
    provisioned datasource opens."""
    pool = AsyncConnectionPool(
        url,
        min_size=POSTGRES_CONNECTIONS,
        max_size=POSTGRES_CONNECTIONS,
        kwargs={"autocommit": True, "application_name": "bench-grafana"},
        configure=_as_grafana,
        open=False,
    )
    await pool.open(wait=True)
    try:
        yield pool
    finally:
        await pool.close()
