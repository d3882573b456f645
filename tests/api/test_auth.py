"""Sign-in: argon2 passwords with TOTP (a device enrolled at the first sign-in), signed HttpOnly
SameSite=Strict session cookies revocable in Redis, API keys, trusted-proxy SSO, CSRF and
rate limits."""

from __future__ import annotations

import hashlib

import pyotp
import pytest

from api.auth.sessions import COOKIE
from api.rbac import Role
from tests.api.conftest import PASSWORD, Harness, api_settings, csrf_token, running
from tests.conftest import opsdeck_env, run_opsdeck

pytestmark = pytest.mark.anyio


async def test_super_admin_signs_in_with_password_and_totp(api: Harness) -> None:
    username = api.user(Role.SUPER_ADMIN, "grace")
    async with api.client() as client:
        assert (await api.sign_in(client, username, code="")).status_code == 401
        assert (await api.sign_in(client, username, code="123456")).status_code == 401
        code = pyotp.TOTP(api.totp[username]).now()
        response = await api.sign_in(client, username, code=code)
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Path=/" in cookie
        assert f"Max-Age={int(api.settings.api.session_ttl_seconds)}" in cookie
        home = await client.get("/")
        assert home.status_code == 200
        assert "grace" in home.text
    async with api.client() as replay:
        assert (await api.sign_in(replay, username, code=code)).status_code == 401  # used once
    ttl = await api.runtime.redis.ttl(f"opsdeck:session:{await _session_id(api, cookie)}")
    assert 0 < ttl <= api.settings.api.session_ttl_seconds


async def _session_id(api: Harness, set_cookie: str) -> str:
    value = set_cookie.split(";", maxsplit=1)[0].split("=", 1)[1].strip('"')
    session = await api.runtime.sessions.load(value)
    assert session is not None
    return session.id


async def test_a_wrong_password_and_a_password_alone(api: Harness) -> None:
    username = api.user(Role.VIEWER, "vera")
    async with api.client() as client:
        token = await csrf_token(client)
        wrong = await client.post(
            "/login", data={"username": username, "password": "nope", "csrf_token": token}
        )
        assert wrong.status_code == 401
        assert "Unknown user, wrong password" in wrong.text
        # Without a device, the right password leads to enrolling one, and to nothing else.
        right = await api.sign_in(client, username)
        assert right.status_code == 303
        assert right.headers["location"] == "/login/enrol"
        assert COOKIE not in client.cookies
        assert (await client.get("/api/v1/bookings")).status_code == 401


async def test_sign_out_and_revocation_end_sessions_server_side(api: Harness) -> None:
    async with await api.session_client(Role.OPS, "olga") as client:
        assert (await client.get("/api/v1/bookings")).status_code == 200
        token = await csrf_token(client)
        assert (await client.post("/logout", data={"csrf_token": token})).status_code == 303
    async with await api.session_client(Role.OPS, "olga") as client:
        stolen = client.cookies[COOKIE]
        assert (await client.get("/api/v1/bookings")).status_code == 200
        result = run_opsdeck(
            "users",
            "revoke-sessions",
            "olga",
            env=opsdeck_env(DATABASE_URL=api.db_url, REDIS_URL=str(api.settings.redis_url)),
        )
        assert result.returncode == 0, result.stderr
        assert "ended the sessions of olga" in result.stdout
        # The signed-out one is gone already.
        assert "deleted 1 session(s) from Redis" in result.stdout
    async with api.client() as thief:
        thief.cookies.set(COOKIE, stolen)
        assert (await thief.get("/api/v1/bookings")).status_code == 401
        thief.cookies.set(COOKIE, stolen[:-3] + "abc")
        assert (await thief.get("/api/v1/bookings")).status_code == 401


async def test_role_change_and_disabling_end_sessions(api: Harness) -> None:
    env = opsdeck_env(DATABASE_URL=api.db_url, REDIS_URL=str(api.settings.redis_url))
    async with await api.session_client(Role.OPS, "rita") as client:
        result = run_opsdeck("users", "set-role", "rita", "super_admin", env=env)
        assert result.returncode == 0
        assert "TOTP secret" in result.stdout
        assert (await client.get("/api/v1/bookings")).status_code == 401
    assert run_opsdeck("users", "disable", "rita", env=env).returncode == 0
    async with api.client() as client:
        token = await csrf_token(client)
        form = {"username": "rita", "password": PASSWORD, "code": "", "csrf_token": token}
        assert (await client.post("/login", data=form)).status_code == 401


