"""The monitoring stack of the end-to-end tests, on one machine.

A database cloned from the suite's simulated history, live traffic writing into it, a real
``opsdeck exporter``, and the Debian ``prometheus`` and ``prometheus-alertmanager`` binaries
running the repository's own configs: ``provisioning/prometheus/prometheus.yml`` and the
committed rule files, localized by :mod:`alert_rules.localize` exactly as ``opsdeck demo``
localizes them, and ``alert_rules/alertmanager.yml`` with every receiver pointed at the
local sinks of :mod:`tests.alerting.sinks`.

Only timings differ from production, and only in the test copies: scrape and evaluation
every second, alerts' ``for`` shortened (see :data:`FOR_IN_TEST`), Alertmanager's group
waits shortened. Every expression, threshold, label, route, receiver and inhibition is the
repository's own.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml

from alert_rules.localize import LocalAlerting, alertmanager_config, prometheus_config
from alert_rules.rule_files import ALERTS_FILE, RECORDING_FILE
from core.settings import SimulatorSettings
from opsdeck.embedded import free_port
from opsdeck.supervisor import Service, Supervisor, http_ready
from tests.alerting.sinks import HEARTBEAT, PAGERDUTY, SLACK, HttpSink, SmtpSink
from tests.conftest import (
    REPO,
    create_database,
    drop_database,
    opsdeck_env,
    service_url,
    with_database,
)
from tests.exporters.harness import Exporter, Traffic, db_now
from tests.webhooks.harness import WorkerProcess, endpoint, workers
from tests.webhooks.servers import partner

# Scrape and rule evaluation interval of the test stacks; also each scrape's timeout, which
# a busy 2-core machine needs to be more than one second.
SCRAPE_SECONDS = 2
Lane = Literal["full", "light"]  # see _one_stack_at_a_time
TRAFFIC_RATE = 30  # payment attempts a second: enough for every rate, light on 2 CPUs
# Share of charges the PSP feed misses or reports differently: the simulator's default;
# the exporter tests' 2 % would push the 24 h drift past its threshold within minutes,
# injection or not.
PSP_MISMATCH_SHARE = SimulatorSettings().psp_missing_share
# The alerts' `for` in the test copy of the rules. The promtool unit tests
# (alert_rules/tests/alerts.test.yaml) prove the repository's exact `for` timings; here a
# few seconds show that the condition holds on real data and the alert goes all the way.
# Drift above 1 % also passes 0.5 %: a growing drift crosses 0.5 % first, so the
# suspend-payouts alert is made to fire later and its inhibition of the 0.5 % alert is seen
# after the 0.5 % alert has been delivered, as it happens in production.
FOR_IN_TEST = {"PaymentReconciliationDriftSuspendPayouts": "20s"}
DEFAULT_FOR_IN_TEST = "5s"
AM_GROUP_WAIT = "1s"
AM_GROUP_INTERVAL = "2s"
API_SECRET_KEY = "monitoring-stack-secret-key-0123456789abcdef"
PARTNER_EVENT = "booking.confirmed"
# tests.webhooks.servers.Partner's paths: one takes everything, one refuses one request in
# ten. Never two refusals in a row, so the endpoint's circuit stays closed and the refused
# deliveries recover on their first retry: retries without a queue. (Refusing every first
# try would trip the circuit, and the queue behind it would set off the alert by itself.)
PARTNER_PATHS = ("/ok", "/flaky/10")
SECRETS = {
    "alertmanager_api_token": "am-token-" + "x" * 24,
    "pagerduty_routing_key": "R0PSDECKE2E0000000000000000000000",
    "smtp_password": "smtp-secret-e2e",
}


@dataclass
class Stack:
    db_url: str
    exporter: Exporter  # the first replica
    traffic: Traffic
    http: HttpSink
    smtp: SmtpSink
    prometheus_url: str
    alertmanager_url: str
    started: float  # time.time() when Prometheus started scraping
    logs: Path
    replicas: list[Exporter] = field(default_factory=list)  # every exporter, scraped alike
    worker: WorkerProcess | None = None  # the webhook worker, with ``gateway``

    def _get(self, url: str, **params: Any) -> Any:
        response = httpx.get(url, params=params, timeout=30)
        assert response.status_code == 200, f"{url} {params}: {response.text}"
        return response.json()

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result vector (or the [time, value] of a scalar)."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        data = self._get(f"{self.prometheus_url}/api/v1/query", **params)["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Any]:
        url = f"{self.prometheus_url}/api/v1/query_range"
        data = self._get(url, query=expr, start=start, end=end, step=step)["data"]
        return list(data["result"])

    def prometheus_alerts(self) -> list[dict[str, Any]]:
        return list(self._get(f"{self.prometheus_url}/api/v1/alerts")["data"]["alerts"])

    def alertmanager_alerts(self) -> list[dict[str, Any]]:
        """Alertmanager's alerts, suppressed (silenced or inhibited) ones included."""
        return list(self._get(f"{self.alertmanager_url}/api/v2/alerts"))

    def wait(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.5)
        raise AssertionError(f"no {what} in {timeout:.0f} s; logs in {self.logs}")


