"""End to end: every alert with an injection (seed 001's and the payments platform's), from
its injected anomaly to the receivers its route names, through a real exporter, Prometheus
and Alertmanager running the repository's configs (:mod:`tests.alerting.stack`).

The anomalies are injected into one running stack one at a time, each once the alerts of
the one before reached their receivers, and every injection must raise only its own alerts:
Prometheus's ``ALERTS`` series over the injection's window (from the injection until its
alerts were delivered and :data:`SETTLE_SECONDS` more) may hold only the injection's alerts,
the alerts those inhibit (the consequences they explain), and alerts still active when the
window opened. Every pending evaluation counts.

An alert still active when a window opens hides whatever that injection adds to it, so as
few as possible are (:data:`ORDER`): the two service outages come first, each ended once
its window closes, its alerts resolved before the next injection. Then the one-shot kinds,
whose rows cannot be undone: each of their windows is judged against no stream alert at
all, only against the one-shot kinds before it. The anomalies that do not end quickly come
last: stuck bookings (the platform's sweep cancels them only 8 minutes after they were
made), the 5xx burst (its 5-minute ratio takes a minute and a half to fall back) and the
payment anomalies. The second wave (a PSP outage, then the booking API down) inhibits alerts the
first one set off, and Alertmanager must show that.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from alert_rules.alerts import all_alerts
from api.incidents.transports.pagerduty import alertmanager_dedup_key
from core.settings import Settings
from dashboards import links
from simulator.inject import STREAM_KINDS, end, inject
from tests.alerting import deliveries
from tests.alerting.deliveries import Delivery, expected, received
from tests.alerting.sinks import API_HOOK, PAGERDUTY, SLACK, HttpRequest, Mail
from tests.alerting.stack import SCRAPE_SECONDS, SECRETS, Stack, monitoring_stack
from tests.conftest import suite_box
from tests.dashboards.shared_schemas import load

# Its stack may wait for another test file's stack (tests.alerting.stack) first.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

T = Settings().thresholds
ALERTS = {a.name: a for a in all_alerts(T) if a.injection}
URLS = links.PublicUrls.of(Settings())
# Alerts the live simulation sets off without any injection, with why (none: every seed
# alert waits for its anomaly). A listed alert that stops doing so fails the test, and one
# that fires unlisted fails it too, so this list cannot go stale.
FIRES_WITHOUT_INJECTION: dict[str, str] = {}
ACTIVE = sorted(ALERTS)
# The order of the injections (see the module docstring). The failure spike's band needs
# two minutes of Prometheus history, which the ones before give it; the second wave (a PSP
# outage, then the booking API down) inhibits alerts the first one caused.
ORDER = (
    *("webhook-handler-down", "calendar-sync-down"),  # ENDED
    *("double-booking", "chargeback-spike", "psp-mismatch", "slow-tickets", "webhook-backlog"),
    *("stuck-bookings", "api-5xx-burst", "payment-failure-spike"),
    *("psp-outage", "service-down"),  # the second wave
)
# Stream anomalies ended after their window, whose alerts must then resolve.
ENDED = ORDER[:2]
SECOND_WAVE = ("PspOutage", "BookingApiDown")
RESOLVED = {n for n, a in ALERTS.items() if a.injection in ENDED}  # their receivers hear so
# After an injection's alerts were delivered: more than a scrape, an evaluation and the
# test `for`, so whatever else the injection would raise shows inside its own window.
SETTLE_SECONDS = 6.0
LAST = "BookingApiDown"
STREAM_MINUTES = 15  # stream anomalies outlast the test
WAVE_TIMEOUT = 180.0  # per injection; the failure spike waits for two minutes of history
BASELINE_TIMEOUT = 45.0  # for FIRES_WITHOUT_INJECTION to fire, before anything is injected
BASELINE_SECONDS = 12.0  # watched for alerts firing on their own: longer than the test `for`
RESOLVE_TIMEOUT = 150.0  # an ended anomaly's alerts resolve: the 5-minute 5xx ratio decays
BEARER = f"Bearer {SECRETS['alertmanager_api_token']}"


@dataclass
class Scenario:
    stack: Stack
    before: set[str] = field(default_factory=set)  # seed alerts firing before injecting
    injected: dict[str, str] = field(default_factory=dict)  # kind → what inject() did
    conflicts: list[float] = field(default_factory=list)  # conflict counter before/after
    firing: dict[str, dict[str, Any]] = field(default_factory=dict)  # first seen firing
    http: list[HttpRequest] = field(default_factory=list)
    mails: list[Mail] = field(default_factory=list)
    alertmanager: dict[str, dict[str, Any]] = field(default_factory=dict)  # at the end
    seconds: dict[str, float] = field(default_factory=dict)  # injection → time to complete
    raised: dict[str, set[str]] = field(default_factory=dict)  # injection → its window's alerts
    active: dict[str, set[str]] = field(default_factory=dict)  # injection → active at its start
    resolved: dict[str, float | None] = field(default_factory=dict)  # ended → seconds to resolve

    def refresh(self) -> dict[str, set[Delivery]]:
        for alert in self.stack.prometheus_alerts():
            if alert["state"] == "firing":
                self.firing.setdefault(alert["labels"]["alertname"], alert)
        self.http = self.stack.http.received()
        self.mails = self.stack.smtp.received()
        self.alertmanager = {a["labels"]["alertname"]: a for a in self.stack.alertmanager_alerts()}
        return received(self.http, self.mails)

    def suppressed_by(self, target: str, source: str) -> bool:
        am = self.alertmanager
        if target not in am or source not in am:
            return False
        status = am[target]["status"]
        return bool(
            status["state"] == "suppressed" and status["inhibitedBy"] == [am[source]["fingerprint"]]
        )

    def complete(self, names: list[str]) -> bool:
        """Each alert of ``names`` fired, reached its receivers, and suppresses in
        Alertmanager every alert it inhibits that fired too."""
        got = self.refresh()
        now = datetime.now(UTC)
        return all(
            n in self.firing
            and expected(ALERTS[n], now) <= got.get(n, set())
            and all(self.suppressed_by(t, n) for t in ALERTS[n].inhibits if t in self.firing)
            for n in names
        )

    def inject_all(self) -> None:
        """Inject every anomaly, one kind at a time, in :data:`ORDER`."""
        for kind in ORDER:
            names = [n for n in ACTIVE if ALERTS[n].injection == kind]
            self.inject_alone(kind, names)
            if kind in ENDED:
                self.end_and_resolve(kind, names)

    def inject_alone(self, kind: str, names: list[str]) -> None:
        started = time.time()
        self.active[kind] = _pending_or_firing(self.stack) - {"Watchdog"}
        self.injected[kind] = inject(
            kind, self.stack.db_url, self.stack.db_url, T, STREAM_MINUTES, 7, suite_box()
        )
        _until(lambda: self.complete(names), WAVE_TIMEOUT)
        self.seconds[kind] = time.time() - started
        print(f"{kind}: its alerts delivered in {self.seconds[kind]:.1f} s", flush=True)
        time.sleep(SETTLE_SECONDS)
        self.raised[kind] = _raised(self.stack, started, time.time())

    def end_and_resolve(self, kind: str, names: list[str]) -> None:
        """End a stream anomaly and wait until none of its alerts is pending or firing."""
        started = time.time()
        assert end(kind, self.stack.db_url), f"{kind} had already ended"
        if _until(lambda: not set(names) & _pending_or_firing(self.stack), RESOLVE_TIMEOUT):
            self.resolved[kind] = time.time() - started
            print(f"{kind}: ended, its alerts resolved in {self.resolved[kind]:.1f} s", flush=True)
            # Their last ALERTS sample, one evaluation back, stays out of the next window;
            # and Alertmanager tells the receivers they resolved meanwhile.
            time.sleep(2 * SCRAPE_SECONDS)
        else:
            self.resolved[kind] = None


def _raised(stack: Stack, start: float, end: float) -> set[str]:
    """Every alert pending or firing at an evaluation in ``[start, end]`` but the Watchdog."""
    seconds = max(1, math.ceil(end - start))
    found = stack.query(f'count_over_time(ALERTS{{alertname!="Watchdog"}}[{seconds}s])', at=end)
    return {r["metric"]["alertname"] for r in found}


def _pending_or_firing(stack: Stack) -> set[str]:
    return {a["labels"]["alertname"] for a in stack.prometheus_alerts()}


def _until(check: Callable[[], bool], timeout: float) -> bool:
    """Whether ``check`` came true in time; the tests then say what did not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


