"""Alertmanager's config: amtool accepts it, every alert routes to the receivers seed 001
names, the Watchdog to the dead man's switch alone, and inhibitions follow the alert
definitions."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from alert_rules.alerts import all_alerts
from alert_rules.localize import (
    ALERTMANAGER_CONFIG,
    DEADMANSSWITCH,
    HEARTBEAT,
    LocalAlerting,
    alertmanager_config,
)
from alert_rules.opsdeck_alerts import WATCHDOG
from api.app import route_specs
from core.settings import Settings
from tests.alerting.deliveries import RECEIVER

ALERTS = {a.name: a for a in all_alerts(Settings().thresholds)}
BY_TEAM = {"finance": ["finance-email"], "support": ["cs-lead-email"]}


def expected_receivers(name: str) -> list[str]:
    alert = ALERTS[name]
    if name == WATCHDOG:
        return [DEADMANSSWITCH]
    return [*BY_TEAM.get(alert.team, []), RECEIVER[alert.severity]]


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("amtool")
    if binary is None:
        pytest.fail("amtool is not installed (make test installs it: scripts/system-deps.sh)")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)


def test_amtool_accepts_the_config(tmp_path: Path) -> None:
    result = amtool("check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    local = tmp_path / "alertmanager.yml"
    local.write_text(alertmanager_config(LocalAlerting("http://127.0.0.1:1", tmp_path / "s")))
    result = amtool("check-config", str(local))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "/run/secrets/" not in local.read_text()


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_route(name: str) -> None:
    alert = ALERTS[name]
    receivers = expected_receivers(name)
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"--verify.receivers={','.join(receivers)}",
        f"alertname={name}",
        f"severity={alert.severity}",
        f"team={alert.team}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ",".join(receivers)


def test_critical_and_high_page_and_every_alert_reaches_the_api() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    (api,) = receivers["opsdeck-api"]["webhook_configs"]
    assert api["url"] == "http://api:8000/hooks/alertmanager"
    assert api["http_config"]["authorization"]["credentials_file"].startswith("/run/secrets/")
    assert config["route"]["receiver"] == "opsdeck-api"  # alerts without a severity
    page = {"pagerduty_configs", "slack_configs", "webhook_configs"}
    assert set(receivers["page-critical"]) - {"name"} == page
    assert set(receivers["page-high"]) - {"name"} == page
    assert set(receivers["notify-medium"]) - {"name"} == {
        "slack_configs",
        "email_configs",
        "webhook_configs",
    }
    # The API hears each alert from the receiver of its severity, where PagerDuty's events
    # are keyed by the same group key, and from no other route.
    for name in RECEIVER.values():
        assert receivers[name]["webhook_configs"] == [api]
    for route in config["route"]["routes"]:
        assert route["receiver"] != "opsdeck-api"
        if route.get("continue"):
            assert "webhook_configs" not in receivers[route["receiver"]]


def test_every_webhook_is_a_route_the_api_serves() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    served = {spec.path for spec in route_specs() if "POST" in spec.methods}
    urls = [
        w["url"]
        for r in config["receivers"]
        if r["name"] != DEADMANSSWITCH
        for w in r.get("webhook_configs", [])
    ]
    assert urls
    for url in urls:
        assert urlsplit(url).path in served, f"{url}: no such API route"


def _routes_test(*labels: str) -> str:
    result = amtool("config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def test_the_watchdog_reaches_the_dead_mans_switch_and_nothing_else() -> None:
    """Every minute, straight away, whatever labels it carries; and the switch hears
    nothing but the Watchdog."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    first = config["route"]["routes"][0]
    assert first["receiver"] == DEADMANSSWITCH
    assert first["matchers"] == [f'alertname="{WATCHDOG}"']
    assert not first.get("continue", False)
    assert (first["group_wait"], first["group_interval"], first["repeat_interval"]) == (
        "0s",
        "1m",
        "1m",
    )
    (switch,) = [r for r in config["receivers"] if r["name"] == DEADMANSSWITCH]
    assert set(switch) == {"name", "webhook_configs"}
    assert switch["webhook_configs"] == [{"url": HEARTBEAT, "send_resolved": False}]
    routed = [r for r in config["route"]["routes"] if r["receiver"] == DEADMANSSWITCH]
    assert routed == [first]
    for team in ("opsdeck", "finance", "support"):
        for severity in ("none", "critical", "medium"):
            labels = (f"alertname={WATCHDOG}", f"severity={severity}", f"team={team}")
            assert _routes_test(*labels) == DEADMANSSWITCH
    assert ALERTS[WATCHDOG].severity == "none"
    assert ALERTS[WATCHDOG].actions == ()  # muting it would set the switch off


def test_self_watch_alerts_route_as_their_severity_says() -> None:
    mine = [a for a in ALERTS.values() if a.team == "opsdeck" and a.name != WATCHDOG]
    assert {a.severity for a in mine} == {"high", "medium"}
    for alert in mine:
        labels = (f"alertname={alert.name}", f"severity={alert.severity}", "team=opsdeck")
        assert _routes_test(*labels) == RECEIVER[alert.severity], alert.name


def test_inhibitions_follow_the_alert_definitions() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    configured = set()
    for rule in config["inhibit_rules"]:
        source = rule["source_matchers"][0].split('"')[1]
        targets = rule["target_matchers"][0].split('"')[1].split("|")
        configured |= {(source, t) for t in targets}
    declared = {(a.name, t) for a in ALERTS.values() for t in a.inhibits}
    assert configured == declared
    assert ("BookingApiDown", "ApiErrorRateHigh") in declared
