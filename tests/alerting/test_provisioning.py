"""Grafana provisioning, Prometheus config and docker-compose.yml: valid, consistent with
the dashboards' fixed uids, and every mounted path present in the repository."""

from __future__ import annotations

from typing import Any

import jsonschema
import yaml

from dashboards.panels import ALERTMANAGER_UID, POSTGRES_TYPE, POSTGRES_UID, PROMETHEUS_UID
from tests.conftest import REPO
from tests.dashboards.shared_schemas import load

GRAFANA = REPO / "provisioning" / "grafana"


def _yaml(path: str) -> Any:
    return yaml.safe_load((REPO / path).read_text())


def test_datasources_have_the_uids_dashboards_use() -> None:
    sources = {
        d["uid"]: d for d in _yaml("provisioning/grafana/datasources/opsdeck.yaml")["datasources"]
    }
    assert sources[PROMETHEUS_UID]["type"] == "prometheus"
    assert sources[ALERTMANAGER_UID]["type"] == "alertmanager"
    assert sources[ALERTMANAGER_UID]["jsonData"]["implementation"] == "prometheus"
    postgres = sources[POSTGRES_UID]
    assert postgres["type"] == POSTGRES_TYPE
    assert postgres["user"] == "opsdeck_grafana"
    assert postgres["secureJsonData"]["password"].startswith("$")


def test_dashboard_provider_loads_the_generated_folder() -> None:
    provider = _yaml("provisioning/grafana/dashboards/opsdeck.yaml")["providers"][0]
    assert provider["folder"] == "opsdeck"
    assert provider["allowUiUpdates"] is False
    compose = _yaml("docker-compose.yml")
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"grafana-dashboards:{provider['options']['path']}:ro" in mounts
    provision = compose["services"]["provision"]
    assert "grafana-dashboards:/var/lib/opsdeck/provisioned/dashboards" in provision["volumes"]
    assert provision["command"][1:3] == ["dashboards", "provision"]


def test_prometheus_scrapes_every_15s_with_rules_and_alertmanager() -> None:
    config = _yaml("provisioning/prometheus/prometheus.yml")
    assert config["global"]["scrape_interval"] == "15s"
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert jobs["opsdeck-exporter"]["static_configs"][0]["targets"] == ["exporter:9464"]
    assert "opsdeck-api" in jobs
    assert config["rule_files"] == ["/etc/prometheus/rules/*.rules.yaml"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    command = _yaml("docker-compose.yml")["services"]["prometheus"]["command"]
    retention = next(c for c in command if c.startswith("--storage.tsdb.retention.time="))
    assert int(retention.split("=")[1].removesuffix("d")) >= 396  # 13 months


def test_compose_validates_and_mounts_exist() -> None:
    compose = _yaml("docker-compose.yml")
    # The compose schema names draft-07 by an https URL jsonschema does not know; validate
    # with that draft explicitly.
    jsonschema.Draft7Validator(load("compose", "compose-spec.json")).validate(compose)
    services = compose["services"]
    for name in ("postgres", "redis", "prometheus", "alertmanager", "grafana", "exporter", "api"):
        assert name in services
    for name in ("postgres", "redis", "prometheus", "alertmanager", "grafana", "exporter", "api"):
        assert "healthcheck" in services[name], name
    assert services["simulator"]["profiles"] == ["demo"]
    grafana = services["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), source
    assert (REPO / "Dockerfile").exists()