def _conflicts(stack: Stack) -> float:
    return float(stack.query("sum(opsdeck_booking_conflicts_total)")[0]["value"][1])


def _firing(stack: Stack) -> set[str]:
    """Seed alerts firing now. Pending ones do not count: right after the first scrapes a
    5-minute rate spans two samples, and a few 5xx among 200 requests is 1.5 % for one
    evaluation; an alert has to hold for its ``for`` (shortened here) to reach anyone."""
    alerts = stack.prometheus_alerts()
    return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"} & set(ALERTS)


def _firing_during(stack: Stack, seconds: float) -> set[str]:
    """Every seed alert seen firing while the baseline runs for ``seconds``."""
    seen: set[str] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen |= _firing(stack)
        time.sleep(1.0)
    return seen | _firing(stack)


@pytest.fixture(scope="module")
def scenario(
    admin_url: str,
    history_template: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Scenario]:
    work = tmp_path_factory.mktemp("e2e")
    with monitoring_stack(admin_url, history_template, work, gateway=True) as stack:
        run = Scenario(stack)
        stack.wait(
            "5-minute API ratio",
            lambda: bool(stack.query("opsdeck:api_requests:ratio_5xx_rate5m")),
            timeout=60,
        )
        _until(lambda: set(FIRES_WITHOUT_INJECTION) <= _firing(stack), BASELINE_TIMEOUT)
        run.before = _firing_during(stack, BASELINE_SECONDS)
        run.conflicts.append(_conflicts(stack))
        run.inject_all()
        run.conflicts.append(_conflicts(stack))
        time.sleep(3)  # a late duplicate or stray notification would arrive meanwhile
        run.refresh()
        yield run


