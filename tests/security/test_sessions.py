"""Sessions obey the database, and the shipped compose file keeps Redis, PostgreSQL,
Prometheus and Alertmanager closed to whoever is not meant to use them.

Everything runs for real: ``opsdeck api`` served over HTTP, its sessions in a real Redis,
users in a real PostgreSQL, every account change made by the ``opsdeck users`` command in a
subprocess, and the compose file's own Redis command run against a real ``redis-server``.

The attacks, each refused:

- someone who can write to Redis rewrites their own session (in the format the API used to
  read: user id, name and role) to be a super admin's, or to be another user's;
- a user demoted or disabled from a CLI that has no ``REDIS_URL`` keeps their access
  (the CLI used to say "their sessions have ended" and revoke nothing);
- a password or TOTP reset, or ``revoke-sessions``, leaves the old sessions working;
- Redis answers anyone on the network; Prometheus' or Alertmanager's unauthenticated API
  (silences, ``/-/quit``) is published beyond this host.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import redis

from core.settings import load_settings
from opsdeck.embedded import REDIS_SERVER, free_port
from tests.api.conftest import PASSWORD, SECRET, serving
from tests.authenticator import Authenticator, printed_secret
from tests.conftest import opsdeck_env, run_opsdeck, scratch_database
from tests.opsdeck.test_compose import (
    EXAMPLE_ENV,
    SECRETS,
    _compose,
    _published,
    environment_of,
    interpolate,
    opsdeck_services,
)

# How soon a change to a user must show: the API re-reads a session's user every
# api.session_recheck_seconds (2 s by default, the suite's), with room for a busy machine.
RECHECK_BOUND_SECONDS = 5.0 + 1.0
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SUPER_ADMIN_ONLY = "/api/v1/audit"  # audit.read: super admins alone
SIGNED_IN = "/api/v1/bookings"  # bookings.read: super admin, ops, viewer
NEW_PASSWORD = "an entirely different passphrase 42"


@dataclass(frozen=True)
class Stack:
    base: str
    db_url: str
    redis_url: str
    app: Authenticator = field(default_factory=Authenticator)

    def cli(self, *args: str, with_redis: bool, stdin: str | None = None) -> str:
        """``opsdeck ARGS`` as an administrator runs it; with or without REDIS_URL."""
        env = opsdeck_env(DATABASE_URL=self.db_url)
        if with_redis:
            env["REDIS_URL"] = self.redis_url
        result = run_opsdeck(*args, env=env, timeout=120, stdin=stdin)
        assert result.returncode == 0, f"opsdeck {' '.join(args)}: {result.stderr}"
        return result.stdout

    def add_user(self, name: str, role: str) -> str | None:
        """A user made by ``opsdeck users add --totp``; their TOTP secret."""
        argv = ("users", "add", name, "--role", role, "--totp", "--password-stdin")
        return self.app.add(name, self.cli(*argv, with_redis=False, stdin=PASSWORD + "\n"))

    @contextmanager
    def sign_in(self, name: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
        """A browser signed in through the real form (CSRF token, TOTP code)."""
        with httpx.Client(base_url=self.base, follow_redirects=False, timeout=30) as client:
            page = client.get("/login")
            token = CSRF_RE.search(page.text)
            assert token, page.text
            code = self.app.code(name)
            form = {"username": name, "password": password, "code": code, "csrf_token": token[1]}
            response = client.post("/login", data=form)
            assert response.status_code == 303, response.text
            yield client

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)


def _session_id(client: httpx.Client) -> str:
    """The session id, readable in the cookie by whoever holds it (the signature covers it,
    it does not hide it)."""
    cookie = client.cookies["opsdeck_session"].strip('"')
    return cookie.split(".", 1)[0]


def _within(seconds: float, condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _status(client: httpx.Client, path: str) -> int:
    return client.get(path, headers={"Accept": "application/json"}).status_code


@pytest.fixture(scope="module")
def stack(
    admin_url: str, template_db: str, services: dict[str, str], tmp_path_factory: Any
) -> Iterator[Stack]:
    client = redis.Redis.from_url(services["redis"])
    client.flushdb()
    client.close()
    with scratch_database(admin_url, template_db) as db_url:
        env = opsdeck_env(
            DATABASE_URL=db_url,
            REDIS_URL=services["redis"],
            OPSDECK_API__SECRET_KEY=SECRET,
            OPSDECK_API__COOKIE_SECURE="false",  # plain HTTP on loopback in this test
        )
        log = tmp_path_factory.mktemp("sessions") / "api.log"
        with serving(env, log) as base:
            yield Stack(base, db_url, services["redis"])


# -- forged sessions ------------------------------------------------------------------------


def test_a_session_forged_in_redis_gives_no_super_admin_access(stack: Stack) -> None:
    stack.add_user("vic", "viewer")
    admin_secret = stack.add_user("root-admin", "super_admin")
    assert admin_secret
    with stack.sign_in("vic") as browser, stack.redis() as store:
        assert _status(browser, SIGNED_IN) == 200
        assert _status(browser, SUPER_ADMIN_ONLY) == 403
        key = f"opsdeck:session:{_session_id(browser)}"
        assert store.exists(key)
        ttl = store.ttl(key)
        ids = _user_ids(stack, "vic", "root-admin")
        forgeries = [
            # The attack as it was: the record the API read a role from, made a super admin.
            {"user_id": ids["vic"], "username": "vic", "role": "super_admin", "at": time.time()},
            # The same record pointing at the real super admin.
            {"user_id": ids["root-admin"], "username": "root-admin", "role": "super_admin"},
            # Today's record (user id and session version) pointing at the super admin.
            {"user_id": ids["root-admin"], "version": 1, "at": time.time()},
        ]
        for forged in forgeries:
            store.set(key, json.dumps(forged), ex=ttl)
            assert _status(browser, SUPER_ADMIN_ONLY) in (401, 403), forged
            assert _status(browser, "/api/v1/audit/export?format=json") in (401, 403), forged


def _user_ids(stack: Stack, *names: str) -> dict[str, int]:
    with psycopg.connect(stack.db_url) as conn:
        rows = conn.execute(
            "SELECT username, id FROM ops.users WHERE username = ANY(%s)", (list(names),)
        ).fetchall()
    return {str(name): int(user_id) for name, user_id in rows}


# -- account changes from a CLI without Redis --------------------------------------------------


def test_a_demoted_super_admin_loses_access_though_the_cli_had_no_redis(stack: Stack) -> None:
    stack.add_user("sam", "super_admin")
    with stack.sign_in("sam") as browser:
        assert _status(browser, SUPER_ADMIN_ONLY) == 200
        out = stack.cli("users", "set-role", "sam", "viewer", with_redis=False)
        assert _within(RECHECK_BOUND_SECONDS, lambda: _status(browser, SUPER_ADMIN_ONLY) != 200)
        assert _status(browser, SIGNED_IN) == 401  # the session itself has ended
        # The CLI says what happened, not that Redis was cleaned when it was not reachable.
        assert "ended the sessions of sam" in out, out
        assert "none deleted from Redis (REDIS_URL is not set)" in out, out


def test_a_disabled_user_loses_all_access_though_the_cli_had_no_redis(stack: Stack) -> None:
    stack.add_user("dora", "ops")
    with stack.sign_in("dora") as browser:
        assert _status(browser, SIGNED_IN) == 200
        out = stack.cli("users", "disable", "dora", with_redis=False)
        assert "dora disabled" in out, out
        assert _within(RECHECK_BOUND_SECONDS, lambda: _status(browser, SIGNED_IN) == 401)
        assert _status(browser, "/") in (303, 401)  # no page at all, only the sign-in


def test_password_reset_totp_reset_and_revocation_end_sessions(stack: Stack) -> None:
    stack.add_user("pat", "ops")
    with stack.sign_in("pat") as browser:
        assert _status(browser, SIGNED_IN) == 200
        argv = ("users", "reset-password", "pat", "--password-stdin")
        stack.cli(*argv, with_redis=False, stdin=NEW_PASSWORD + "\n")
        assert _within(RECHECK_BOUND_SECONDS, lambda: _status(browser, SIGNED_IN) == 401)
    with stack.sign_in("pat", NEW_PASSWORD) as browser, stack.redis() as store:
        assert _status(browser, SIGNED_IN) == 200
        key = f"opsdeck:session:{_session_id(browser)}"
        out = stack.cli("users", "revoke-sessions", "pat", with_redis=True)
        assert "deleted 1 session(s) from Redis" in out, out
        assert not store.exists(key)
        assert _status(browser, SIGNED_IN) == 401

    stack.add_user("tess", "ops")
    with stack.sign_in("tess") as browser:
        assert _status(browser, SIGNED_IN) == 200
        out = stack.cli("users", "reset-totp", "tess", with_redis=False)
        assert printed_secret(out), out
        assert _within(RECHECK_BOUND_SECONDS, lambda: _status(browser, SIGNED_IN) == 401)


# -- the compose file --------------------------------------------------------------------------


def _compose_service(name: str) -> dict[str, Any]:
    service: dict[str, Any] = interpolate(_compose(), EXAMPLE_ENV)["services"][name]
    return service


def _secret_sources(service: dict[str, Any]) -> set[str]:
    return {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}


def _fake_image(root: Path, port: int) -> dict[str, str]:
    """What the Redis image supplies around the compose command: its entrypoint (here one
    that only adds this test's port and data directory to the configuration the command
    sends, where a container has its own network and volume) and ``redis-server``."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    entrypoint = bin_dir / "docker-entrypoint.sh"
    entrypoint.write_text(
        "#!/bin/sh\n"
        f"{{ cat; printf 'port {port}\\nbind 127.0.0.1\\ndir {root}\\nsave \"\"\\n'; }}"
        ' | exec "$@"\n',
        encoding="utf-8",
    )
    entrypoint.chmod(0o755)
    (bin_dir / "redis-server").symlink_to(REDIS_SERVER)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def _in_test(command: str, secrets_dir: Path) -> str:
    """A compose command string as the container's shell runs it, secrets in ``secrets_dir``."""
    return command.replace("$$", "$").replace(SECRETS, f"{secrets_dir}/")


