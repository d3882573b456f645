"""The one rewrite of the repository's configs for localhost, shared by ``opsdeck demo`` and
the end-to-end tests: every job the Prometheus config scrapes gets its local process,
nothing is left pointing at a docker-compose host name, and Alertmanager's dead man's
switch gets its heartbeat URL or, without one, no integration."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from alert_rules.localize import (
    ALERTMANAGER_CONFIG,
    DEADMANSSWITCH,
    HEARTBEAT,
    PROMETHEUS_CONFIG,
    RULES_GLOB,
    LocalAlerting,
    alertmanager_config,
    host_port,
    prometheus_config,
)
from core.settings import Settings
from opsdeck.demo import Demo, DemoPlan

JOBS = {j["job_name"] for j in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]}


def _targets(config: dict[str, object]) -> dict[str, list[str]]:
    jobs = config["scrape_configs"]
    assert isinstance(jobs, list)
    return {j["job_name"]: j["static_configs"][0]["targets"] for j in jobs}


def test_every_job_can_be_pointed_at_localhost() -> None:
    local = {job: f"127.0.0.1:{port}" for port, job in enumerate(sorted(JOBS), start=9001)}
    config = prometheus_config(local, "127.0.0.1:9093", ["/tmp/rules/*.rules.yaml"])
    assert _targets(config) == {job: [target] for job, target in local.items()}
    assert config["rule_files"] == ["/tmp/rules/*.rules.yaml"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "127.0.0.1:9093"
    ]
    assert prometheus_config(local, "127.0.0.1:9093")["rule_files"] == [RULES_GLOB]


def test_a_job_without_a_local_target_is_left_out_and_an_unknown_job_refused() -> None:
    config = prometheus_config({"prometheus": "127.0.0.1:9090"}, "127.0.0.1:9093")
    assert set(_targets(config)) == {"prometheus"}
    with pytest.raises(ValueError, match="no job opsdeck-exporterr"):
        prometheus_config({"opsdeck-exporterr": "127.0.0.1:1"}, "127.0.0.1:9093")


def test_the_demo_scrapes_every_job_on_localhost(tmp_path: Path) -> None:
    plan = DemoPlan(Settings(), tmp_path, rate=1, backfill_days=0)
    plan.urls.update(
        exporter="http://127.0.0.1:9464/metrics",
        api="http://127.0.0.1:8001",
        worker="http://127.0.0.1:9465/metrics",
    )
    demo = Demo(plan, lambda line: None)
    config = yaml.safe_load(demo._prometheus_config(59090, 59093).read_text())
    assert _targets(config) == {
        "prometheus": ["127.0.0.1:59090"],
        "alertmanager": ["127.0.0.1:59093"],
        "opsdeck-exporter": ["127.0.0.1:9464"],
        "opsdeck-api": ["127.0.0.1:8001"],
        "opsdeck-worker": ["127.0.0.1:9465"],
    }
    assert set(_targets(config)) == JOBS
    assert config["rule_files"] == [RULES_GLOB]


def test_host_port() -> None:
    assert host_port("http://127.0.0.1:9464/metrics") == "127.0.0.1:9464"


def _receivers(text: str) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in yaml.safe_load(text)["receivers"]}


def test_the_heartbeat_url_is_written_into_the_alertmanager_config(tmp_path: Path) -> None:
    url = "https://hc-ping.com/0e0f5c3a-local?rid=1&x=2"
    local = LocalAlerting("http://127.0.0.1:1", tmp_path / "s", heartbeat_url=url)
    text = alertmanager_config(local)
    assert HEARTBEAT not in text
    (hook,) = _receivers(text)[DEADMANSSWITCH]["webhook_configs"]
    assert hook == {"url": url, "send_resolved": False}
    assert not (tmp_path / "s" / DEADMANSSWITCH).exists()  # Alertmanager reads no such file
    _amtool_accepts(tmp_path, text)


def test_without_a_heartbeat_url_the_watchdog_goes_nowhere(tmp_path: Path) -> None:
    """Routed as in production, to a receiver without an integration: no request that
    could fail (and raise AlertmanagerFailedToSendAlerts) where no switch exists."""
    text = alertmanager_config(LocalAlerting("http://127.0.0.1:1", tmp_path / "s"))
    assert HEARTBEAT not in text
    assert _receivers(text)[DEADMANSSWITCH] == {"name": DEADMANSSWITCH}
    production = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    assert yaml.safe_load(text)["route"] == production["route"]
    assert set(_receivers(text)) == {r["name"] for r in production["receivers"]}
    _amtool_accepts(tmp_path, text)


def _amtool_accepts(tmp_path: Path, text: str) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(text, encoding="utf-8")
    binary = shutil.which("amtool")
    assert binary, "amtool is not installed (make test installs it: scripts/system-deps.sh)"
    result = subprocess.run(
        [binary, "check-config", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