def _webhooks(run: Scenario, path: str, name: str, status: str = "firing") -> list[HttpRequest]:
    return [
        r
        for r in run.http
        if r.path == path
        and r.body.get("status") == status
        and any(a["labels"]["alertname"] == name for a in r.body["alerts"])
    ]


def _api_time(run: Scenario, name: str) -> datetime:
    hooks = _webhooks(run, API_HOOK, name)
    assert hooks, f"{name}: nothing reached opsdeck's API hook"
    return datetime.fromtimestamp(hooks[0].at, UTC)


def _check_prometheus_alert(run: Scenario, name: str) -> None:
    alert = ALERTS[name]
    fired = run.firing.get(name)
    assert fired is not None, f"{name} never fired in Prometheus; injected: {run.injected}"
    assert fired["labels"]["severity"] == alert.severity
    assert fired["labels"]["team"] == alert.team
    notes = fired["annotations"]
    assert notes["summary"] == alert.summary
    assert notes["runbook_url"] == URLS.runbook_url(name)
    assert "{{" not in notes["description"]
    assert "{value}" not in notes["description"]


def _check_webhook(request: HttpRequest, name: str, receiver: str) -> dict[str, Any]:
    assert request.headers["authorization"] == BEARER
    assert request.headers["content-type"].startswith("application/json")
    body = request.body
    assert (body["version"], body["status"], body["receiver"]) == ("4", "firing", receiver)
    assert body["groupKey"]
    assert body["groupLabels"]["alertname"] == name
    (alert,) = [a for a in body["alerts"] if a["labels"]["alertname"] == name]
    assert alert["status"] == "firing"
    assert alert["labels"]["severity"] == ALERTS[name].severity
    assert alert["annotations"]["runbook_url"] == URLS.runbook_url(name)
    return dict(alert["annotations"])


