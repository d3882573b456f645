"""A list request's parameters: filters, Grafana's time range, test/live mode, sort, page.

Grafana data links may name a filter ``var-<name>`` (dashboard variables) and pass ``$__all``
for "everything"; both are understood, and declared (:func:`grafana_params`) so the route
table accepts them. Anything malformed is a 400 naming the parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request

from api.display import moments
from api.drilldowns.spec import FieldType, ListView
from api.problems import invalid
from api.routing import Param
from api.runtime import Runtime
from api.timerange import TimeRange, parse_range

GRAFANA_ALL = "$__all"
LIVEMODES = ("true", "false", "all")
ORDERS = ("desc", "asc")


ORG_ID = Param("orgId", {"type": "integer", "minimum": 1}, "Grafana's organisation (ignored)")


def _with_all(schema: dict[str, Any]) -> dict[str, Any]:
    """A filter's schema as a dashboard variable: ``$__all`` is one more value."""
    if schema.get("type") == "array":
        return {**schema, "items": _with_all(dict(schema["items"]))}
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], GRAFANA_ALL]}
    return schema


def grafana_params(view: ListView) -> tuple[Param, ...]:
    """The parameters a Grafana link adds to a listing's own: the organisation, and each
    filter (and the mode) as the dashboard variable ``var-<name>``; a multi-value mode
    variable sends ``true,false``."""
    params = [ORG_ID]
    for f in view.filters:
        params.append(Param(f"var-{f.name}", _with_all(f.schema()), f"{f.name}, as a variable"))
    if view.livemode:
        mode = {"type": "array", "items": {"type": "string", "enum": [*LIVEMODES, GRAFANA_ALL]}}
        params.append(Param("var-livemode", mode, "livemode, as a (multi-value) variable"))
    return tuple(params)


def values(request: Request, name: str) -> list[str]:
    found = request.query_params.getlist(name) or request.query_params.getlist(f"var-{name}")
    return [v for v in found if v != GRAFANA_ALL]


def single(request: Request, name: str) -> str | None:
    found = values(request, name)
    if len(found) > 1:
        raise invalid(name, "given more than once")
    return found[0] if found else None


def choice(request: Request, name: str, choices: tuple[str, ...], default: str) -> str:
    value = single(request, name) or default
    if value not in choices:
        raise invalid(name, f"one of {', '.join(choices)}")
    return value


@dataclass(frozen=True)
class ListParams:
    filters: dict[str, Any]  # SQL condition name -> bound value
    shown: dict[str, Any]  # the view's own filters as given, for forms and links
    range: TimeRange
    livemode: str | None  # "true", "false" or "all"; None where the view has no mode
    sort: str
    descending: bool
    limit: int
    after: list[Any] | None
    raw_from: str = ""  # the range as written (now-1h, epoch ms, ISO), for the range control
    raw_to: str = ""

    @property
    def order(self) -> str:
        return "desc" if self.descending else "asc"


def _key_value(value: Any, kind: FieldType) -> Any:
    if kind == "date-time" and isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("naive time")
        return moment
    if kind == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if kind == "string" and isinstance(value, str):
        return value
    raise ValueError(f"expected {kind}")


def cursor_scope(view: ListView, sort: str, order: str) -> str:
    return f"{view.name}:{sort}:{order}"


def _limit(request: Request, runtime: Runtime) -> int:
    raw = single(request, "limit")
    if raw is None:
        return runtime.api.page_size_default
    if not re.fullmatch(r"\d{1,4}", raw) or not 1 <= int(raw) <= runtime.api.page_size_max:
        raise invalid("limit", f"an integer from 1 to {runtime.api.page_size_max}")
    return int(raw)


def time_zone(request: Request) -> tzinfo:
    """The zone of ``from``/``to`` values written without an offset (``timezone``, an IANA
    name as Grafana's URLs carry it; ``utc`` too); UTC when not given."""
    name = single(request, "timezone")
    if name is None or name.lower() == "utc":
        return UTC
    if not moments.known(name):
        raise invalid(
            "timezone", f"unknown time zone {name[:60]!r}: an IANA name like Europe/Berlin"
        )
    return ZoneInfo(name)


def key_types(view: ListView, sort: str) -> tuple[FieldType, ...]:
    if view.page_sql is not None:
        return view.key_types
    sort_field = next((f for f in view.fields if f.name == sort), None)
    return (sort_field.type if sort_field else "integer", "integer")


def parse_list(
    request: Request, view: ListView, runtime: Runtime, *, paged: bool = True
) -> ListParams:
    shown = {f.name: f.parse(values(request, f.name)) for f in view.filters}
    filters = {name: value for name, value in shown.items() if value is not None}
    for f in view.filters:
        if f.derive is not None and f.name in filters:
            filters.update(f.derive(filters[f.name]))
    raw_from = single(request, "from") or view.default_from
    raw_to = single(request, "to") or view.default_to
    window = parse_range(
        raw_from, raw_to, view.default_from, view.default_to, zone=time_zone(request)
    )
    filters["time_from"], filters["time_to"] = window.start, window.end
    livemode = None
    if view.livemode:
        given = sorted(set(",".join(values(request, "livemode")).split(",")) - {""})
        if given == ["false", "true"]:  # a Grafana multi-value variable with both selected
            given = ["all"]
        if len(given) > 1 or (given and given[0] not in LIVEMODES):
            raise invalid("livemode", f"one of {', '.join(LIVEMODES)}")
        livemode = given[0] if given else "true"
        if livemode != "all":
            filters["livemode"] = livemode == "true"
    sort = choice(request, "sort", view.sorts, view.sorts[0])
    order = choice(request, "order", ORDERS, "desc")
    after = None
    token = single(request, "cursor") if paged else None
    if token:
        raw = runtime.keys.decode_cursor(cursor_scope(view, sort, order), token)
        kinds = key_types(view, sort)
        if len(raw) != len(kinds):
            raise invalid("cursor", "malformed")
        try:
            after = [_key_value(v, k) for v, k in zip(raw, kinds, strict=True)]
        except ValueError:
            raise invalid("cursor", "malformed") from None
    return ListParams(
        filters=filters,
        shown=shown,
        range=window,
        livemode=livemode,
        sort=sort,
        descending=order == "desc",
        limit=_limit(request, runtime) if paged else 0,
        after=after,
        raw_from=raw_from,
        raw_to=raw_to,
    )