async def test_api_keys_are_hashed_scoped_revocable_and_rotatable(api: Harness) -> None:
    env = opsdeck_env(DATABASE_URL=api.db_url)
    owner = ["--user", api.user(Role.OPS)]
    created = run_opsdeck(
        "api-keys",
        "create",
        *owner,
        "--name",
        "etl",
        "--role",
        "ops",
        "--scope",
        "bookings.read",
        env=env,
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.splitlines()[-1]
    prefix = token.split("_")[1]
    stored = api.sql("SELECT secret_hash, scopes FROM ops.api_keys WHERE prefix = %s", (prefix,))
    assert stored == [(hashlib.sha256(token.encode()).digest(), ["bookings.read"])]
    assert token not in str(api.sql("SELECT * FROM ops.api_keys"))
    headers = {"Authorization": f"Bearer {token}"}
    async with api.client(headers=headers) as client:
        assert (await client.get("/api/v1/bookings")).status_code == 200
        assert (await client.get("/api/v1/api-logs")).status_code == 403  # ops may, the key may not
    assert api.sql(
        "SELECT last_used_at IS NOT NULL FROM ops.api_keys WHERE prefix = %s", (prefix,)
    ) == [(True,)]
    listed = run_opsdeck("api-keys", "list", env=env)
    assert prefix in listed.stdout
    assert token not in listed.stdout

    rotated = run_opsdeck("api-keys", "rotate", prefix, env=env)
    new_token = rotated.stdout.splitlines()[-1]
    async with (
        api.client(headers=headers) as old,
        api.client(headers={"Authorization": f"Bearer {new_token}"}) as new,
    ):
        assert (await old.get("/api/v1/bookings")).status_code == 401
        assert (await new.get("/api/v1/bookings")).status_code == 200
        assert run_opsdeck("api-keys", "revoke", new_token.split("_")[1], env=env).returncode == 0
        assert (await new.get("/api/v1/bookings")).status_code == 401
    bad_scope = run_opsdeck(
        "api-keys",
        "create",
        *owner,
        "--name",
        "x",
        "--role",
        "viewer",
        "--scope",
        "audit.read",
        env=env,
    )
    assert bad_scope.returncode == 1
    assert "does not hold audit.read" in bad_scope.stderr
    async with api.client(headers={"Authorization": "Bearer opsk_nonsense"}) as client:
        response = await client.get("/api/v1/bookings")
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_trusted_proxy_sso(api: Harness, api_db: str, api_redis: str) -> None:
    api.user(Role.OPS, "sso-user")
    settings = api_settings(
        api_db,
        api_redis,
        trusted_proxy_addresses=("10.9.0.0/24",),
        trusted_proxy_secret="proxy-shared-secret",
    )
    vouched = {"X-Forwarded-Email": "sso-user", "X-Opsdeck-Proxy-Secret": "proxy-shared-secret"}
    async with running(settings) as harness:
        async with harness.client(address="10.9.0.5", headers=vouched) as proxy:
            assert (await proxy.get("/api/v1/api-logs")).status_code == 200
            assert (await proxy.get("/api/v1/payments")).status_code == 403  # the role is opsdeck's
        async with harness.client(
            address="10.9.0.5", headers={"X-Forwarded-Email": "sso-user"}
        ) as no_secret:
            assert (await no_secret.get("/api/v1/api-logs")).status_code == 401
        async with harness.client(address="192.0.2.10", headers=vouched) as direct:
            assert (await direct.get("/api/v1/api-logs")).status_code == 401
        stranger = {**vouched, "X-Forwarded-Email": "nobody@example.com"}
        async with harness.client(address="10.9.0.5", headers=stranger) as proxy:
            assert (await proxy.get("/api/v1/api-logs")).status_code == 403


async def test_csrf_is_required_for_every_cookie_authenticated_change(api: Harness) -> None:
    username = api.user(Role.VIEWER, "csrf-victim")
    async with api.client() as client:
        form = {"username": username, "password": PASSWORD}
        assert (await client.post("/login", data=form)).status_code == 403
        assert (
            await client.post("/login", data={**form, "csrf_token": "forged"})
        ).status_code == 403
    async with api.client() as attacker:
        foreign = await csrf_token(attacker)
    async with await api.session_client(Role.SUPER_ADMIN) as client:
        grant = {"subject_type": "customer", "subject_id": "1", "reason": "csrf test reason"}
        assert (
            await client.post("/unmask", data={**grant, "csrf_token": foreign})
        ).status_code == 403
        assert (await client.post("/api/v1/unmask", json=grant)).status_code == 403
        assert (await client.post("/logout", data={"csrf_token": foreign})).status_code == 403
        token = await csrf_token(client)
        assert (
            await client.post("/unmask", data={**grant, "csrf_token": token})
        ).status_code == 303


async def test_sign_in_redirects_only_to_local_pages(api: Harness) -> None:
    for n, (target, expected) in enumerate(
        (
            ("/payments?from=now-6h", "/payments?from=now-6h"),
            ("//evil.example", "/"),
            ("https://evil.example", "/"),
        )
    ):
        # A user each: a TOTP code signs in once.
        username = api.user(Role.VIEWER, f"redirected-{n}", two_factor=True)
        async with api.client() as client:
            token = await csrf_token(client)
            code = pyotp.TOTP(api.totp[username]).now()
            form = {
                "username": username,
                "password": PASSWORD,
                "code": code,
                "next": target,
                "csrf_token": token,
            }
            response = await client.post("/login", data=form)
            assert response.headers["location"] == expected


async def test_rate_limits(api_db: str, api_redis: str) -> None:
    settings = api_settings(
        api_db, api_redis, login_user_failures_before_backoff=3, requests_per_minute=5
    )
    async with running(settings) as harness:
        username = harness.user(Role.VIEWER, "limited")
        async with harness.client() as client:
            statuses = []
            for _ in range(4):
                token = await csrf_token(client)
                form = {"username": username, "password": "wrong", "csrf_token": token}
                statuses.append((await client.post("/login", data=form)).status_code)
            assert statuses == [401, 401, 401, 429]
        async with harness.key_client(Role.VIEWER) as client:
            codes = [(await client.get("/api/v1/incidents")).status_code for _ in range(6)]
            assert codes == [200] * 5 + [429]
            limited = await client.get("/api/v1/incidents")
            assert int(limited.headers["retry-after"]) >= 1
            assert limited.headers["content-type"] == "application/problem+json"
