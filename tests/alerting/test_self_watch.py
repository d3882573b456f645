"""opsdeck watching itself, end to end through a real Prometheus and Alertmanager running
the repository's configs (:mod:`tests.alerting.stack`, with the webhook worker and no API),
on the demo's history and traffic, which raise no alert by themselves (test_quiet).

One scenario: the Watchdog's heartbeat reaches the dead man's switch and nothing else; then
opsdeck's API hook starts refusing Alertmanager (a receiver that stopped working) and the
worker is killed. The worker-down alert fires and reaches PagerDuty and Slack; the refused
deliveries fire ``AlertmanagerFailedToSendAlerts``, which reaches them too; once the hook
answers again, both alerts reach it. Throughout, no absent-job alert fires, although the
stack runs no API: the absent rules watch only the jobs this Prometheus is told to scrape.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from alert_rules.alerts import all_alerts
from alert_rules.localize import DEADMANSSWITCH
from alert_rules.opsdeck_alerts import WATCHDOG
from core.settings import Settings
from opsdeck.cli.demo import DEMO_RATE
from tests.alerting.deliveries import Delivery, expected, heartbeats, received
from tests.alerting.sinks import API_HOOK, HttpRequest
from tests.alerting.stack import SCRAPE_SECONDS, Stack, monitoring_stack

# Its stack may wait for another test file's stack (tests.alerting.stack) first.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

ALERTS = {a.name: a for a in all_alerts(Settings().thresholds)}
WORKER_DOWN = "OpsdeckWorkerDown"
FAILED_TO_SEND = "AlertmanagerFailedToSendAlerts"
ABSENT = [name for name in ALERTS if name.endswith("Absent")]
STEP_TIMEOUT = 90.0


@dataclass
class Run:
    stack: Stack
    worker: str  # the killed worker's scrape address
    firing: dict[str, dict[str, Any]] = field(default_factory=dict)  # first seen firing
    firing_before_kill: set[str] = field(default_factory=set)
    got: dict[str, set[Delivery]] = field(default_factory=dict)
    http: list[HttpRequest] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # step → time it took

    def refresh(self) -> dict[str, set[Delivery]]:
        for alert in self.stack.prometheus_alerts():
            if alert["state"] == "firing":
                self.firing.setdefault(alert["labels"]["alertname"], alert)
        self.http = self.stack.http.received()
        self.got = received(self.http, self.stack.smtp.received())
        return self.got

    def reached(self, name: str, *integrations: str) -> bool:
        """``name`` fired, and its expected deliveries over ``integrations`` arrived."""
        want = {d for d in expected(ALERTS[name], datetime.now(UTC)) if d[0] in set(integrations)}
        got = self.refresh().get(name, set())
        return name in self.firing and want <= got

    def step(self, label: str, check: Callable[[], bool]) -> None:
        started = time.monotonic()
        deadline = started + STEP_TIMEOUT
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"{label}: not in {STEP_TIMEOUT:.0f} s; {self.seconds}")
            time.sleep(0.5)
        self.seconds[label] = round(time.monotonic() - started, 1)


@pytest.fixture(scope="module")
def run(
    admin_url: str, demo_history_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    work = tmp_path_factory.mktemp("self-watch")
    with monitoring_stack(
        admin_url,
        demo_history_template,
        work,
        gateway=True,
        traffic_rate=DEMO_RATE,
        lane="light",
    ) as stack:
        assert stack.worker is not None
        scenario = Run(stack, f"127.0.0.1:{stack.worker.port}")
        scenario.step("heartbeat", lambda: bool(heartbeats(stack.http.received())))
        scenario.refresh()
        scenario.firing_before_kill = set(scenario.firing)
        stack.http.refuse(API_HOOK)
        stack.worker.kill()
        scenario.step("worker down", lambda: scenario.reached(WORKER_DOWN, "pagerduty", "slack"))
        scenario.step(
            "failed to send", lambda: scenario.reached(FAILED_TO_SEND, "pagerduty", "slack")
        )
        stack.http.refuse(API_HOOK, refused=False)
        scenario.step(
            "hook answers again",
            lambda: (
                scenario.reached(WORKER_DOWN, "webhook")
                and scenario.reached(FAILED_TO_SEND, "webhook")
            ),
        )
        time.sleep(3)  # a late stray notification would arrive meanwhile
        scenario.refresh()
        yield scenario


def test_the_watchdog_reaches_the_dead_mans_switch_and_nothing_else(run: Run) -> None:
    beats = heartbeats(run.http)
    assert beats
    for beat in beats:
        body = beat.body
        assert (body["receiver"], body["status"]) == (DEADMANSSWITCH, "firing")
        assert {a["labels"]["alertname"] for a in body["alerts"]} == {WATCHDOG}
        assert body["alerts"][0]["labels"]["severity"] == "none"
    assert WATCHDOG not in run.got, run.got[WATCHDOG]
    assert WATCHDOG in run.firing_before_kill
    assert run.firing_before_kill == {WATCHDOG}, "opsdeck was not healthy before the kill"


def test_killing_the_worker_fires_its_alert_and_reaches_its_receivers(run: Run) -> None:
    alert = run.firing[WORKER_DOWN]
    assert alert["labels"]["instance"] == run.worker
    assert alert["labels"]["job"] == "opsdeck-worker"
    assert alert["labels"]["severity"] == ALERTS[WORKER_DOWN].severity
    assert run.got[WORKER_DOWN] == expected(ALERTS[WORKER_DOWN], datetime.now(UTC))


def test_a_refusing_receiver_fires_alertmanager_failed_to_send_alerts(run: Run) -> None:
    alert = run.firing[FAILED_TO_SEND]
    assert alert["labels"]["integration"] == "webhook"
    assert alert["labels"]["job"] == "alertmanager"
    assert "webhook notifications" in alert["annotations"]["description"]
    assert run.got[FAILED_TO_SEND] == expected(ALERTS[FAILED_TO_SEND], datetime.now(UTC))
    refused = [r for r in run.http if r.refused]
    assert refused
    assert {r.path for r in refused} == {API_HOOK}


def test_nothing_else_fired_or_reached_the_sinks(run: Run) -> None:
    assert set(run.firing) == {WATCHDOG, WORKER_DOWN, FAILED_TO_SEND}
    assert set(run.got) == {WORKER_DOWN, FAILED_TO_SEND}


def test_no_absent_alert_was_even_pending(run: Run) -> None:
    """Not for the worker (scraped, down) nor for the API this stack does not run: every
    evaluation since the start, pending ones included, from Prometheus's ALERTS series."""
    assert ABSENT == ["OpsdeckExporterAbsent", "OpsdeckWorkerAbsent", "OpsdeckApiAbsent"]
    seconds = int(time.time() - run.stack.started) + 10 * SCRAPE_SECONDS
    names = "|".join(ABSENT)
    seen = run.stack.query(f'count_over_time(ALERTS{{alertname=~"{names}"}}[{seconds}s])')
    assert seen == []
    assert run.stack.query('up{job="opsdeck-api"}') == []  # the API is not scraped at all
