"""Dashboard variables as Grafana resolves them on load, and their formatting per datasource.

Datasource variables resolve to the provisioned datasource of their type (the saved one
when it exists), constants and custom variables to their saved value (the first option
when the saved one is gone), query variables to a request to the Prometheus API
(:func:`variable_request`, over the dashboard's range, earlier variables interpolated) whose
answer the caller feeds back (:func:`variable_options`, then :func:`select`). Values are
formatted as each datasource interpolates them: in PromQL regex-escaped and ``(a|b)``-joined
when the variable is multi-valued or has an All option, in SQL quoted and comma-joined; a
custom All value goes in as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dashboards.grafana_time import Datasource, Window

ALL = "$__all"
REGEX_SPECIAL = re.compile(r"[$^*{}\[\]'+?.()|]")


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``${name}`` and ``$name`` replaced by ``values[name]``, longer names first (so
    ``$__interval_ms`` is not read as ``$__interval``)."""
    for name in sorted(values, key=len, reverse=True):
        text = text.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    return text


@dataclass(frozen=True)
class Selection:
    """A variable's selected values (``all`` when its All option is selected)."""

    variable: Mapping[str, Any]
    values: tuple[str, ...]
    all: bool = False

    @property
    def name(self) -> str:
        return str(self.variable["name"])


def custom_options(variable: Mapping[str, Any]) -> list[str]:
    """A custom variable's values: comma-separated, each ``text : value`` or ``value``."""
    return [o.split(" : ")[-1].strip() for o in re.split(r"(?<!\\),", str(variable["query"]))]


def select(variable: Mapping[str, Any], options: Sequence[str]) -> Selection:
    """What Grafana selects on load: the saved current value if it is still an option
    (or All), else the first option."""
    current = (variable.get("current") or {}).get("value")
    chosen = current if isinstance(current, list) else [current]
    if ALL in chosen and variable.get("includeAll"):
        return Selection(variable, tuple(options), all=True)
    kept = tuple(str(c) for c in chosen if c in options)
    return Selection(variable, kept or tuple(options[:1]))


def static_selection(variable: Mapping[str, Any], sources: Mapping[str, Datasource]) -> Selection:
    """A variable resolved without a request: datasource, constant, custom, interval."""
    kind = variable["type"]
    if kind == "datasource":
        current = (variable.get("current") or {}).get("value")
        uids = [uid for uid, ds in sources.items() if ds.type == variable["query"]]
        return Selection(variable, (current if current in uids else uids[0],))
    if kind == "constant":
        return Selection(variable, (str(variable["query"]),))
    if kind in ("custom", "interval"):
        return select(variable, custom_options(variable))
    raise ValueError(f"variable {variable['name']!r} of type {kind!r} needs a request")


@dataclass(frozen=True)
class VariableRequest:
    """A query variable's request to Prometheus: GET ``path`` with ``params``."""

    name: str
    path: str
    params: tuple[tuple[str, str], ...]


LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.+?)\s*,\s*)?([a-zA-Z_]\w*)\s*\)\s*$")
QUERY_RESULT = re.compile(r"^\s*query_result\((.+)\)\s*$")


def _definition(variable: Mapping[str, Any]) -> str:
    query = variable.get("query")
    return str(query.get("query", "") if isinstance(query, dict) else query or "")


def variable_request(
    variable: Mapping[str, Any], window: Window, earlier: Sequence[Selection]
) -> VariableRequest:
    """The request a Prometheus query variable sends on load, over the dashboard's range
    (earlier variables interpolated into it)."""
    text = substitute(_definition(variable), promql_values(earlier))
    start, end = str(int(window.start)), str(int(window.end))
    if match := LABEL_VALUES.match(text):
        params = [("start", start), ("end", end)]
        if match.group(1):
            params.insert(0, ("match[]", match.group(1)))
        return VariableRequest(
            variable["name"], f"/api/v1/label/{match.group(2)}/values", tuple(params)
        )
    if match := QUERY_RESULT.match(text):
        query = (("query", match.group(1)), ("time", end))
        return VariableRequest(variable["name"], "/api/v1/query", query)
    raise ValueError(f"variable {variable['name']!r}: unsupported query {text!r}")


def variable_options(variable: Mapping[str, Any], data: Any) -> list[str]:
    """The options of a query variable from its answer's ``data``, through its regex."""
    if isinstance(data, dict):  # query_result: one line per series, as Grafana shows it
        values = [_series_text(r) for r in data.get("result", [])]
    else:
        values = [str(v) for v in data]
    pattern = variable.get("regex")
    if pattern:
        kept = []
        for value in values:
            found = re.search(pattern.strip("/"), value)
            if found:
                kept.append(found.group(1) if found.groups() else found.group(0))
        values = kept
    return sorted(set(values), key=values.index)


def _series_text(row: Mapping[str, Any]) -> str:
    labels = dict(row.get("metric", {}))
    name = labels.pop("__name__", "")
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    value = row.get("value", [0, ""])[1]
    return f"{name}{{{inner}}} {value} {int(row.get('value', [0])[0] * 1000)}"


def _regex_escape(value: str) -> str:
    return REGEX_SPECIAL.sub(lambda m: "\\\\" + m.group(0), value.replace("\\", "\\\\\\\\"))


def promql_value(selection: Selection) -> str:
    """The Prometheus datasource's formatting of a variable in a query."""
    variable = selection.variable
    if selection.all and variable.get("allValue"):
        return str(variable["allValue"])  # a custom All value goes in as written
    if not variable.get("multi") and not variable.get("includeAll"):
        return selection.values[0].replace("\\", "\\\\").replace("'", "\\\\'")
    escaped = [_regex_escape(v) for v in selection.values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def sql_value(selection: Selection) -> str:
    """The SQL datasources' formatting: raw when single-valued, else quoted and joined."""
    variable = selection.variable
    if selection.all and variable.get("allValue"):
        return str(variable["allValue"])
    if not variable.get("multi") and not variable.get("includeAll"):
        return selection.values[0]
    return ",".join("'" + v.replace("'", "''") + "'" for v in selection.values)


def promql_values(selections: Iterable[Selection]) -> dict[str, str]:
    return {s.name: promql_value(s) for s in selections}


def sql_values(selections: Iterable[Selection]) -> dict[str, str]:
    return {s.name: sql_value(s) for s in selections}
