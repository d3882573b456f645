"""The rule files: promtool accepts them, every alert passes its promtool unit test, and
every alert carries seed 001's labels and annotations and has a runbook."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from alert_rules.alert import SEVERITIES, TEAMS
from alert_rules.alerts import all_alerts
from alert_rules.rule_files import ALERTS_FILE, RECORDING_FILE, rule_files
from alert_rules.unit_tests import MORE_CASES, TEST_FILE
from core import recording_rules as rec
from core.settings import Settings, Thresholds
from dashboards import catalog, command_center
from tests.conftest import REPO, opsdeck_env, run_opsdeck

ALERTS = all_alerts(Settings().thresholds)
SEED_001 = {
    "BookingConflictRateHigh": "high",
    "ApiErrorRateHigh": "high",
    "WebhookRetryQueueHigh": "medium",
    "PaymentReconciliationDriftHigh": "high",
    "PaymentReconciliationDriftSuspendPayouts": "high",
    "ChargebackRateHigh": "high",
    "UnprocessedBookingsHigh": "medium",
    "BookingApiDown": "critical",
    "SupportTimeToResolveHigh": "medium",
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed (make test installs it: scripts/system-deps.sh)")
    return subprocess.run(
        [binary, *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_accepts_the_rule_files() -> None:
    result = promtool("check", "rules", str(RECORDING_FILE), str(ALERTS_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass_for_every_alert() -> None:
    cases = yaml.safe_load((REPO / TEST_FILE).read_text())["tests"]
    firing = sorted(c["name"] for c in cases if c["name"] in {a.name for a in ALERTS})
    assert firing == sorted(a.name for a in ALERTS)
    more = {
        f"{name} ({variant})": case for name, m in MORE_CASES.items() for variant, case in m.items()
    }
    assert sorted(c["name"] for c in cases) == sorted([*firing, *more])
    for case in cases:
        before, after = case["alert_rule_test"]
        assert before["exp_alerts"] == []
        quiet = case["name"] in more and not more[case["name"]].fires
        assert len(after["exp_alerts"]) == (0 if quiet else 1)
    result = promtool("test", "rules", str(TEST_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def _booking_api_down_cases() -> dict[str, dict[str, Any]]:
    cases = yaml.safe_load((REPO / TEST_FILE).read_text())["tests"]
    return {c["name"]: c for c in cases if c["name"].startswith("BookingApiDown")}


def test_booking_api_down_says_whether_checks_fail_or_stopped() -> None:
    """Failing checks fire as "down", checks that stopped after an ok one as "silent" (with
    how long), and ok checks arriving never fire."""
    cases = _booking_api_down_cases()
    assert set(cases) == {
        "BookingApiDown",
        "BookingApiDown (silent)",
        "BookingApiDown (checks ok)",
    }

    def description(name: str) -> str:
        (alert,) = cases[name]["alert_rule_test"][1]["exp_alerts"]
        return str(alert["exp_annotations"]["description"])

    assert description("BookingApiDown").startswith("Down: ")
    assert description("BookingApiDown (silent)").startswith(
        "Silent: no health check of the booking API has arrived for 3m 0s "
    )
    stale = Settings().thresholds.service_check_stale_seconds
    assert f"older than {stale:g} s" in description("BookingApiDown (silent)")
    quiet = cases["BookingApiDown (checks ok)"]["alert_rule_test"]
    assert [step["exp_alerts"] for step in quiet] == [[], []]


def test_promtool_tests_fail_when_the_alert_ignores_the_checks_age(tmp_path: Path) -> None:
    """Without the latest check's age as its value, the rule cannot tell a silent checker
    from failing checks: the "silent" case fails."""
    for path in (RECORDING_FILE, ALERTS_FILE):
        (tmp_path / path.name).write_text((REPO / path).read_text())
    alerts = tmp_path / ALERTS_FILE.name
    rules = yaml.safe_load(alerts.read_text())
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r["alert"] == "BookingApiDown"]
    rule["expr"] = 'opsdeck_service_up{service="booking_api"} == 0'
    alerts.write_text(yaml.safe_dump(rules))
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / TEST_FILE.name).write_text((REPO / TEST_FILE).read_text())
    result = promtool("test", "rules", str(tests / TEST_FILE.name))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "BookingApiDown (silent)" in output
    assert "Down: the booking API" in output


def test_promtool_tests_fail_when_a_threshold_drifts(tmp_path: Path) -> None:
    """The unit tests bite: the rules with a looser threshold fail them."""
    for path in (RECORDING_FILE, ALERTS_FILE):
        (tmp_path / path.name).write_text((REPO / path).read_text())
    alerts = tmp_path / ALERTS_FILE.name
    alerts.write_text(
        alerts.read_text().replace("ratio_5xx_rate5m > 0.01", "ratio_5xx_rate5m > 0.5")
    )
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / TEST_FILE.name).write_text((REPO / TEST_FILE).read_text())
    result = promtool("test", "rules", str(tests / TEST_FILE.name))
    assert result.returncode != 0
    assert "ApiErrorRateHigh" in result.stdout + result.stderr


def test_promtool_renders_a_deployments_links(tmp_path: Path) -> None:
    """Rules and their promtool tests built with a deployment's public URLs agree: Prometheus
    renders its Grafana and API links into the annotations."""
    env = opsdeck_env(
        OPSDECK_INCIDENTS__PUBLIC_URL="https://ops.example.com",
        OPSDECK_GRAFANA_PUBLIC_URL="https://grafana.example.com",
    )
    built = run_opsdeck("dashboards", "build", "--root", str(tmp_path), env=env)
    assert built.returncode == 0, built.stderr
    tests = (tmp_path / TEST_FILE).read_text()
    assert "runbook_url: https://ops.example.com/runbooks/BookingApiDown.md" in tests
    assert "dashboard: https://grafana.example.com/d/opsdeck-command-center?viewPanel=" in tests
    assert "localhost" not in tests
    result = promtool("test", "rules", str(tmp_path / TEST_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_seed_001_threshold_has_its_alert() -> None:
    t = Settings().thresholds
    by_name = {a.name: a for a in ALERTS}
    assert {n: by_name[n].severity for n in SEED_001} == SEED_001
    expected = {
        "BookingConflictRateHigh": t.booking_conflict_rate,
        "ApiErrorRateHigh": t.api_5xx_rate,
        "WebhookRetryQueueHigh": t.webhook_queue_depth,
        "PaymentReconciliationDriftHigh": t.reconciliation_drift,
        "PaymentReconciliationDriftSuspendPayouts": t.reconciliation_drift_suspend_payouts,
        "ChargebackRateHigh": t.chargeback_rate,
        "UnprocessedBookingsHigh": t.unprocessed_bookings,
        "SupportTimeToResolveHigh": t.support_time_to_resolve_seconds,
    }
    rules = {
        r["alert"]: r
        for g in yaml.safe_load((REPO / ALERTS_FILE).read_text())["groups"]
        for r in g["rules"]
    }
    for name, value in expected.items():
        # The threshold compares the alert's own value (the left side of any `and`).
        first = rules[name]["expr"].split(" and ")[0]
        assert first.endswith((f"> {value:g}", f"> {value}")), (name, rules[name]["expr"])
    assert rules["BookingApiDown"]["for"] == f"{t.booking_api_down_seconds / 60:g}m"
    assert (
        "suspend-payouts"
        in rules["PaymentReconciliationDriftSuspendPayouts"]["annotations"]["actions"]
    )


def test_labels_annotations_and_runbooks() -> None:
    runbooks = {p.stem for p in (REPO / "runbooks").glob("*.md")} - {"README"}
    assert runbooks == {a.name for a in ALERTS}
    for group in yaml.safe_load((REPO / ALERTS_FILE).read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in SEVERITIES
            assert rule["labels"]["team"] in TEAMS
            notes = rule["annotations"]
            assert set(notes) == {
                "summary",
                "description",
                "runbook_url",
                "dashboard",
                "suggested_action",
                "actions",
            }
            assert "$value" in notes["description"]
            assert notes["runbook_url"].endswith(f"/runbooks/{rule['alert']}.md")
            assert notes["actions"].splitlines()[:3] == [
                line
                for line in notes["actions"].splitlines()[:3]
                if line.split(":")[0] in {"Acknowledge", "Create incident", "Mute 1h"}
            ]


def test_long_windows_are_recorded() -> None:
    groups = yaml.safe_load((REPO / RECORDING_FILE).read_text())["groups"]
    windows = next(g for g in groups if g.get("interval") == "1m")
    exprs = " ".join(r["expr"] for r in windows["rules"])
    assert "[24h]" in exprs
    assert "[30d]" in exprs
    for group in yaml.safe_load((REPO / ALERTS_FILE).read_text())["groups"]:
        for rule in group["rules"]:
            assert "[24h]" not in rule["expr"]
            assert "[30d]" not in rule["expr"]


def test_recording_floors_and_anomaly_band_come_from_the_thresholds() -> None:
    thresholds = Thresholds(
        bookings_anomaly_z=2.5, bookings_anomaly_min_stddev=4, chargeback_min_payments_30d=250
    )
    settings = Settings(thresholds=thresholds)
    files = rule_files(settings)
    records = {r["record"]: r["expr"] for g in files[RECORDING_FILE]["groups"] for r in g["rules"]}
    assert records[rec.CHARGEBACK_RATE_30D].endswith(f"clamp_min({rec.SUCCEEDED_30D}, 250)")
    assert records[rec.BOOKINGS_ZSCORE].endswith(f"clamp_min({rec.BOOKINGS_STDDEV}, 4)")
    assert f"+ 2.5 * {rec.BOOKINGS_STDDEV}" in records[rec.BOOKINGS_UPPER]
    board = catalog.dashboards(settings)[command_center.UID]
    marks = {a["name"]: a["expr"] for a in board["annotations"]["list"] if "expr" in a}
    assert marks["Booking spikes"] == f"{rec.BOOKINGS_ZSCORE} > 2.5"
    assert marks["Booking drops"] == f"{rec.BOOKINGS_ZSCORE} < -2.5"
