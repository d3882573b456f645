"""Settings: environment over YAML, and one clear line with status 2 for any bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsdeck.settings import SettingsError, load_settings
from tests.conftest import opsdeck_env, run_opsdeck


def test_environment_overrides_yaml(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "opsdeck.yaml"
    config.write_text(
        "database_url: postgresql://a@db/ops\nexporter:\n  port: 9000\nthresholds:\n  api_5xx_rate: 0.02\n"
    )
    clean_env.setenv("OPSDECK_EXPORTER__PORT", "9100")
    settings = load_settings(config)
    assert settings.database_url == "postgresql://a@db/ops"
    assert settings.platform_url == "postgresql://a@db/ops"  # defaults to DATABASE_URL
    assert settings.exporter.port == 9100
    assert settings.thresholds.api_5xx_rate == 0.02


def test_platform_url_can_differ(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DATABASE_URL", "postgresql://a@ops/ops")
    clean_env.setenv("PLATFORM_DATABASE_URL", "postgresql://reader@replica/platform")
    assert load_settings().platform_url == "postgresql://reader@replica/platform"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DATABASE_URL", "mysql://root@db/x", "DATABASE_URL: expected a URL like postgresql://"),
        ("REDIS_URL", "http://cache", "REDIS_URL: expected a URL like redis://"),
        ("PROMETHEUS_URL", "prometheus:9090", "PROMETHEUS_URL: expected a URL like http://"),
        (
            "OPSDECK_EXPORTER__PORT",
            "70000",
            "OPSDECK_EXPORTER__PORT (exporter.port): Input should be less",
        ),
        (
            "OPSDECK_THRESHOLDS__API_5XX_RATE",
            "two",
            "OPSDECK_THRESHOLDS__API_5XX_RATE (thresholds.api_5xx_rate)",
        ),
        ("OPSDECK_EXPORTR__PORT", "1", "OPSDECK_EXPORTR__PORT: unknown setting"),
    ],
)
def test_bad_values_name_the_setting(
    clean_env: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("exporter: [1, 2", "OPSDECK_CONFIG: {path} is not valid YAML at line 1"),
        ("- just\n- a list\n", "OPSDECK_CONFIG: {path} must hold a mapping of settings"),
        ("nonsense: 1\n", "OPSDECK_NONSENSE (nonsense): unknown setting"),
    ],
)
def test_bad_yaml_is_one_line(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, content: str, expected: str
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    assert str(caught.value) == expected.format(path=config) or str(caught.value).startswith(
        expected.format(path=config)
    )


def test_missing_config_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("OPSDECK_CONFIG", str(tmp_path / "absent.yaml"))
    with pytest.raises(SettingsError, match=r"^OPSDECK_CONFIG: cannot read .*absent.yaml"):
        load_settings()


@pytest.mark.parametrize(
    ("env", "args", "line"),
    [
        (
            {"DATABASE_URL": "mysql://root@db/x"},
            ["migrate"],
            "opsdeck: DATABASE_URL: expected a URL like",
        ),
        ({}, ["migrate"], "opsdeck: DATABASE_URL: not set, and opsdeck migrate needs it"),
        (
            {"OPSDECK_LOG_LEVEL": "LOUD"},
            ["migrate"],
            "opsdeck: OPSDECK_LOG_LEVEL (log_level): String should match",
        ),
    ],
)
def test_cli_stops_with_one_line_and_status_2(
    env: dict[str, str], args: list[str], line: str
) -> None:
    result = run_opsdeck(*args, env=opsdeck_env(**env), timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(line)
    assert "Traceback" not in result.stderr
