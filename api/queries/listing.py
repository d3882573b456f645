"""Keyset pages over a listing: ``ORDER BY key, id`` and ``WHERE (key, id) < cursor``.

A page never skips or repeats a row while rows are inserted: the cursor is a position in
a total order of immutable columns, not an offset. Filters are constant SQL fragments with
named parameters. A filter no index can answer (``post_conditions``) is applied to a
bounded scan of the listing instead, so a page costs at most ``scan_budget`` rows; a short
page then ends at the scan's last row and its cursor carries on from there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

SORT_KEY = "sort_key_"
ID_KEY = "id_key_"
BOUNDARY = "boundary_"


@dataclass(frozen=True)
class Listing:
    columns: str  # the select list
    source: str  # FROM ... JOIN ...
    id_column: str
    time_column: str  # what from/to (time_from, time_to) bound
    sorts: Mapping[str, str]  # public sort name -> immutable, non-null column
    conditions: Mapping[str, str]  # filter name -> SQL with %(name)s
    post_conditions: Mapping[str, str] = field(default_factory=dict)  # over output columns
    # Sorting by another time column moves the range onto it (bookings by start time).
    time_columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PageRequest:
    filters: Mapping[str, Any]  # filter name -> bound value, only the filters given
    sort: str
    descending: bool
    after: Sequence[Any] | None  # (sort value, id) of the previous page's last row
    limit: int
    scan_budget: int


def _order(sort: str, id_column: str, descending: bool) -> str:
    direction = "DESC" if descending else "ASC"
    if sort == id_column:
        return f"{id_column} {direction}"
    return f"{sort} {direction}, {id_column} {direction}"


def _where(listing: Listing, request: PageRequest) -> tuple[str, dict[str, Any]]:
    sort = listing.sorts[request.sort]
    time_column = listing.time_columns.get(request.sort, listing.time_column)
    conditions = {
        "time_from": f"{time_column} >= %(time_from)s",
        "time_to": f"{time_column} <= %(time_to)s",
        **listing.conditions,
    }
    clauses = [conditions[name] for name in request.filters if name in conditions]
    params: dict[str, Any] = dict(request.filters)
    if request.after is not None:
        op = "<" if request.descending else ">"
        if sort == listing.id_column:
            clauses.append(f"{listing.id_column} {op} %(after_id)s")
        else:
            clauses.append(f"({sort}, {listing.id_column}) {op} (%(after_sort)s, %(after_id)s)")
            params["after_sort"] = request.after[0]
        params["after_id"] = request.after[-1]
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _selected(
    listing: Listing, request: PageRequest, *, keys: bool = True
) -> tuple[str, dict[str, Any]]:
    sort = listing.sorts[request.sort]
    where, params = _where(listing, request)
    order = _order(sort, listing.id_column, request.descending)
    key_columns = f", {sort} AS {SORT_KEY}, {listing.id_column} AS {ID_KEY}" if keys else ""
    query = f"SELECT {listing.columns}{key_columns} FROM {listing.source}{where} ORDER BY {order}"
    return query, params


def _post(listing: Listing, request: PageRequest) -> list[str]:
    return [listing.post_conditions[n] for n in request.filters if n in listing.post_conditions]


def page_query(listing: Listing, request: PageRequest) -> tuple[str, dict[str, Any]]:
    """One page plus one row (to know whether there is a next page). With a post filter the
    result also carries, flagged ``boundary_``, the last row of an exhausted scan."""
    selected, params = _selected(listing, request)
    params["limit"] = request.limit + 1
    post = _post(listing, request)
    if not post:
        return f"{selected} LIMIT %(limit)s", params
    params["scan_budget"] = request.scan_budget
    order = _order(SORT_KEY, ID_KEY, request.descending)
    backwards = _order(SORT_KEY, ID_KEY, not request.descending)
    query = (
        f"WITH scanned AS MATERIALIZED ({selected} LIMIT %(scan_budget)s), "
        f"page AS (SELECT * FROM scanned WHERE {' AND '.join(post)} ORDER BY {order} "
        "LIMIT %(limit)s), "
        f"last AS (SELECT * FROM scanned ORDER BY {backwards} LIMIT 1) "
        f"SELECT * FROM (SELECT *, false AS {BOUNDARY} FROM page UNION ALL "
        f"SELECT *, true FROM last WHERE (SELECT count(*) FROM scanned) = %(scan_budget)s) r "
        f"ORDER BY {BOUNDARY}, {order}"
    )
    return query, params


def as_text(query: str, columns: Sequence[tuple[str, bool]]) -> str:
    """The query's named columns as PostgreSQL's own text: a CSV export formats in the
    database, on its own core, instead of building Python objects to print them again.
    (name, is_array): arrays become comma-separated. The projection keeps the rows' order."""
    cells = [
        f"array_to_string(e.\"{name}\", ',')" if is_array else f'e."{name}"::text'
        for name, is_array in columns
    ]
    aliased = ", ".join(
        f'{cell} AS "{name}"' for cell, (name, _) in zip(cells, columns, strict=True)
    )
    return f"SELECT {aliased} FROM ({query}) e"


def export_query(listing: Listing, request: PageRequest) -> tuple[str, dict[str, Any]]:
    """Every row of the listing under the filters, in page order (no limit); without the
    key columns pages need, unless a post filter orders by them."""
    post = _post(listing, request)
    selected, params = _selected(listing, request, keys=bool(post))
    if not post:
        return selected, params
    order = _order(SORT_KEY, ID_KEY, request.descending)
    return f"SELECT * FROM ({selected}) r WHERE {' AND '.join(post)} ORDER BY {order}", params


def matching_query(listing: Listing, request: PageRequest) -> tuple[str, dict[str, Any]]:
    """Every row under the request's filters, in no order and from the first page on: what
    a count of the matches counts. Without a post filter it selects nothing but the rows'
    existence, so an index can answer alone."""
    where, params = _where(listing, replace(request, after=None))
    post = _post(listing, request)
    if not post:
        return f"SELECT 1 FROM {listing.source}{where}", params
    selected = f"SELECT {listing.columns} FROM {listing.source}{where}"
    return f"SELECT 1 FROM ({selected}) r WHERE {' AND '.join(post)}", params