def rules_for_test(directory: Path) -> list[str]:
    """The committed rule files with test timings; expressions untouched."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in (RECORDING_FILE, ALERTS_FILE):
        rules = yaml.safe_load((REPO / name).read_text(encoding="utf-8"))
        for group in rules["groups"]:
            if "interval" in group:
                group["interval"] = f"{SCRAPE_SECONDS}s"
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = FOR_IN_TEST.get(rule["alert"], DEFAULT_FOR_IN_TEST)
        path = directory / Path(name).name
        path.write_text(yaml.safe_dump(rules, sort_keys=True), encoding="utf-8")
        paths.append(str(path))
    return paths


def prometheus_config_for_test(
    targets: dict[str, str], alertmanager: str, rule_files: list[str]
) -> dict[str, Any]:
    config = prometheus_config(targets, alertmanager, rule_files)
    interval = f"{SCRAPE_SECONDS}s"
    config["global"].update(
        scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval
    )
    for job in config["scrape_configs"]:
        job.pop("scrape_interval", None)
    return config


def alertmanager_config_for_test(local: LocalAlerting) -> str:
    """The repository's routing with local receivers and short group waits."""
    config = yaml.safe_load(alertmanager_config(local))

    def shorten(route: dict[str, Any]) -> None:
        for key, value in (("group_wait", AM_GROUP_WAIT), ("group_interval", AM_GROUP_INTERVAL)):
            if key in route or route is config["route"]:
                route[key] = value
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    return yaml.safe_dump(config, sort_keys=False)


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError(
        f"{names[0]} is not installed (make test installs it: scripts/system-deps.sh)"
    )


