"""On-call as data: seed 001's escalation policy, resolvable schedules, every alert team."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from alert_rules.alert import TEAMS
from alert_rules.alerts import all_alerts
from core.oncall import ONCALL_FILE, load_oncall
from core.settings import Settings


def test_seed_001_escalation_policy() -> None:
    oncall = load_oncall()
    policy = oncall.policy("opsdeck-default")
    assert [(lv.from_minute, lv.to_minute, lv.targets) for lv in policy.levels] == [
        (0, 15, ("primary",)),
        (15, 45, ("secondary",)),
        (45, 120, ("eng-lead", "head-of-ops")),
    ]
    assert [lv.escalation_delay_minutes for lv in policy.levels] == [15, 30, 75]


def test_who_is_paged_as_time_passes() -> None:
    oncall = load_oncall()
    opened = datetime(2026, 3, 2, 10, tzinfo=UTC)
    at = [opened + timedelta(minutes=m) for m in (0, 15, 45, 120)]
    paged = [[u.id for u in oncall.paged("bookings", opened, t)] for t in at]
    primary, secondary = oncall.schedule("primary"), oncall.schedule("secondary")
    assert paged == [
        [primary.on_call(at[0])],
        [secondary.on_call(at[1])],
        ["barbara", "katherine"],
        [],
    ]
    assert primary.on_call(opened) != primary.on_call(opened + timedelta(days=7))


def test_every_alert_team_has_a_policy_and_channel() -> None:
    oncall = load_oncall()
    assert {t.id for t in oncall.teams} == set(TEAMS)
    assert {a.team for a in all_alerts(Settings().thresholds)} <= set(TEAMS)
    for team in oncall.teams:
        expected = "#ops-booka" if team.id == "bookings" else f"#ops-{team.id}"
        assert team.slack_channel == expected  # what alertmanager.yml's template picks


def test_a_broken_reference_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(ONCALL_FILE.read_text())
    data["schedules"][0]["users"].append("nobody")
    path = tmp_path / "oncall.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValidationError, match="unknown user nobody"):
        load_oncall(path)