def _check_pagerduty(run: Scenario, name: str, group_key: str) -> None:
    alert = ALERTS[name]
    events = [r.body for r in run.http if r.path == PAGERDUTY]
    mine = [e for e in events if e["payload"]["summary"].startswith(f"{name}:")]
    if alert.severity not in deliveries.PD_SEVERITY:
        assert not mine, f"{name} ({alert.severity}) must not page"
        return
    actions = [e["event_action"] for e in mine]
    assert actions == ["trigger", "resolve"] if name in RESOLVED else ["trigger"], actions
    for event in mine:
        assert event["routing_key"] == SECRETS["pagerduty_routing_key"]
        # opsdeck's own PagerDuty events for this incident use the same key: one alert.
        assert event["dedup_key"] == alertmanager_dedup_key(group_key)
        payload = event["payload"]
        assert payload["summary"] == f"{name}: {alert.summary}"
        assert payload["severity"] == deliveries.PD_SEVERITY[alert.severity]
        assert payload["custom_details"]["runbook_url"] == URLS.runbook_url(name)
        assert payload["custom_details"]["team"] == alert.team


def _check_slack(run: Scenario, name: str, description: str) -> None:
    alert = ALERTS[name]
    posts = [r.body for r in run.http if r.path == SLACK]
    mine = [p for p in posts if p["attachments"][0]["title"].split()[1] == name]
    assert mine, f"{name}: nothing reached Slack"
    states = ["FIRING", "RESOLVED"] if name in RESOLVED else ["FIRING"]
    assert [p["attachments"][0]["title"].split()[0] for p in mine] == [f"[{s}]" for s in states]
    for post, state in zip(mine, states, strict=True):
        assert post["channel"] == deliveries.slack_channel(alert.team)
        attachment = post["attachments"][0]
        assert attachment["title"] == f"[{state}] {name} ({alert.severity})"
        assert description in attachment["text"]
        assert alert.suggested_action in attachment["text"]
        assert URLS.runbook_url(name) in [a["url"] for a in attachment["actions"]]


def _check_mail(run: Scenario, name: str) -> None:
    subjects = {
        deliveries.ENG_ONCALL: f"[opsdeck {ALERTS[name].severity}] {name}",
        deliveries.TEAM_MAILBOXES["finance"]: f"[opsdeck finance] {name}",
        deliveries.TEAM_MAILBOXES["support"]: f"[opsdeck support] {name}",
    }
    for mail in run.mails:
        if str(mail.message["Subject"]).rsplit(" ", 1)[-1] != name:
            continue
        (recipient,) = mail.recipients
        assert mail.message["To"] == recipient
        assert mail.message["Subject"] == subjects[recipient]
        assert mail.sender == "opsdeck@example.com"
        assert mail.login == ("opsdeck", SECRETS["smtp_password"])


@pytest.mark.parametrize("name", ACTIVE)
def test_alert_fires_and_reaches_exactly_its_receivers(scenario: Scenario, name: str) -> None:
    if name in FIRES_WITHOUT_INJECTION:
        assert name in scenario.before, f"{name} no longer fires by itself: unlist it"
    else:
        assert name not in scenario.before, f"{name} fired before its anomaly was injected"
    _check_prometheus_alert(scenario, name)
    got = received(scenario.http, scenario.mails).get(name, set())
    assert got == expected(ALERTS[name], _api_time(scenario, name)), scenario.seconds
    (hook,) = _webhooks(scenario, API_HOOK, name)
    notes = _check_webhook(hook, name, deliveries.RECEIVER[ALERTS[name].severity])
    _check_pagerduty(scenario, name, hook.body["groupKey"])
    _check_slack(scenario, name, notes["description"])
    _check_mail(scenario, name)


@pytest.mark.parametrize("kind", sorted({str(a.injection) for a in ALERTS.values()}))
def test_an_injection_raises_only_its_own_alerts(scenario: Scenario, kind: str) -> None:
    own = {n for n, a in ALERTS.items() if a.injection == kind}
    explained = {t for n in own for t in ALERTS[n].inhibits}
    raised, active = scenario.raised[kind], scenario.active[kind]
    assert own <= raised, f"{kind} did not raise {own - raised} in its window"
    assert raised <= own | explained | active, (
        f"{kind} also raised {sorted(raised - own - explained - active)}; "
        f"logs in {scenario.stack.logs}"
    )


