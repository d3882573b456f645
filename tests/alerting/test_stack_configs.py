"""The end-to-end stack's copies of the configs differ from the repository's only in
timings: every expression, threshold, label, route, receiver and inhibition is the same."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from alert_rules.localize import LocalAlerting, alertmanager_config, prometheus_config
from alert_rules.rule_files import ALERTS_FILE, RECORDING_FILE
from tests.alerting.stack import (
    SCRAPE_SECONDS,
    alertmanager_config_for_test,
    prometheus_config_for_test,
    rules_for_test,
)
from tests.conftest import REPO

TIMINGS = {"for", "interval", "group_wait", "group_interval"}


def _without_timings(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_timings(v) for k, v in node.items() if k not in TIMINGS}
    if isinstance(node, list):
        return [_without_timings(v) for v in node]
    return node


def _tool(name: str, *args: str) -> None:
    binary = shutil.which(name)
    assert binary, f"{name} is not installed (make test installs it: scripts/system-deps.sh)"
    result = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_differ_only_in_for_and_group_interval(tmp_path: Path) -> None:
    paths = rules_for_test(tmp_path)
    for original, copied in zip((RECORDING_FILE, ALERTS_FILE), paths, strict=True):
        repo = yaml.safe_load((REPO / original).read_text())
        test = yaml.safe_load(Path(copied).read_text())
        assert _without_timings(test) == _without_timings(repo)
        assert test != repo or original == RECORDING_FILE
    _tool("promtool", "check", "rules", *paths)


def _without_intervals(config: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    for key in ("scrape_interval", "scrape_timeout", "evaluation_interval"):
        config["global"].pop(key, None)
    for job in config["scrape_configs"]:
        job.pop("scrape_interval", None)
    return config


def test_prometheus_config_differs_only_in_intervals(tmp_path: Path) -> None:
    targets = {"prometheus": "127.0.0.1:1", "opsdeck-exporter": "127.0.0.1:2"}
    rules = [str(tmp_path / "*.yaml")]
    config = prometheus_config_for_test(targets, "127.0.0.1:3", rules)
    timings = ("scrape_interval", "scrape_timeout", "evaluation_interval")
    assert {config["global"][k] for k in timings} == {f"{SCRAPE_SECONDS}s"}
    localized = prometheus_config(targets, "127.0.0.1:3", rules)
    assert _without_intervals(config) == _without_intervals(localized)
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    _tool("promtool", "check", "config", "--syntax-only", str(path))


def test_alertmanager_config_differs_only_in_group_timings(tmp_path: Path) -> None:
    local = LocalAlerting(
        "http://127.0.0.1:1", tmp_path / "secrets", heartbeat_url="http://127.0.0.1:2/ping"
    )
    localized = yaml.safe_load(alertmanager_config(local))
    test = yaml.safe_load(alertmanager_config_for_test(local))
    assert _without_timings(test) == _without_timings(localized)
    assert test["route"]["group_wait"] == "1s"
    assert all(r.get("group_wait", "1s") == "1s" for r in test["route"]["routes"])
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(test))
    _tool("amtool", "check-config", str(path))
