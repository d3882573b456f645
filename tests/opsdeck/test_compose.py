"""docker-compose.yml and the image start what they promise, proven without a Docker engine.

Each opsdeck service's environment is resolved as compose resolves it (``${VAR:?...}``
from the example values an operator puts in ``.env``), its secrets are written as files the
way compose mounts them under /run/secrets, and the real ``opsdeck check-config`` then runs
with exactly that environment: a service that would stop at start for want of a setting
fails here. The images are pinned, Prometheus and Alertmanager are the versions the suite
runs, their unauthenticated ports stay on 127.0.0.1, and every service has a health check.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from core.service_needs import SERVICE_NEEDS
from tests.conftest import REPO, opsdeck_env, run_opsdeck
from tests.dashboards.shared_schemas import load

COMPOSE = REPO / "docker-compose.yml"
SECRETS = "/run/secrets/"

# What an operator puts in .env (the compose file's header lists the same names).
EXAMPLE_ENV = {
    "POSTGRES_PASSWORD": "example-postgres-password",
    "SERVICE_POSTGRES_PASSWORD": "example-service-postgres-password",
    "AUDIT_CHAIN_KEY": "example-audit-chain-key-0123456789-abcdefghij",
    "REDIS_PASSWORD": "example-redis-password",
    "API_SECRET_KEY": "example-api-secret-key-0123456789-abcdefghij",
    "SECRETS_KEY": "ZXhhbXBsZS1zZWNyZXRzLWtleS0zMi1ieXRlcy0wMTI=",  # opsdeck secrets new-key
    "CUSTOMER_REF_KEY": "example-customer-ref-key-0123",
    "ALERTMANAGER_API_TOKEN": "example-alertmanager-token",
    "GRAFANA_ADMIN_PASSWORD": "example-grafana-admin-password",
    "GRAFANA_POSTGRES_PASSWORD": "example-grafana-postgres-password",
    "PAGERDUTY_ROUTING_KEY": "example-routing-key",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/example-webhook-path",
    "SMTP_PASSWORD": "example-smtp-password",
    "DEADMANSSWITCH_URL": "https://hc-ping.com/0e0f5c3a-example",
    "API_PUBLIC_URL": "https://ops.example.com",
    "GRAFANA_PUBLIC_URL": "https://grafana.example.com",
}

# Services without a health check, and why: a one-shot job is waited for by completion, and
# the demo's load generator has no endpoint and nothing depends on it.
NO_HEALTHCHECK = {"migrate", "simulator", "provision"}
HEALTH_PATHS = {"api": "/healthz", "exporter": "/healthz", "worker": "/metrics"}
# PostgreSQL numbers its releases MAJOR.MINOR (16.6 is one release); the others use three.
TWO_PART_VERSIONS = {"postgres"}
UNAUTHENTICATED_PORTS = {9090, 9093}  # Prometheus, Alertmanager


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


# -- interpolation as compose does it -----------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_]\w*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$")


def _substitute(text: str, env: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        braced = _BRACED.match(match["braced"])
        assert braced, f"unsupported interpolation ${{{match['braced']}}}"
        name, op, arg = braced["name"], braced["op"], braced["arg"]
        value = env.get(name)
        missing = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in ("?", ":?") and missing:
            raise LookupError(f"{name}: {arg}")
        if op in ("-", ":-") and missing:
            return arg
        if op in ("+", ":+"):
            return "" if missing else arg
        return value or ""

    return _VARIABLE.sub(replace, text)


def interpolate(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return _substitute(node, env)
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env) for value in node]
    return node


def _variables(node: Any) -> set[str]:
    if isinstance(node, str):
        found = set()
        for match in _VARIABLE.finditer(node):
            if match["named"]:
                found.add(match["named"])
            elif match["braced"] is not None:
                braced = _BRACED.match(match["braced"])
                assert braced, match["braced"]
                found.add(braced["name"])
        return found
    if isinstance(node, dict):
        return set().union(*(_variables(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_variables(v) for v in node))
    return set()


# -- the opsdeck services ------------------------------------------------------------------------


def opsdeck_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services built from this repository's Dockerfile."""

    def built_here(service: dict[str, Any]) -> bool:
        build = service.get("build")
        context = build.get("context") if isinstance(build, dict) else build
        return context == "."

    return {name: s for name, s in compose["services"].items() if built_here(s)}


def commands_of(service: dict[str, Any]) -> list[str]:
    """The opsdeck subcommands a service runs (``opsdeck X`` in its command)."""
    command = service["command"]
    if command[0] == "opsdeck":
        return [command[1]]
    assert command[:2] == ["sh", "-c"], command
    return sorted(set(re.findall(r"\bopsdeck\s+([a-z][a-z-]*)", command[2])))


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    assert all(isinstance(v, str) for v in env.values()), "every variable needs a value"
    return dict(env)


