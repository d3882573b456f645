"""The repository's Prometheus and Alertmanager configs, rewritten to run on one machine.

docker-compose reaches services by name (``api:8000``) and secrets under
``/run/secrets``; ``opsdeck demo`` and the test suite run the same files with local
addresses and a directory of secret files instead. Nothing else changes, so what runs
locally is what production routes.

The dead man's switch's heartbeat URL is written into the config (Alertmanager 0.25 reads
no webhook URL from a file). Without one, as in a demo with no outside switch, the
Watchdog is routed as in production to a receiver with no integration: it goes nowhere
rather than failing, which would raise ``AlertmanagerFailedToSendAlerts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from core import assets

PROMETHEUS_CONFIG = assets.prometheus_config()
ALERTMANAGER_CONFIG = assets.alert_rules() / "alertmanager.yml"
RULES_GLOB = str(assets.alert_rules() / "*.rules.yaml")
SECRETS = "/run/secrets/"
API = "http://api:8000"
PAGERDUTY = "https://events.pagerduty.com/v2/enqueue"
SMTP = "smtp:587"
HEARTBEAT = "https://deadmansswitch.invalid/heartbeat"
DEADMANSSWITCH = "deadmansswitch"
SECRET_FILES = (
    "alertmanager_api_token",
    "pagerduty_routing_key",
    "slack_webhook_url",
    "smtp_password",
)


@dataclass
class LocalAlerting:
    """Where the local Alertmanager sends what production sends to outside services."""

    api_url: str
    secrets_dir: Path
    pagerduty_url: str = "http://127.0.0.1:9/v2/enqueue"
    smtp: str = "127.0.0.1:25"
    secrets: dict[str, str] = field(default_factory=dict)
    heartbeat_url: str | None = None  # the dead man's switch; None: the Watchdog goes nowhere


def prometheus_config(
    targets: dict[str, str], alertmanager: str, rule_files: Sequence[str] = (RULES_GLOB,)
) -> dict[str, Any]:
    """prometheus.yml with local targets (job name → ``host:port``), the local Alertmanager
    and local rule files. Jobs with no local target are left out; a target for a job the
    file does not have is an error, so a renamed job cannot silently stop being scraped."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    unknown = set(targets) - {job["job_name"] for job in config["scrape_configs"]}
    if unknown:
        raise ValueError(f"{PROMETHEUS_CONFIG.name} has no job {', '.join(sorted(unknown))}")
    config["rule_files"] = list(rule_files)
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [alertmanager]
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
            jobs.append(job)
    config["scrape_configs"] = jobs
    return config


def host_port(url: str) -> str:
    """``http://127.0.0.1:9464/metrics`` → ``127.0.0.1:9464`` (a scrape target)."""
    return urlsplit(url).netloc


def alertmanager_config(local: LocalAlerting) -> str:
    """alertmanager.yml with local URLs, secret files (written into ``secrets_dir``) and the
    heartbeat URL."""
    local.secrets_dir.mkdir(parents=True, exist_ok=True)
    for name in SECRET_FILES:
        path = local.secrets_dir / name
        path.write_text(local.secrets.get(name, "local-placeholder"), encoding="utf-8")
        path.chmod(0o600)
    text = ALERTMANAGER_CONFIG.read_text(encoding="utf-8")
    replacements = {
        SECRETS: f"{local.secrets_dir}/",
        API: local.api_url.rstrip("/"),
        PAGERDUTY: local.pagerduty_url,
        f"smtp_smarthost: {SMTP}": f"smtp_smarthost: {local.smtp}",
        "smtp_require_tls: true": "smtp_require_tls: false",
        HEARTBEAT: local.heartbeat_url or HEARTBEAT,
    }
    for old, new in replacements.items():
        if old not in text:
            raise ValueError(f"{ALERTMANAGER_CONFIG.name} no longer contains {old!r}")
        text = text.replace(old, new)
    return text if local.heartbeat_url else without_heartbeat(text)


def without_heartbeat(text: str) -> str:
    """The config with the dead man's switch's receiver left without an integration."""
    config: dict[str, Any] = yaml.safe_load(text)
    (receiver,) = [r for r in config["receivers"] if r["name"] == DEADMANSSWITCH]
    for key in [k for k in receiver if k != "name"]:
        del receiver[key]
    return yaml.safe_dump(config, sort_keys=False)
