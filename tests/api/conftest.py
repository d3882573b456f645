"""The drilldown API under test: the real app with its lifespan (pools, Redis, workers),
served in-process through httpx's ASGI transport, over a database with two days of
simulated history. Users, sessions and API keys are real rows and Redis keys."""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import psycopg
import pyotp
import pytest
import redis
from pydantic import SecretStr
from starlette.applications import Starlette

from api.accounts import Admin, add_user, create_key
from api.app import create_app
from api.auth.sessions import COOKIE
from api.rbac import ROLES, Role
from api.runtime import Runtime
from api.workers import fold_usage
from core.sealed_secrets import SecretBox
from core.settings import ApiSettings, IncidentSettings, Settings, WebhookSettings
from tests.conftest import TEST_SECRETS_KEY, scratch_database, service_url, setup_url
from tests.incidents.alertmanager_process import alertmanager
from tests.processes import supervised_server

SECRET = "test-secret-key-that-is-long-enough-0123456789"
STRIPE_TEST_SECRET = "whsec_test_stripe_0123456789"
PAYSTACK_TEST_SECRET = "sk_test_paystack_0123456789"
PASSWORD = "correct horse battery staple"
ALERTMANAGER_TOKEN = "am-token-for-tests-0123456789"
SLACK_SIGNING_SECRET = "slack-signing-secret-for-tests-0123"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def api_settings(
    db_url: str, redis_url: str, alertmanager_url: str | None = None, **api: Any
) -> Settings:
    values: dict[str, Any] = {
        "secret_key": SECRET,
        "requests_per_minute": 100_000,
        "cookie_secure": False,  # served over plain HTTP (ASGI) in tests
        **api,
    }
    return Settings(
        database_url=service_url(db_url),
        redis_url=redis_url,
        alertmanager_url=alertmanager_url,
        secrets_key=SecretStr(TEST_SECRETS_KEY),
        incidents=IncidentSettings(
            alertmanager_token=SecretStr(ALERTMANAGER_TOKEN),
            slack_signing_secret=SecretStr(SLACK_SIGNING_SECRET),
            engine_enabled=False,
        ),
        api=ApiSettings(**values),
        webhooks=WebhookSettings(  # the inbound PSP routes need secrets to answer 2xx
            stripe_secrets=(SecretStr(STRIPE_TEST_SECRET),),
            paystack_secrets=(SecretStr(PAYSTACK_TEST_SECRET),),
        ),
    )


class Harness:
    """One running app and the means to talk to it as anybody."""

    def __init__(self, app: Starlette, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.db_url = setup_url(str(settings.database_url))  # the suite's own SQL
        self.totp: dict[str, str] = {}
        self._users: set[str] = set()

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def _admin(self, conn: psycopg.Connection[Any]) -> Admin:
        sessions = redis.Redis.from_url(str(self.settings.redis_url))
        return Admin("test", conn, sessions, SecretBox.from_settings(self.settings))

    def user(self, role: Role, name: str | None = None, *, two_factor: bool = False) -> str:
        username = name or f"{role.value}-user"
        if username in self._users:
            return username
        # Another harness over the same database may have made it (module databases).
        if not self.sql("SELECT 1 FROM ops.users WHERE username = %s", (username,)):
            with psycopg.connect(self.db_url) as conn:
                # Super admins get a device at once, as `opsdeck users add` gives them.
                device = two_factor or role == Role.SUPER_ADMIN
                secret = add_user(self._admin(conn), username, role, PASSWORD, device)
            if secret:
                self.totp[username] = secret
        self._users.add(username)
        return username

    def api_key(
        self,
        role: Role,
        scopes: list[str] | None = None,
        name: str = "test",
        user: str | None = None,
    ) -> str:
        """A new key of ``user`` (by default the ``role`` user, created if need be)."""
        owner = user or self.user(role)
        with psycopg.connect(self.db_url) as conn:
            token, _ = create_key(self._admin(conn), owner, name, role, scopes or [])
        return token

    def client(self, *, address: str = "127.0.0.1", **kwargs: Any) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(address, 50000))
        return httpx.AsyncClient(
            transport=transport, base_url="http://testserver", follow_redirects=False, **kwargs
        )

    async def session_client(self, role: Role, name: str | None = None) -> httpx.AsyncClient:
        """A client holding a fresh session of a user with ``role``."""
        username = self.user(role, name)
        rows = self.sql(
            "SELECT id, session_version FROM ops.users WHERE username = %s", (username,)
        )
        _, cookie = await self.runtime.sessions.create(rows[0][0], rows[0][1])
        client = self.client()
        client.cookies.set(COOKIE, cookie)
        return client

    def key_client(
        self, role: Role, scopes: list[str] | None = None, user: str | None = None
    ) -> httpx.AsyncClient:
        token = self.api_key(role, scopes, user=user)
        return self.client(headers={"Authorization": f"Bearer {token}"})

    async def sign_in(
        self, client: httpx.AsyncClient, username: str, code: str | None = None
    ) -> httpx.Response:
        """Through the real sign-in form, TOTP code included."""
        token = await csrf_token(client)
        if code is None and username in self.totp:
            code = pyotp.TOTP(self.totp[username]).now()
        form = {"username": username, "password": PASSWORD, "code": code or "", "csrf_token": token}
        return await client.post("/login", data=form)

    async def fold_usage(self) -> None:
        """Until every API log row is in the roll-up (rows younger than the horizon's
        look-back wait for it), so the report no longer changes under the test."""
        for _ in range(200):
            while await fold_usage(self.runtime):
                pass
            pending = self.sql(
                "SELECT count(*) FROM platform.api_logs "
                "WHERE updated_at >= (SELECT folded_until FROM ops.api_usage_rollup)"
            )
            if pending[0][0] == 0:
                return
            await anyio.sleep(0.5)
        raise AssertionError("the usage roll-up did not catch up")


async def csrf_token(client: httpx.AsyncClient, path: str = "/login") -> str:
    page = await client.get(path)
    match = CSRF_RE.search(page.text)
    assert match, f"no CSRF token on {path}: {page.status_code}"
    return match.group(1)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Harness]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield Harness(app, settings)


@contextmanager
def serving(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """``opsdeck api`` as a real server on a free port; yields its base URL."""

    def argv(port: int) -> list[str]:
        return [sys.executable, "-m", "opsdeck", "api", "--port", str(port)]

    with supervised_server("api", argv, log_path, "/readyz", env=env) as base:
        yield base


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def api_db(admin_url: str, history_template: str) -> Iterator[str]:
    """A database with two days of history, shared by the tests of one module."""
    with scratch_database(admin_url, history_template) as url:
        yield url


@pytest.fixture(scope="module")
def api_redis(services: dict[str, str]) -> str:
    client = redis.Redis.from_url(services["redis"])
    client.flushdb()
    client.close()
    return services["redis"]


@pytest.fixture(scope="session")
def alertmanager_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager, for the Mute 1h action's silences."""
    with alertmanager(tmp_path_factory.mktemp("alertmanager")) as url:
        yield url


@pytest.fixture(scope="module")
async def api(api_db: str, api_redis: str, alertmanager_url: str) -> AsyncIterator[Harness]:
    async with running(api_settings(api_db, api_redis, alertmanager_url)) as harness:
        yield harness


ALL_ROLES = ROLES