def _start_alertmanager(
    supervisor: Supervisor, work: Path, http: HttpSink, smtp: SmtpSink, api_url: str | None
) -> str:
    local = LocalAlerting(
        api_url or http.url,
        secrets_dir=work / "secrets",
        pagerduty_url=http.url + PAGERDUTY,
        smtp=smtp.smarthost,
        secrets={**SECRETS, "slack_webhook_url": http.url + SLACK},
        heartbeat_url=http.url + HEARTBEAT,
    )
    config = work / "alertmanager.yml"
    config.write_text(alertmanager_config_for_test(local), encoding="utf-8")
    port = free_port(0)
    supervisor.start(
        Service(
            name="alertmanager",
            argv=[
                _binary("prometheus-alertmanager", "alertmanager"),
                f"--config.file={config}",
                f"--storage.path={work / 'alertmanager'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            log_file=work / "alertmanager.log",
            ready=http_ready(f"http://127.0.0.1:{port}/-/ready"),
        )
    )
    return f"127.0.0.1:{port}"


def _start_prometheus(
    supervisor: Supervisor, work: Path, alertmanager: str, services: dict[str, list[str]]
) -> str:
    port = free_port(0)
    firsts = {job: addresses[0] for job, addresses in services.items()}
    targets = {"prometheus": f"127.0.0.1:{port}", "alertmanager": alertmanager, **firsts}
    config = prometheus_config_for_test(targets, alertmanager, rules_for_test(work / "rules"))
    for job in config["scrape_configs"]:  # every replica of a job, scraped alike
        if job["job_name"] in services:
            job["static_configs"] = [{"targets": services[job["job_name"]]}]
    path = work / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=True), encoding="utf-8")
    supervisor.start(
        Service(
            name="prometheus",
            argv=[
                _binary("prometheus"),
                f"--config.file={path}",
                f"--storage.tsdb.path={work / 'prometheus'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            log_file=work / "prometheus.log",
            ready=http_ready(f"http://127.0.0.1:{port}/-/ready"),
        )
    )
    return f"http://127.0.0.1:{port}"


def _start_api(supervisor: Supervisor, work: Path, db_url: str, redis_url: str) -> str:
    port = free_port(0)
    env = opsdeck_env(
        DATABASE_URL=service_url(db_url),
        REDIS_URL=redis_url,
        OPSDECK_API__SECRET_KEY=API_SECRET_KEY,
    )
    supervisor.start(
        Service(
            name="opsdeck-api",
            argv=[
                sys.executable,
                "-m",
                "opsdeck",
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            log_file=work / "api.log",
            env=env,
            ready=http_ready(f"http://127.0.0.1:{port}/healthz"),
        )
    )
    return f"127.0.0.1:{port}"


def _start_gateway(cleanup: ExitStack, work: Path, db_url: str) -> WorkerProcess:
    """The webhook worker tailing the live traffic's booking confirmations to a partner
    that takes them all and one that refuses one in ten (retried, recovered)."""
    receiver = cleanup.enter_context(partner())
    for path in PARTNER_PATHS:  # confirmations only: a few a second, far from the queue alert
        endpoint(
            db_url,
            receiver.url(path),
            event_types=(PARTNER_EVENT,),
            description=f"monitoring stack {path}",
        )
    started = workers(
        db_url,
        work,
        OPSDECK_WEBHOOKS__TAIL_ENABLED="true",
        # A quick first retry recovers the refused deliveries; the later ones keep an
        # injected backlog queued for the rest of the test.
        OPSDECK_WEBHOOKS__RETRY_SCHEDULE_SECONDS="[1, 60, 120]",
    )
    (worker,) = cleanup.enter_context(started)
    return worker


def _leader_caught_up(replicas: list[Exporter], until: datetime) -> None:
    """Whichever replica wins the election has folded the history up to ``until``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for replica in replicas:
            if replica.process.poll() is not None:
                raise AssertionError(f"exporter exited: {replica.log.read_text()[-3000:]}")
        leaders = [r for r in replicas if r.leader_flag() == 1.0]
        if leaders:
            leaders[0].wait_caught_up(until)
            return
        time.sleep(0.2)
    raise AssertionError(f"no exporter replica leads after 60 s; logs in {replicas[0].log}")


@contextmanager
def _one_stack_at_a_time(lane: Lane) -> Iterator[None]:
    """Parallel test processes run one monitoring stack at a time in each lane: two stacks
    (each with its own traffic, exporter, Prometheus and Alertmanager) on 2 cores slow
    scrapes past their timeout. A light stack (the demo's rate, a payment attempt every
    4 s, or a few a second, against the full stacks' 30) costs little, so it may run in a
    lane of its own beside the full stacks' (unless one late scrape would fail its test).
    The lock is per test run and released when the stack stops."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))
    path = Path(tempfile.gettempdir()) / f"opsdeck-monitoring-stack-{run}-{lane}.lock"
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def monitoring_stack(
    admin_url: str,
    template: str,
    work: Path,
    api_url: str | None = None,
    redis_url: str | None = None,
    gateway: bool = False,
    traffic_rate: float = TRAFFIC_RATE,
    exporters: int = 1,
    lane: Lane = "full",
) -> Iterator[Stack]:
    """Everything started, the exporter caught up with the history, and Prometheus
        evaluating the rules on its scrapes. Alertmanager's opsdeck receivers post to
        ``api_url`` (a real opsdeck API) when given, else to the HTTP sink. Prometheus also
        scrapes a running ``opsdeck api`` with ``redis_url``, and ``opsdeck worker`` with
        ``gateway``. The live traffic makes ``traffic_rate`` payment attempts a second; ``exporters`` replicas
        of the exporter run side by side, all scraped (one leads, the others stand by). A stack in
    ``lane`` "light" (a few payment attempts a second at most) may run beside one in lane
    "full"."""
    name = create_database(admin_url, template)
    url = with_database(admin_url, name)
    supervisor = Supervisor()
    with ExitStack() as cleanup:
        cleanup.enter_context(_one_stack_at_a_time(lane))
        cleanup.callback(drop_database, admin_url, name)
        http = HttpSink().start()
        cleanup.callback(http.stop)
        smtp = SmtpSink().start()
        cleanup.callback(smtp.stop)
        traffic = cleanup.enter_context(
            Traffic(url, rate=traffic_rate, psp_mismatch_share=PSP_MISMATCH_SHARE)
        )
        replicas = [Exporter(url, work, f"exporter{i}") for i in range(exporters)]
        for replica in replicas:
            cleanup.callback(replica.stop)
        _leader_caught_up(replicas, db_now(url))
        cleanup.callback(supervisor.stop_all)
        services = {"opsdeck-exporter": [f"127.0.0.1:{r.port}" for r in replicas]}
        if redis_url is not None:
            services["opsdeck-api"] = [_start_api(supervisor, work, url, redis_url)]
        worker = _start_gateway(cleanup, work, url) if gateway else None
        if worker is not None:
            services["opsdeck-worker"] = [f"127.0.0.1:{worker.port}"]
        alertmanager = _start_alertmanager(supervisor, work, http, smtp, api_url)
        prometheus = _start_prometheus(supervisor, work, alertmanager, services)
        stack = Stack(
            url,
            replicas[0],
            traffic,
            http,
            smtp,
            prometheus,
            f"http://{alertmanager}",
            time.time(),
            work,
            replicas,
            worker,
        )
        stack.wait(
            "recorded 24 h windows in Prometheus",
            lambda: bool(stack.query("opsdeck:bookings_confirmed:increase24h")),
            timeout=60,
        )
        yield stack