@pytest.mark.parametrize("kind", ENDED)
def test_ending_an_anomaly_resolves_its_alerts(scenario: Scenario, kind: str) -> None:
    """A service that comes back is no longer an outage; and the windows after it are
    judged against an alert list without it."""
    assert scenario.resolved[kind] is not None, (
        f"{kind}'s alerts still active {RESOLVE_TIMEOUT:.0f} s after it ended"
    )
    for name in (n for n, a in ALERTS.items() if a.injection == kind):
        assert _webhooks(scenario, API_HOOK, name, "resolved"), f"{name}: no resolved notice"


def test_the_windows_after_the_ended_anomalies_start_without_stream_alerts(
    scenario: Scenario,
) -> None:
    """The one-shot injections come after every ended one, so none of their windows can
    hide a stream alert it raises."""
    stream = {n for n, a in ALERTS.items() if a.injection in ENDED}
    one_shot = [k for k in scenario.active if k not in STREAM_KINDS]
    assert one_shot
    for kind in one_shot:
        assert not scenario.active[kind] & stream, (kind, scenario.active[kind])


def test_the_double_booking_injection_raised_the_conflict_count(scenario: Scenario) -> None:
    """BookingConflictRateHigh fires on the live stream alone (FIRES_WITHOUT_INJECTION), so
    show that the injection itself reached Prometheus."""
    match = re.match(r"(\d+) double bookings", scenario.injected["double-booking"])
    assert match, scenario.injected["double-booking"]
    before, after = scenario.conflicts
    assert after - before >= int(match.group(1))


def test_booking_api_down_inhibits_the_alerts_it_causes(scenario: Scenario) -> None:
    am = scenario.alertmanager
    assert am[LAST]["status"]["state"] == "active"
    for target in ALERTS[LAST].inhibits:
        assert target in scenario.firing, f"{target} is not firing in Prometheus"
        assert scenario.suppressed_by(target, LAST), am.get(target)


def test_a_psp_outage_inhibits_the_failure_spike_it_explains(scenario: Scenario) -> None:
    source, target = "PspOutage", "PaymentFailureRateSpike"
    assert ALERTS[source].inhibits == (target,)
    assert target in scenario.firing, f"{target} is not firing in Prometheus"
    assert scenario.alertmanager[source]["status"]["state"] == "active"
    assert scenario.suppressed_by(target, source), scenario.alertmanager.get(target)


def test_suspending_payouts_inhibits_the_lower_drift_alert(scenario: Scenario) -> None:
    source, target = "PaymentReconciliationDriftSuspendPayouts", "PaymentReconciliationDriftHigh"
    assert ALERTS[source].inhibits == (target,)
    assert scenario.alertmanager[source]["status"]["state"] == "active"
    assert scenario.suppressed_by(target, source), scenario.alertmanager.get(target)


def test_nothing_else_reached_the_sinks(scenario: Scenario) -> None:
    got = received(scenario.http, scenario.mails)
    assert set(got) <= set(ACTIVE), {k: v for k, v in got.items() if k not in ACTIVE}
    resolved = {
        a["labels"]["alertname"]
        for r in scenario.http
        if r.path == API_HOOK and r.body.get("status") == "resolved"
        for a in r.body["alerts"]
    }
    assert resolved == RESOLVED


def test_the_order_injects_every_kind_once() -> None:
    assert sorted(ORDER) == sorted({str(a.injection) for a in ALERTS.values()})
    assert {str(ALERTS[n].injection) for n in SECOND_WAVE} == set(ORDER[-len(SECOND_WAVE) :])


def test_every_alert_but_opsdecks_own_has_an_injection() -> None:
    """opsdeck's own alerts are proven where their fault can be made (test_self_watch)."""
    missing = {a.name for a in all_alerts(T) if not a.injection and a.team != "opsdeck"}
    assert not missing, missing


def test_pagerduty_events_match_the_events_v2_schema(scenario: Scenario) -> None:
    document = load("pagerduty", "events-v2.openapiv3.json")
    pointer = "#/paths/~1enqueue/post/requestBody/content/application~1json/schema"
    validator = jsonschema.Draft7Validator({**document, "$ref": pointer})
    events = [r.body for r in scenario.http if r.path == PAGERDUTY]
    assert events
    for event in events:
        validator.validate(event)