@pytest.fixture
def compose_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The compose file's Redis, started by its own command; (port, secrets directory)."""
    service = _compose_service("redis")
    assert "redis_password" in _secret_sources(service)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "redis_password").write_text(EXAMPLE_ENV["REDIS_PASSWORD"], encoding="utf-8")
    port = free_port(0)
    shell, flag, script = service["command"]
    assert (shell, flag) == ("sh", "-c"), service["command"]
    process = subprocess.Popen(
        [shell, flag, _in_test(script, secrets_dir)],
        env=_fake_image(tmp_path, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the pipeline's processes, Redis included, stop together
    )
    try:
        url = f"redis://:{EXAMPLE_ENV['REDIS_PASSWORD']}@127.0.0.1:{port}/0"
        up = _within(10, lambda: _answers(url))
        assert up, "the compose command's Redis did not start"
        yield port, secrets_dir
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_timeout=1) as client:
            return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_compose_data_stores_refuse_clients_without_their_secrets(
    compose_redis: tuple[int, Path], clean_env: pytest.MonkeyPatch
) -> None:
    """Redis, run by the compose file's own command, refuses whoever lacks the secret;
    opsdeck's services and the health check get in with it. PostgreSQL's password, and
    every opsdeck service's, comes from a secret file too, never from the file itself."""
    port, secrets_dir = compose_redis
    _redis_refuses_strangers(port)
    _opsdeck_reaches_redis_with_the_secret(port, secrets_dir, clean_env)
    _redis_health_check_needs_the_secret(port, secrets_dir)
    _postgres_passwords_come_from_secrets()


