"""Seed 001's "Webhook Retry Queue > 50" fires through the real Prometheus, with the
repository's own rule and scrape config, when ``opsdeck simulate --inject webhook-backlog``
makes a partner endpoint fail."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from core.settings import Thresholds
from opsdeck.embedded import free_port
from opsdeck.supervisor import Service, Supervisor, http_ready
from tests.alerting.stack import prometheus_config_for_test, rules_for_test
from tests.conftest import opsdeck_env, run_opsdeck
from tests.webhooks.harness import wait_for, workers

pytestmark = pytest.mark.slow
ALERT = "WebhookRetryQueueHigh"


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10)
    return list(answer.json()["data"]["result"])


def _alert_state(base: str) -> str | None:
    alerts = httpx.get(f"{base}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    states = [a["state"] for a in alerts if a["labels"]["alertname"] == ALERT]
    return states[0] if states else None


def test_the_retry_queue_alert_fires_through_prometheus(
    db_url: str, logs: Path, tmp_path: Path
) -> None:
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus is not installed (make test installs it)"
    supervisor = Supervisor()
    with workers(db_url, logs) as (worker,):
        port = free_port(0)
        targets = {"prometheus": f"127.0.0.1:{port}", "opsdeck-worker": f"127.0.0.1:{worker.port}"}
        unused = f"127.0.0.1:{free_port(0)}"  # no Alertmanager: firing in Prometheus is the proof
        config = prometheus_config_for_test(targets, unused, rules_for_test(tmp_path / "rules"))
        config_file = tmp_path / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=True), encoding="utf-8")
        base = f"http://127.0.0.1:{port}"
        try:
            supervisor.start(
                Service(
                    name="prometheus",
                    argv=[
                        prometheus,
                        f"--config.file={config_file}",
                        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                    ],
                    log_file=logs / "prometheus.log",
                    ready=http_ready(f"{base}/-/ready"),
                )
            )
            wait_for(
                "the worker scraped",
                lambda: bool(_query(base, 'opsdeck_webhook_queue_depth{direction="outbound"}')),
                60,
            )
            assert _alert_state(base) is None
            env = opsdeck_env(DATABASE_URL=db_url)
            done = run_opsdeck("simulate", "--inject", "webhook-backlog", env=env)
            assert done.returncode == 0, done.stderr
            assert "webhook-backlog" in done.stdout
            wait_for("the alert firing", lambda: _alert_state(base) == "firing", 90, 0.5)
            (depth,) = _query(base, "sum(opsdeck_webhook_queue_depth)")
            threshold = Thresholds().webhook_queue_depth
            assert float(depth["value"][1]) > threshold
        finally:
            supervisor.stop_all()
