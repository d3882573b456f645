"""Calendar sync failures per calendar: the failed syncs of a time range grouped by
calendar, newest failure first, each with whether the calendar has synced since.

A page aggregates the range's failures (the partial index on failed syncs' start time
reads only those), then looks up each shown calendar's latest good sync by its own index.
"""

from __future__ import annotations

from typing import Any

from api.queries.listing import PageRequest

CONDITIONS = {
    "provider": "c.provider = ANY(%(provider)s)",
    "resource_id": "c.resource_id = %(resource_id)s",
    "calendar_id": "c.calendar_id = %(calendar_id)s",
}


def _failures(request: PageRequest, *, paged: bool) -> tuple[str, dict[str, Any]]:
    clauses = [
        "c.status = 'failed'",
        "c.started_at >= %(time_from)s",
        "c.started_at <= %(time_to)s",
        *(sql for name, sql in CONDITIONS.items() if name in request.filters),
    ]
    params: dict[str, Any] = dict(request.filters)
    direction = "DESC" if request.descending else "ASC"
    after = ""
    if request.after is not None:
        op = "<" if request.descending else ">"
        after = f"WHERE (g.last_failed_at, g.calendar_id) {op} (%(after_0)s, %(after_1)s) "
        params["after_0"], params["after_1"] = request.after[0], request.after[1]
    limit = ""
    if paged:
        limit = " LIMIT %(limit)s"
        params["limit"] = request.limit + 1
    grouped = (
        "SELECT c.calendar_id, count(*) AS failures, min(c.started_at) AS first_failed_at, "
        "max(c.started_at) AS last_failed_at, "
        "array_agg(DISTINCT c.provider ORDER BY c.provider) AS providers, "
        "max(c.resource_id) AS resource_id, "
        "(array_agg(c.error ORDER BY c.started_at DESC, c.id DESC))[1] AS last_error "
        f"FROM platform.calendar_syncs c WHERE {' AND '.join(clauses)} GROUP BY c.calendar_id"
    )
    page = (
        f"SELECT * FROM ({grouped}) g {after}"
        f"ORDER BY g.last_failed_at {direction}, g.calendar_id {direction}{limit}"
    )
    query = (
        "SELECT p.calendar_id, p.providers, p.resource_id, p.failures, p.first_failed_at, "
        "p.last_failed_at, p.last_error, ok.last_ok_at, "
        "coalesce(ok.last_ok_at > p.last_failed_at, false) AS recovered, "
        "(extract(epoch FROM %(time_from)s::timestamptz) * 1000)::bigint AS range_from, "
        "(extract(epoch FROM %(time_to)s::timestamptz) * 1000)::bigint AS range_to, "
        "p.last_failed_at AS key_0, p.calendar_id AS key_1 "
        f"FROM ({page}) p LEFT JOIN LATERAL (SELECT max(o.started_at) AS last_ok_at "
        "FROM platform.calendar_syncs o WHERE o.calendar_id = p.calendar_id "
        "AND o.status = 'ok') ok ON true "
        f"ORDER BY p.last_failed_at {direction}, p.calendar_id {direction}"
    )
    return query, params


def page(request: PageRequest) -> tuple[str, dict[str, Any]]:
    return _failures(request, paged=True)


def export(request: PageRequest) -> tuple[str, dict[str, Any]]:
    return _failures(request, paged=False)