def _redis_refuses_strangers(port: int) -> None:
    with (
        redis.Redis(host="127.0.0.1", port=port) as anyone,
        pytest.raises(redis.AuthenticationError),
    ):
        anyone.set("opsdeck:session:forged", '{"role": "super_admin"}')
    wrong = f"redis://:not-the-password@127.0.0.1:{port}/0"
    with pytest.raises(redis.AuthenticationError), redis.Redis.from_url(wrong) as guesser:
        guesser.ping()


def _opsdeck_reaches_redis_with_the_secret(
    port: int, secrets_dir: Path, clean_env: pytest.MonkeyPatch
) -> None:
    """REDIS_URL plus the password from the secret file, read by the real settings loader."""
    clients = {
        name: environment_of(service)
        for name, service in opsdeck_services(interpolate(_compose(), EXAMPLE_ENV)).items()
        if "REDIS_URL" in environment_of(service)
    }
    assert "api" in clients
    for name, env in clients.items():
        service = _compose_service(name)
        assert urlsplit(env["REDIS_URL"]).password is None, name
        assert env["REDIS_PASSWORD_FILE"] == f"{SECRETS}redis_password", name
        assert "redis_password" in _secret_sources(service), name
    clean_env.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    clean_env.setenv("REDIS_PASSWORD_FILE", str(secrets_dir / "redis_password"))
    settings = load_settings()
    with redis.Redis.from_url(str(settings.redis_url)) as opsdeck:
        assert opsdeck.ping()