def write_secrets(
    compose: dict[str, Any], service: dict[str, Any], env: dict[str, str], root: Path
) -> None:
    """The service's secrets as compose mounts them: ``/run/secrets/...`` becomes ``root``."""
    for entry in service.get("secrets", []):
        source = entry if isinstance(entry, str) else entry["source"]
        target = source if isinstance(entry, str) else entry.get("target", source)
        if not target.startswith("/"):
            target = SECRETS + target
        assert target.startswith(SECRETS), target
        definition = compose["secrets"][source]
        assert set(definition) == {"environment"}, f"{source}: only environment secrets here"
        path = root / target.removeprefix(SECRETS)
        path.write_text(env[definition["environment"]], encoding="utf-8")


def check_config(
    compose: dict[str, Any], name: str, tmp_path: Path, example: dict[str, str] = EXAMPLE_ENV
) -> list[subprocess.CompletedProcess[str]]:
    """Run the real ``opsdeck check-config`` for each command of service ``name``, with the
    environment and secret files the container would get."""
    resolved = interpolate(compose, example)
    service = resolved["services"][name]
    secrets = tmp_path / name
    secrets.mkdir(parents=True)
    write_secrets(resolved, service, example, secrets)
    env = {
        key: str(secrets / value.removeprefix(SECRETS)) if value.startswith(SECRETS) else value
        for key, value in environment_of(service).items()
    }
    env["OPSDECK_SECRETS_DIR"] = str(secrets)  # /run/secrets exists in every container
    return [
        run_opsdeck("check-config", "--service", command, env=opsdeck_env(**env), timeout=60)
        for command in commands_of(service)
    ]


# -- tests -----------------------------------------------------------------------------------


def test_compose_file_is_valid() -> None:
    # The schema names draft-07 by an https URL jsonschema does not know: use that draft.
    schema = load("compose", "compose-spec.json")
    compose = _compose()
    jsonschema.Draft7Validator(schema).validate(compose)
    jsonschema.Draft7Validator(schema).validate(interpolate(compose, EXAMPLE_ENV))


def test_example_env_is_what_compose_reads_and_what_its_header_lists() -> None:
    compose = _compose()
    needed = _variables(compose) | {s["environment"] for s in compose["secrets"].values()}
    assert needed == set(EXAMPLE_ENV)
    header = COMPOSE.read_text(encoding="utf-8").split("\nname:")[0]
    assert not [name for name in needed if name not in header]


def test_every_opsdeck_command_is_one_check_config_knows() -> None:
    services = opsdeck_services(_compose())
    assert {"migrate", "exporter", "worker", "api", "simulator"} <= set(services)
    for name, service in services.items():
        commands = commands_of(service)
        assert commands, name
        assert set(commands) <= set(SERVICE_NEEDS), name


@pytest.mark.parametrize("name", sorted(opsdeck_services(_compose())))
def test_each_opsdeck_service_has_what_its_command_needs(name: str, tmp_path: Path) -> None:
    for result in check_config(_compose(), name, tmp_path):
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("ok: "), result.stdout


def test_api_without_its_secret_key_fails_the_check(tmp_path: Path) -> None:
    compose = _compose()
    unmounted = copy.deepcopy(compose)
    api = unmounted["services"]["api"]
    api["secrets"] = [s for s in api["secrets"] if s["source"] != "api_secret_key"]
    (result,) = check_config(unmounted, "api", tmp_path / "unmounted")
    assert result.returncode == 2
    assert result.stderr.startswith("opsdeck: OPSDECK_API__SECRET_KEY_FILE: cannot read ")

    unset = copy.deepcopy(compose)
    del unset["services"]["api"]["environment"]["OPSDECK_API__SECRET_KEY_FILE"]
    (result,) = check_config(unset, "api", tmp_path / "unset")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "opsdeck check-config: api: OPSDECK_API__SECRET_KEY (api.secret_key): not set, and "
        "opsdeck api needs it; it signs session cookies, CSRF tokens and cursors (make one "
        "with `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
    ]


def test_api_without_the_alertmanager_token_fails_the_check(tmp_path: Path) -> None:
    compose = _compose()
    del compose["services"]["api"]["environment"]["OPSDECK_INCIDENTS__ALERTMANAGER_TOKEN_FILE"]
    (result,) = check_config(compose, "api", tmp_path)
    assert result.returncode == 2
    assert "OPSDECK_INCIDENTS__ALERTMANAGER_TOKEN (incidents.alertmanager_token)" in result.stderr


def test_a_missing_variable_stops_compose_with_its_message() -> None:
    example = {k: v for k, v in EXAMPLE_ENV.items() if k != "GRAFANA_ADMIN_PASSWORD"}
    with pytest.raises(LookupError, match="GRAFANA_ADMIN_PASSWORD: set GRAFANA_ADMIN_PASSWORD"):
        interpolate(_compose(), example)


