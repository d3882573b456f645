"""What a drilldown is made of: the fields it shows, the filters it takes, the sections of
its detail page. Parsing, rendering, masking and the OpenAPI document all read these."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from psycopg import AsyncConnection

from api.pii import PiiKind
from api.problems import invalid
from api.queries.listing import Listing, PageRequest, export_query, page_query
from api.runtime import Runtime
from core.settings import ApiSettings, Settings

FieldType = Literal["integer", "number", "string", "boolean", "date-time", "date", "array"]
FilterType = Literal["integer", "string", "boolean", "number"]
# How a page shows a value: as it is, as a badge (statuses, outcomes, severities), or a card
# brand by its name. JSON and CSV always carry the stored value.
Show = Literal["text", "badge", "card_brand"]
Database = Literal["platform", "ops"]
# Plans to try in order, each a list of SET LOCAL statements; all but the last run under
# ApiSettings.search_plan_budget_seconds.
Plans = Sequence[Sequence[str]]


@dataclass(frozen=True)
class Planned:
    """What a view's planner decided for one page: the ``plans`` to try, and ``binds``,
    values it chose for parameters of the page query (they replace the filters' own)."""

    plans: Plans
    binds: Mapping[str, Any] = field(default_factory=dict)


Planner = Callable[[AsyncConnection[Any], PageRequest, ApiSettings], Awaitable[Planned]]
TEXT_RE = re.compile(r"^[\x20-\x7e]*$")
MAX_INT = 2**63 - 1


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: FieldType = "string"
    nullable: bool = False
    pii: PiiKind | None = None
    link: str | None = None  # a page to link the value to, e.g. "/payments/{id}"
    # An amount in minor units: the column holding its ISO 4217 code (pages show €169.28).
    currency: str | None = None
    show: Show = "text"

    def schema(self) -> dict[str, Any]:
        if self.type == "date-time":
            schema: dict[str, Any] = {"type": "string", "format": "date-time"}
        elif self.type == "date":
            schema = {"type": "string", "format": "date"}
        elif self.type == "array":
            schema = {"type": "array", "items": {"type": "string"}}
        else:
            schema = {"type": self.type}
        if self.pii is not None:
            schema = {"type": "string"}  # masked values are text whatever the column is
        if self.nullable:
            schema = {"anyOf": [schema, {"type": "null"}]}
        return schema


def record_schema(fields: Sequence[Field]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [f.name for f in fields],
        "properties": {f.name: f.schema() for f in fields},
    }


@dataclass(frozen=True)
class Filter:
    """A query parameter that narrows a listing; its value is bound to the listing's SQL
    condition of the same name."""

    name: str
    description: str
    type: FilterType = "string"
    choices: tuple[str, ...] = ()
    multiple: bool = False
    max_length: int = 200
    minimum: int | None = None
    # More parameters the condition binds, derived from the value (search patterns).
    derive: Callable[[Any], Mapping[str, Any]] | None = None

    def _one(self, raw: str) -> Any:
        if self.choices:
            if raw not in self.choices:
                raise invalid(self.name, f"one of {', '.join(self.choices)}")
            return raw
        if self.type == "integer":
            if not re.fullmatch(r"-?\d{1,19}", raw) or abs(int(raw)) > MAX_INT:
                raise invalid(self.name, "an integer")
            value = int(raw)
            if self.minimum is not None and value < self.minimum:
                raise invalid(self.name, f"at least {self.minimum}")
            return value
        if self.type == "boolean":
            if raw not in ("true", "false"):
                raise invalid(self.name, "true or false")
            return raw == "true"
        if len(raw) > self.max_length or not TEXT_RE.match(raw):
            raise invalid(self.name, f"printable text of at most {self.max_length} characters")
        return raw

    def parse(self, values: Sequence[str]) -> Any:
        values = [v for v in values if v != ""]
        if not values:
            return None
        if self.multiple:
            return sorted({self._one(part) for v in values for part in v.split(",") if part})
        if len(values) > 1:
            raise invalid(self.name, "given more than once")
        return self._one(values[0])

    def schema(self) -> dict[str, Any]:
        one: dict[str, Any] = {"type": self.type}
        if self.choices:
            one = {"type": "string", "enum": list(self.choices)}
        elif self.type == "string":
            one["maxLength"] = self.max_length
        elif self.type == "integer" and self.minimum is not None:
            one["minimum"] = self.minimum
        return {"type": "array", "items": one} if self.multiple else one


@dataclass(frozen=True)
class Subject:
    """Whose PII a row shows: a grant for (type, the row's value of ``column``) unmasks it."""

    type: str
    column: str


@dataclass(frozen=True)
class Page:
    names: list[str]
    rows: list[list[Any]]
    next_key: list[Any] | None
    partial: bool  # the page ends where a bounded scan did, before it filled up


@dataclass(frozen=True)
class Adds:
    """A link from a list's page to the page that adds one more (``label``, ``href``), shown
    to those holding ``permission``."""

    label: str
    href: str
    permission: str


@dataclass(frozen=True)
class ListView:
    name: str  # the URL segment: /<name>, /api/v1/<name>
    title: str
    permission: str
    export_permission: str
    fields: tuple[Field, ...]
    filters: tuple[Filter, ...]
    sorts: tuple[str, ...]  # the first is the default
    listing: Listing | None = None
    database: Database = "platform"
    default_from: str = "now-24h"
    default_to: str = "now"
    livemode: bool = False
    subject: Subject | None = None
    time_label: str = "created"
    description: str = ""
    # A listing that is not a plain keyset listing (the usage report) builds its own SQL.
    page_sql: Callable[[PageRequest], tuple[str, dict[str, Any]]] | None = None
    export_sql: Callable[[PageRequest], tuple[str, dict[str, Any]]] | None = None
    key_types: tuple[FieldType, ...] = ("date-time", "integer")
    # How a page query is planned, decided per request (search): SET LOCAL settings, and
    # parameter values the planner chose.
    plan: Planner | None = None
    # Conditions every page and export applies, bound from the settings (a threshold) and
    # never from the request: listing condition name -> value.
    settled: Callable[[Settings], Mapping[str, Any]] | None = None
    # The page that adds a record to the list, for those who may.
    adds: Adds | None = None

    @property
    def pii(self) -> Mapping[str, PiiKind]:
        return {f.name: f.pii for f in self.fields if f.pii is not None}

    def query(self, request: PageRequest, *, export: bool) -> tuple[str, dict[str, Any]]:
        """The SQL of one page, or of every row for an export."""
        own = self.export_sql if export else self.page_sql
        if own is not None:
            return own(request)
        assert self.listing is not None
        return (export_query if export else page_query)(self.listing, request)


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    fields: tuple[Field, ...]
    many: bool = False
    subject: Subject | None = None

    @property
    def pii(self) -> Mapping[str, PiiKind]:
        return {f.name: f.pii for f in self.fields if f.pii is not None}

    def schema(self) -> dict[str, Any]:
        record = record_schema(self.fields)
        if self.many:
            return {"type": "array", "items": record}
        return {"anyOf": [record, {"type": "null"}]}


Rows = tuple[list[str], list[tuple[Any, ...]]]
Loader = Callable[[Runtime, Any], Awaitable[Mapping[str, Rows] | None]]


@dataclass(frozen=True)
class DetailView:
    name: str  # the route name; the page is at <path>, the JSON at /api/v1<path>
    title: str
    permission: str
    path: str  # e.g. "/payments/{id}"
    key: Filter  # the path parameter
    sections: tuple[Section, ...]
    load: Loader  # None when the record does not exist
    unmask: tuple[str, str, str] | None = None  # (subject type, section, column)
    mode: tuple[str, str] | None = None  # (section, livemode column): shown as a banner
    description: str = ""