def _redis_health_check_needs_the_secret(port: int, secrets_dir: Path) -> None:
    check = _compose_service("redis")["healthcheck"]["test"]
    assert check[0] == "CMD-SHELL"
    probe = _in_test(check[1], secrets_dir).replace("redis-cli", f"redis-cli -p {port}")
    assert subprocess.run(["sh", "-c", probe], check=False, timeout=10).returncode == 0
    (secrets_dir / "redis_password").write_text("stale", encoding="utf-8")
    assert subprocess.run(["sh", "-c", probe], check=False, timeout=10).returncode != 0


def _postgres_passwords_come_from_secrets() -> None:
    compose = interpolate(_compose(), EXAMPLE_ENV)
    postgres = compose["services"]["postgres"]
    env = environment_of(postgres)
    assert env["POSTGRES_PASSWORD_FILE"] == f"{SECRETS}postgres_password"
    assert "POSTGRES_PASSWORD" not in env
    assert "POSTGRES_HOST_AUTH_METHOD" not in env
    assert "postgres_password" in _secret_sources(postgres)
    clients = {
        name: service
        for name, service in opsdeck_services(compose).items()
        if "DATABASE_URL" in environment_of(service)
    }
    assert {"migrate", "api"} <= set(clients)
    for name, service in clients.items():
        env = environment_of(service)
        for variable, value in env.items():
            if value.startswith(("postgres://", "postgresql://")):
                assert urlsplit(value).password is None, f"{name}: {variable}"
        password_file = env["DATABASE_PASSWORD_FILE"]
        assert password_file.startswith(SECRETS), name
        assert password_file.removeprefix(SECRETS) in _secret_sources(service), name


def test_compose_publishes_no_unauthenticated_service_beyond_this_host() -> None:
    """Prometheus (``/-/quit``, the admin API) and Alertmanager (``POST /api/v2/silences``)
    have no authentication of their own, and Redis and PostgreSQL hold sessions and every
    table: none of them may be published on an address other hosts reach."""
    services = _compose()["services"]
    for name in ("prometheus", "alertmanager", "redis", "postgres"):
        service = services[name]
        assert service.get("network_mode") != "host", name
        for port in service.get("ports", []):
            host, target = _published(port)
            assert host in ("127.0.0.1", "::1"), f"{name} publishes {target} on {host}"
    for name in ("redis", "postgres"):
        assert not services[name].get("ports"), f"{name} is published"
    for name in ("prometheus", "alertmanager"):
        words = [*services[name].get("command", []), *services[name].get("entrypoint", [])]
        flags = " ".join(str(w) for w in words)
        assert "--web.enable-lifecycle" not in flags, name
        assert "--web.enable-admin-api" not in flags, name
