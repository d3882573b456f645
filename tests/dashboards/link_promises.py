"""What a followed data link must show: the dashboards' links as Grafana renders them, and
the promise each keeps once followed (a list applies every filter it names, an action's
confirmation names its target, a record's page is that record)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from api.app import route_specs
from api.drilldowns.catalog import LIST_VIEWS
from dashboards.catalog import BOARDS
from dashboards.lint import panels
from tests.conftest import REPO

ROW_FIELD = re.compile(r"\$\{__data\.fields\.(\w+)\}")
LIST_NAMES = {v.name for v in LIST_VIEWS}
# Pages of one record: (path template, its key parameter), from the route table.
RECORD_PAGES = [
    (spec.path, param.name)
    for spec in route_specs()
    if spec.kind == "html" and spec.methods == ("GET",)
    for param in spec.params
    if param.location == "path"
]
# Query parameters of a list that are not filters of its rows.
NOT_FILTERS = {"from", "to", "sort", "order", "limit", "cursor", "orgId"}
MODES = {"true": "live", "false": "test", "all": "all"}
TARGETS = {"alertname", "incident", "booking", "transaction", "panel", "failure_code", "template"}


@dataclass(frozen=True)
class DataLink:
    board: str
    panel: Mapping[str, Any]
    title: str
    url: str  # as committed: ${api_url}, Grafana's macros and variables unexpanded

    @property
    def id(self) -> str:
        return f"{self.board}/{self.panel['title']}/{self.title}"

    @property
    def row_fields(self) -> list[str]:
        return ROW_FIELD.findall(self.url)


def data_links() -> list[DataLink]:
    found = []
    for board_def in BOARDS:
        board = json.loads((REPO / board_def.path).read_text(encoding="utf-8"))
        for panel in panels(board):
            for link in panel["fieldConfig"]["defaults"].get("links", []):
                found.append(DataLink(board["uid"], panel, link["title"], link["url"]))
    return found


def render(url: str, values: Mapping[str, str]) -> str:
    """``url`` with ``${name}``, ``${__data.fields.name}`` and ``$name`` replaced."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"no value for {match.group(0)} in {url}"
        return str(values[name])

    rendered = re.sub(r"\$\{(?:__data\.fields\.)?([\w.]+)\}|\$(\w+)", value, url)
    assert "$" not in rendered, rendered
    return rendered


def split(url: str) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(url)
    return parts.path, parse_qsl(parts.query, keep_blank_values=True)


def kind_of(path: str) -> str:
    if path.startswith("/actions/"):
        return "action"
    if path.lstrip("/") in LIST_NAMES:
        return "list"
    assert any(_record_match(path, template) for template, _ in RECORD_PAGES), path
    return "record"


def _record_match(path: str, template: str) -> dict[str, str] | None:
    pattern = re.sub(r"\\\{(\w+)(?::\w+)?\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    found = re.fullmatch(pattern, path)
    return found.groupdict() if found else None


def record_key(path: str) -> tuple[str, str]:
    """(key parameter, value) of a record page's path."""
    for template, key in RECORD_PAGES:
        found = _record_match(path, template)
        if found:
            return key, found[key]
    raise AssertionError(f"{path} is no record page")


def _row_keeps(name: str, value: str, row: Mapping[str, Any]) -> bool:
    if name == "livemode":
        return value == "all" or row["livemode"] == (value == "true")
    if name == "status_class":
        return str(row["status_code"])[0] == value[0]
    if name == "retried":
        return bool(row["attempt"] > 1) == (value == "true")
    assert name in row, f"the rows have no {name}: the test cannot check this filter"
    field = row[name]
    if isinstance(field, bool):
        return field == (value == "true")
    return str(field) == value


def list_broken(query: list[tuple[str, str]], body: Mapping[str, Any]) -> list[str]:
    """What a list page's JSON does not keep of the link's query: a filter some row does not
    meet, a sort it is not in, a time range it is not over."""
    broken = []
    rows = body["data"]
    for given_name, value in query:
        if given_name in NOT_FILTERS:
            continue
        name = given_name.removeprefix("var-")
        if name == "livemode" and rows and "livemode" not in rows[0]:  # an aggregate
            if body["mode"] != MODES[value]:
                broken.append(f"livemode={value} but the page's mode is {body['mode']}")
            continue
        broken += [f"{name}={value} but row {r}" for r in rows if not _row_keeps(name, value, r)]
    given = dict(query)
    if "sort" in given:
        keys = [r[given["sort"]] for r in rows]
        ordered = sorted(keys, reverse=given.get("order", "desc") == "desc")
        if keys != ordered:
            broken.append(f"not sorted by {given['sort']}: {keys[:10]}")
    for edge in ("from", "to"):
        if given.get(edge, "").isdigit():
            shown = datetime.fromisoformat(body["range"][edge]).timestamp() * 1000
            if abs(shown - int(given[edge])) > 1:
                broken.append(f"range {edge} {body['range'][edge]} is not {given[edge]}")
    return broken


def action_broken(query: list[tuple[str, str]], body: Mapping[str, Any]) -> list[str]:
    """The confirmation must name every target the link names."""
    target = body["target"]
    return [
        f"{name}={value} but the confirmation's target is {target}"
        for name, value in query
        if name in TARGETS and str(target.get(name)) != value
    ]


def record_broken(key: str, value: str, body: Mapping[str, Any]) -> list[str]:
    """A record's page shows that record: one of its sections is the record with that key."""
    sections = [s for s in body.values() if isinstance(s, dict)]
    if any(str(s.get(key)) == value for s in sections):
        return []
    return [f"no section of the page is {key}={value}: {list(body)}"]