def test_alertmanager_sends_the_token_the_api_reads() -> None:
    compose = _compose()
    api_env = environment_of(compose["services"]["api"])
    token_file = api_env["OPSDECK_INCIDENTS__ALERTMANAGER_TOKEN_FILE"]
    config = yaml.safe_load((REPO / "alert_rules" / "alertmanager.yml").read_text())
    files = {
        c["http_config"]["authorization"]["credentials_file"]
        for r in config["receivers"]
        for c in r.get("webhook_configs", [])
        if c["url"].startswith("http://api:8000/hooks/alertmanager")
    }
    assert files == {token_file}
    mounted = {s["source"] for s in compose["services"]["alertmanager"]["secrets"]}
    assert token_file.removeprefix(SECRETS) in mounted


def _tag(image: str) -> tuple[str, str]:
    name, _, tag = image.rpartition(":")
    assert name, f"{image}: no tag"
    assert "/" not in tag, f"{image}: no tag"
    return name, tag


def test_every_image_is_pinned_to_an_exact_version() -> None:
    for name, service in _compose()["services"].items():
        if "build" in service:
            continue  # built here from the Dockerfile, whose base image is checked below
        image, tag = _tag(service["image"])
        parts = r"\d+\.\d+" if image.split("/")[-1] in TWO_PART_VERSIONS else r"\d+\.\d+\.\d+"
        assert re.fullmatch(rf"v?{parts}(-[a-z0-9.]+)?", tag), f"{name}: {service['image']}"


def _debian_version(*binaries: str) -> str:
    binary = next((b for b in map(shutil.which, binaries) if b), None)
    assert binary, f"{binaries[0]} is not installed (make test installs it: scripts/system-deps.sh)"
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"version (\d+\.\d+\.\d+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    return match[1]


def test_prometheus_and_alertmanager_are_the_versions_the_tests_run() -> None:
    services = _compose()["services"]
    assert _tag(services["prometheus"]["image"]) == (
        "prom/prometheus",
        "v" + _debian_version("prometheus"),
    )
    assert _tag(services["alertmanager"]["image"]) == (
        "prom/alertmanager",
        "v" + _debian_version("prometheus-alertmanager", "alertmanager"),
    )


def _published(port: Any) -> tuple[str, int]:
    """(host address, container port) of one `ports:` entry."""
    if isinstance(port, dict):
        return str(port.get("host_ip", "0.0.0.0")), int(port["target"])
    parts = str(port).split(":")
    host = parts[0] if len(parts) == 3 else "0.0.0.0"  # compose's default: every address
    return host, int(parts[-1].split("/")[0])


def test_unauthenticated_services_are_reachable_from_this_host_only() -> None:
    services = _compose()["services"]
    published = {
        (name, *_published(port))
        for name, service in services.items()
        for port in service.get("ports", [])
    }
    for name, host, target in published:
        if target in UNAUTHENTICATED_PORTS:
            assert host == "127.0.0.1", f"{name} publishes {target} on {host}"
    assert ("prometheus", "127.0.0.1", 9090) in published
    for name, service in services.items():
        words = [*service.get("command", []), *service.get("entrypoint", [])]
        assert "--web.enable-lifecycle" not in words, name


def test_every_opsdeck_service_has_a_health_check_on_its_port() -> None:
    for name, service in opsdeck_services(_compose()).items():
        check = service.get("healthcheck")
        assert check is not None, name
        if name in NO_HEALTHCHECK:
            assert check == {"disable": True}, name
            continue
        command = service["command"]
        flag = "--metrics-port" if name == "worker" else "--port"
        port = command[command.index(flag) + 1]
        assert f"http://127.0.0.1:{port}{HEALTH_PATHS[name]}'" in " ".join(check["test"]), name


def _dockerfile() -> tuple[dict[str, str], list[list[str]]]:
    """(ARG defaults, instructions as [KEYWORD, rest]) of the Dockerfile."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    steps = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    args = dict(s[1].split("=", 1) for s in steps if s[0] == "ARG" and "=" in s[1])
    return args, steps


def test_image_installs_the_wheel_into_a_pinned_python_as_non_root() -> None:
    args, steps = _dockerfile()
    bases = [s[1] for s in steps if s[0] == "FROM"]
    assert len(bases) == 2, "a build stage and a runtime stage"
    for base in bases:
        image = base.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], image)
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-bookworm", image), image
    build, runtime = _stage(steps, 0), _stage(steps, 1)
    assert any("pip wheel" in s[1] and "--no-deps" in s[1] for s in build if s[0] == "RUN")
    installs = [s[1] for s in runtime if s[0] == "RUN" and "pip install" in s[1]]
    assert installs
    assert all(".whl" in i and " -e " not in i for i in installs)
    users = [s[1] for s in runtime if s[0] == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")


def _stage(steps: list[list[str]], index: int) -> list[list[str]]:
    starts = [i for i, step in enumerate(steps) if step[0] == "FROM"] + [len(steps)]
    return steps[starts[index] + 1 : starts[index + 1]]


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image() -> None:
    ignored = set((REPO / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".git", ".venv", ".opsdeck", ".env", "build", "dist"} <= ignored
