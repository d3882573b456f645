"""Settings: environment over YAML, and one clear line with status 2 for any bad value."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from psycopg.conninfo import conninfo_to_dict

from core import settings_files
from core.database import libpq_url
from core.service_needs import SERVICE_NEEDS, require_service, service_problems
from core.settings import SettingsError, load_settings
from tests.conftest import TEST_AUDIT_CHAIN_KEY, TEST_SECRETS_KEY, opsdeck_env, run_opsdeck


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


# -- settings from files ----------------------------------------------------------------------


def _secrets_dir(clean_env: pytest.MonkeyPatch, path: Path, **files: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (path / name).write_text(content, encoding="utf-8")
    clean_env.setenv("OPSDECK_SECRETS_DIR", str(path))
    return path


def test_file_variables_hold_values_less_one_newline(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = tmp_path / "api_secret_key"
    key.write_text("k" * 40 + "\n")
    sender = tmp_path / "from"
    sender.write_text("ops@example.com\n\n")  # only the last newline is the file's ending
    url = tmp_path / "database_url"
    url.write_text("postgresql://reader@db/ops\r\n")
    clean_env.setenv("OPSDECK_API__SECRET_KEY_FILE", str(key))
    clean_env.setenv("OPSDECK_INCIDENTS__SMTP_FROM_FILE", str(sender))
    clean_env.setenv("DATABASE_URL_FILE", str(url))
    settings = load_settings()
    assert settings.api.secret_key is not None
    assert settings.api.secret_key.get_secret_value() == "k" * 40
    assert settings.incidents.smtp_from == "ops@example.com\n"
    assert settings.database_url == "postgresql://reader@db/ops"


def test_a_file_is_parsed_as_its_variable_would_be(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    networks = tmp_path / "ssrf_allow"
    networks.write_text('["127.0.0.1/32", "10.0.0.0/8"]\n')
    clean_env.setenv("OPSDECK_WEBHOOKS__SSRF_ALLOW_FILE", str(networks))
    _secrets_dir(clean_env, tmp_path / "secrets", OPSDECK_EXPORTER__PORT="9100\n")
    settings = load_settings()
    assert settings.webhooks.ssrf_allow == ("127.0.0.1/32", "10.0.0.0/8")
    assert settings.exporter.port == 9100


def test_a_setting_named_like_a_file_is_that_setting(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    oncall = tmp_path / "oncall.yaml"
    clean_env.setenv("OPSDECK_INCIDENTS__ONCALL_FILE", str(oncall))
    assert load_settings().incidents.oncall_file == oncall
    holder = tmp_path / "where"
    holder.write_text(f"{oncall}\n")
    clean_env.delenv("OPSDECK_INCIDENTS__ONCALL_FILE")
    clean_env.setenv("OPSDECK_INCIDENTS__ONCALL_FILE_FILE", str(holder))
    assert load_settings().incidents.oncall_file == oncall


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ({"env", "file", "dir", "yaml"}, 9004),
        ({"file", "dir", "yaml"}, 9003),
        ({"dir", "yaml"}, 9002),
        ({"yaml"}, 9001),
        (set(), 9464),
    ],
)
def test_precedence_environment_file_directory_yaml_default(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, sources: set[str], expected: int
) -> None:
    config = tmp_path / "opsdeck.yaml"
    config.write_text("exporter:\n  port: 9001\n" if "yaml" in sources else "{}\n")
    directory = _secrets_dir(clean_env, tmp_path / "secrets")
    if "dir" in sources:
        (directory / "opsdeck_exporter__port").write_text("9002\n")
    if "file" in sources:
        (tmp_path / "port").write_text("9003\n")
        clean_env.setenv("OPSDECK_EXPORTER__PORT_FILE", str(tmp_path / "port"))
    if "env" in sources:
        clean_env.setenv("OPSDECK_EXPORTER__PORT", "9004")
    assert load_settings(config).exporter.port == expected


def test_secrets_directory_names_in_lower_or_exact_case(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _secrets_dir(
        clean_env,
        tmp_path / "secrets",
        opsdeck_api__secret_key="s" * 40 + "\n",
        REDIS_URL="redis://cache:6379/1\n",
        database_url="postgresql://opsdeck@db/ops\n",
        postgres_password="belongs to another program\n",  # names no setting: left alone
    )
    settings = load_settings()
    assert settings.api.secret_key is not None
    assert settings.api.secret_key.get_secret_value() == "s" * 40
    assert settings.redis_url == "redis://cache:6379/1"
    assert settings.database_url == "postgresql://opsdeck@db/ops"


def test_default_secrets_directory_is_read_only_when_present(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    default = tmp_path / "run" / "secrets"
    clean_env.setattr(settings_files, "DEFAULT_SECRETS_DIR", default)
    assert load_settings().redis_url is None  # absent: nothing to read, no error
    default.mkdir(parents=True)
    (default / "redis_url").write_text("redis://cache:6379/2\n")
    assert load_settings().redis_url == "redis://cache:6379/2"


@pytest.mark.parametrize(
    ("env", "files", "expected"),
    [
        (
            {"OPSDECK_API__SECRET_KEY_FILE": "{tmp}/absent"},
            {},
            "OPSDECK_API__SECRET_KEY_FILE: cannot read {tmp}/absent: No such file or directory",
        ),
        (
            {"DATABASE_URL_FILE": "{tmp}"},
            {},
            "DATABASE_URL_FILE: cannot read {tmp}: Is a directory",
        ),
        ({"REDIS_URL_FILE": ""}, {}, "REDIS_URL_FILE: empty; name the file that holds REDIS_URL"),
        (
            {"OPSDECK_API__SECRT_KEY_FILE": "{tmp}/key"},
            {},
            "OPSDECK_API__SECRT_KEY_FILE: unknown setting",
        ),
        (
            {"OPSDECK_SECRETS_DIR": "{tmp}/absent"},
            {},
            "OPSDECK_SECRETS_DIR: {tmp}/absent is not a directory",
        ),
        (
            {"OPSDECK_SECRETS_DIR": "{tmp}"},
            {"opsdeck_api__secrt_key": "x"},
            "OPSDECK_SECRETS_DIR: {tmp}/opsdeck_api__secrt_key names no setting",
        ),
        (
            {"OPSDECK_SECRETS_DIR": "{tmp}"},
            {"redis_url": "redis://a:1/0", "REDIS_URL": "redis://b:1/0"},
            "REDIS_URL: both {tmp}/REDIS_URL and {tmp}/redis_url set it",
        ),
        (
            {"OPSDECK_API__SECRET_KEY_FILE": "{tmp}/key"},
            {"key": b"\xff\xfe".decode("latin-1")},
            "OPSDECK_API__SECRET_KEY_FILE: {tmp}/key is not UTF-8 text",
        ),
        (
            {"DATABASE_URL_FILE": "{tmp}/url"},
            {"url": "mysql://root@db/x\n"},
            "DATABASE_URL: expected a URL like postgresql://user@host:5432/db, got scheme "
            "'mysql' (read from {tmp}/url, DATABASE_URL_FILE)",
        ),
        (
            {"OPSDECK_SECRETS_DIR": "{tmp}"},
            {"opsdeck_exporter__port": "many\n"},
            "OPSDECK_EXPORTER__PORT (exporter.port): Input should be a valid integer",
        ),
    ],
)
def test_unusable_files_name_the_variable(
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    env: dict[str, str],
    files: dict[str, str],
    expected: str,
) -> None:
    for name, content in files.items():
        (tmp_path / name).write_bytes(content.encode("latin-1"))
    for name, value in env.items():
        clean_env.setenv(name, value.format(tmp=tmp_path))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(expected.format(tmp=tmp_path))
    assert "\n" not in str(caught.value)


def test_unreadable_file_in_the_secrets_directory(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    directory = _secrets_dir(clean_env, tmp_path / "secrets")
    (directory / "opsdeck_api__secret_key").mkdir()  # a file nobody can read as text
    with pytest.raises(SettingsError, match=r"^OPSDECK_API__SECRET_KEY: cannot read .*"):
        load_settings()


@pytest.mark.parametrize(
    ("url", "password", "expected"),
    [
        ("postgresql://opsdeck@db:5432/ops", "p@ss:w/rd%", "p@ss:w/rd%"),
        ("postgresql+psycopg://opsdeck@db/ops?sslmode=disable", "plain", "plain"),
    ],
)
def test_database_password_goes_into_the_url(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, url: str, password: str, expected: str
) -> None:
    (tmp_path / "password").write_text(password + "\n")
    clean_env.setenv("DATABASE_URL", url)
    clean_env.setenv("DATABASE_PASSWORD_FILE", str(tmp_path / "password"))
    settings = load_settings()
    assert settings.database_url is not None
    # libpq itself reads the URL: the password arrives whole, the rest unchanged.
    parsed = conninfo_to_dict(libpq_url(settings.database_url))
    assert parsed["password"] == expected
    assert parsed["user"] == "opsdeck"
    assert settings.platform_url == settings.database_url


def test_redis_password_goes_into_the_url(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "password").write_text("r3d:s@/pw%\n")
    clean_env.setenv("REDIS_URL", "redis://cache:6379/2")
    clean_env.setenv("REDIS_PASSWORD_FILE", str(tmp_path / "password"))
    settings = load_settings()
    assert settings.redis_url is not None
    # redis-py itself reads the URL: the password arrives whole, the rest unchanged.
    kwargs = redis.Redis.from_url(settings.redis_url).connection_pool.connection_kwargs
    assert (kwargs["password"], kwargs["host"], kwargs["port"], kwargs["db"]) == (
        "r3d:s@/pw%",
        "cache",
        6379,
        2,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"REDIS_PASSWORD": "pw"}, "REDIS_PASSWORD: set, but REDIS_URL is not"),
        ({"DATABASE_PASSWORD": "pw"}, "DATABASE_PASSWORD: set, but DATABASE_URL is not"),
        (
            {"DATABASE_PASSWORD": "pw", "DATABASE_URL": "postgresql://u:other@db/ops"},
            "DATABASE_PASSWORD: set, but DATABASE_URL holds a password already",
        ),
        (
            {"DATABASE_PASSWORD": "", "DATABASE_URL": "postgresql://u@db/ops"},
            "DATABASE_PASSWORD: empty",
        ),
    ],
)
def test_database_password_conflicts_are_refused(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(expected)


def test_cli_refuses_a_file_variable_for_no_setting(tmp_path: Path) -> None:
    env = opsdeck_env(OPSDECK_EXPORTR__PORT_FILE=str(tmp_path / "port"))
    result = run_opsdeck("check-config", env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "opsdeck: OPSDECK_EXPORTR__PORT_FILE: unknown setting"


# -- opsdeck check-config ---------------------------------------------------------------------

SECRET_KEY = "k" * 40
EVERY_NEED = {
    # Hosts that do not resolve: check-config connects to nothing.
    "DATABASE_URL": "postgresql://opsdeck@db.invalid:5432/ops",
    "REDIS_URL": "redis://cache.invalid:6379/0",
    "OPSDECK_API__SECRET_KEY": SECRET_KEY,
    "OPSDECK_SECRETS_KEY": TEST_SECRETS_KEY,
    "OPSDECK_AUDIT__CHAIN_KEY": TEST_AUDIT_CHAIN_KEY,
}


def test_check_config_passes_every_service() -> None:
    result = run_opsdeck("check-config", env=opsdeck_env(**EVERY_NEED), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"ok: {s}" for s in sorted(SERVICE_NEEDS)]
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("env", "services", "problems", "ok"),
    [
        (
            {},
            [],
            [
                "api: DATABASE_URL: not set, and opsdeck api needs it",
                "api: REDIS_URL: not set, and opsdeck api needs it",
                "api: OPSDECK_API__SECRET_KEY (api.secret_key): not set, and opsdeck api needs it",
                "exporter: DATABASE_URL: not set",
                "migrate: DATABASE_URL: not set",
                "simulate: DATABASE_URL: not set",
                "worker: DATABASE_URL: not set",
            ],
            ["ok: dashboards"],
        ),
        (
            {**EVERY_NEED, "OPSDECK_API__SECRET_KEY": "short"},
            ["api", "worker"],
            [
                "api: OPSDECK_API__SECRET_KEY (api.secret_key): shorter than 32 characters, "
                "and opsdeck api needs more"
            ],
            ["ok: worker"],
        ),
        (
            {**EVERY_NEED, "ALERTMANAGER_URL": "http://am.invalid:9093"},
            ["api"],
            [
                "api: OPSDECK_INCIDENTS__ALERTMANAGER_TOKEN (incidents.alertmanager_token): not "
                "set, and opsdeck api needs it when ALERTMANAGER_URL is set"
            ],
            [],
        ),
        (
            {**EVERY_NEED, "OPSDECK_INCIDENTS__ONCALL_FILE": "/nonexistent/oncall.yaml"},
            ["api"],
            ["api: OPSDECK_INCIDENTS__ONCALL_FILE (incidents.oncall_file): cannot read"],
            [],
        ),
        (
            {
                **EVERY_NEED,
                "OPSDECK_SIMULATOR__PSP_WEBHOOK_URL": "http://api.invalid:8000/webhooks",
                "OPSDECK_SIMULATOR__PAYSTACK_SECRET_KEY": "sk_test_0123456789abcdef",
            },
            ["simulate", "migrate"],
            [
                "simulate: OPSDECK_SIMULATOR__STRIPE_WEBHOOK_SECRET "
                "(simulator.stripe_webhook_secret): not set, and opsdeck simulate needs it when "
                "OPSDECK_SIMULATOR__PSP_WEBHOOK_URL (simulator.psp_webhook_url) is set"
            ],
            ["ok: migrate"],
        ),
    ],
)
def test_check_config_reports_every_problem_on_a_line(
    env: dict[str, str], services: list[str], problems: list[str], ok: list[str]
) -> None:
    args = [arg for service in services for arg in ("--service", service)]
    result = run_opsdeck("check-config", *args, env=opsdeck_env(**env), timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == len(problems), result.stderr
    for line, problem in zip(lines, problems, strict=True):
        assert line.startswith(f"opsdeck check-config: {problem}"), line
    assert result.stdout.splitlines() == ok


def test_check_config_refuses_an_unknown_service() -> None:
    result = run_opsdeck("check-config", "--service", "web", env=opsdeck_env(), timeout=60)
    assert result.returncode == 2
    assert "argument --service: invalid choice: 'web'" in result.stderr


_DATABASE_ONLY = {"DATABASE_URL": EVERY_NEED["DATABASE_URL"]}


@pytest.mark.parametrize(
    ("service", "command", "env"),
    [
        ("migrate", ["migrate"], {}),
        ("simulate", ["simulate", "--live"], {}),
        ("exporter", ["exporter"], {}),
        ("worker", ["worker", "--metrics-port", "0"], {}),
        ("api", ["api"], {}),
        ("api", ["api"], _DATABASE_ONLY),
        ("api", ["api"], {**_DATABASE_ONLY, "OPSDECK_API__SECRET_KEY": SECRET_KEY}),
    ],
)
def test_a_command_stops_at_start_on_what_check_config_reports(
    service: str, command: list[str], env: dict[str, str]
) -> None:
    """The real command refuses to start on a setting check-config names: the two agree."""
    check = run_opsdeck("check-config", "--service", service, env=opsdeck_env(**env), timeout=60)
    assert check.returncode == 2
    start = run_opsdeck(*command, env=opsdeck_env(**env), timeout=60)
    assert start.returncode == 2, start.stderr
    setting = start.stderr.removeprefix("opsdeck: ").split(": ")[0]
    assert f"{service}: {setting}: " in check.stderr, (start.stderr, check.stderr)


def test_require_service_raises_the_first_problem(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match=r"^DATABASE_URL: not set, and opsdeck api needs"):
        require_service(load_settings(), "api")
    for name, value in EVERY_NEED.items():
        clean_env.setenv(name, value)
    settings = load_settings()
    require_service(settings, "api")
    assert service_problems(settings, "api") == []
