"""Every generated dashboard validates against Grafana's own JSON schemas: the dashboard,
each panel kind's options and field config, and each Prometheus query."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from core.settings import Settings
from dashboards import catalog, lint
from tests.dashboards.shared_schemas import definition, load, schema_dir

BOARDS = catalog.dashboards(Settings())


def _validate(instance: Any, schema: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(schema).validate(instance)


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_dashboard_matches_the_dashboard_schema(uid: str) -> None:
    _validate(BOARDS[uid], load("grafana", "dashboard.jsonschema.json"))


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_each_panel_matches_its_kind_schema(uid: str) -> None:
    checked = 0
    for panel in lint.panels(BOARDS[uid]):
        kind = panel["type"]
        path = schema_dir("grafana") / f"{kind}.jsonschema.json"
        assert path.exists(), f"no schema for panel kind {kind}"
        _validate(panel["options"], definition("grafana", path.name, "Options"))
        custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom")
        if custom and "FieldConfig" in load("grafana", path.name)["definitions"]:
            _validate(custom, definition("grafana", path.name, "FieldConfig"))
        for target in panel["targets"]:
            if target["datasource"]["type"] == "prometheus":
                _validate(target, definition("grafana", "prometheus.jsonschema.json", "Dataquery"))
        checked += 1
    assert checked >= 4


def test_schema_rejects_what_grafana_would_reject() -> None:
    board = dict(BOARDS["opsdeck-command-center"])
    board["refresh"] = 15  # a number where Grafana wants a duration string
    with pytest.raises(jsonschema.ValidationError):
        _validate(board, load("grafana", "dashboard.jsonschema.json"))


def test_lint_units_are_grafanas_units() -> None:
    """The linter's unit list (from the SDK) is the schema's list of units."""
    units = {d["const"] for d in load("grafana", "units.jsonschema.json")["definitions"].values()}
    assert units == set(lint.VALID_UNITS)
