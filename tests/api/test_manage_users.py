"""Users managed from the API's pages by a super admin: added with a password shown once,
given a role, disabled and enabled, their password and second factor reset, their sessions
ended; each change confirmed, audited, and felt at once by the user's sessions and keys.
The last super admin who can sign in is never disabled, demoted or reset."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from api.rbac import Role
from tests.api.conftest import CSRF_RE, Harness, api_settings, csrf_token, running
from tests.api.manage_flow import audit_rows, by_key, confirm, resubmit, shown_once, user_id

pytestmark = pytest.mark.anyio

ADMIN = "root-admin"
CHANGES = ("role?role=ops", "disable", "enable", "password", "totp", "sessions")


@pytest.fixture(scope="module")
async def api(api_db: str, api_redis: str) -> AsyncIterator[Harness]:
    # Sessions read their user afresh on every request: a change shows on the next one.
    settings = api_settings(api_db, api_redis, session_recheck_seconds=0)
    async with running(settings) as harness:
        harness.user(Role.SUPER_ADMIN, ADMIN)
        yield harness


async def _admin(api: Harness) -> httpx.AsyncClient:
    return await api.session_client(Role.SUPER_ADMIN, ADMIN)


async def _sign_in(api: Harness, username: str, password: str) -> httpx.Response:
    client = api.client()
    token = await csrf_token(client)
    form = {"username": username, "password": password, "code": "", "csrf_token": token}
    response = await client.post("/login", data=form)
    await client.aclose()
    return response


async def test_an_added_user_signs_in_with_the_password_shown_once(api: Harness) -> None:
    async with await _admin(api) as admin:
        listing = await admin.get("/users", headers={"Accept": "text/html"})
        assert listing.status_code == 200
        assert 'action="/users/new"' in listing.text
        path = "/users/new?username=newcomer&role=viewer"
        done = await confirm(admin, path, password="")
        assert done.status_code == 200, done.text[:500]
        password = shown_once(done)
        assert len(password) >= 20
        # The same submission again runs nothing and shows no password.
        again = await resubmit(admin, path, done)
        assert "already done" in again.text
        assert password not in again.text
    assert (await _sign_in(api, "newcomer", password)).status_code == 303
    (row,) = audit_rows(api, "action.user-add", user="newcomer")
    assert (row["actor"], row["outcome"], row["reason"]) == (
        ADMIN,
        "ok",
        "account administration test",
    )
    assert row["details"]["password"] == "generated"
    assert password not in str(api.sql("SELECT details FROM ops.audit_log"))
    assert password not in str(api.sql("SELECT result FROM ops.action_requests"))


async def test_a_password_can_be_set_instead(api: Harness) -> None:
    async with await _admin(api) as admin:
        done = await confirm(
            admin, "/users/new?username=chosen&role=finance", password="chosen password 123"
        )
        assert "shown-once" not in done.text
        assert (await confirm(admin, "/users/new?username=chosen&role=ops")).status_code == 409
        short = await confirm(admin, f"/users/{user_id(api, 'chosen')}/password", password="short")
        assert short.status_code == 400
    assert (await _sign_in(api, "chosen", "chosen password 123")).status_code == 303


async def test_a_role_change_ends_the_sessions_and_limits_the_keys(api: Harness) -> None:
    api.user(Role.OPS, "demoted")
    victim = await api.session_client(Role.OPS, "demoted")
    key = api.key_client(Role.OPS, user="demoted")
    assert (await key.get("/api/v1/api-logs?from=now-1h")).status_code == 200
    async with await _admin(api) as admin:
        page = await admin.get(f"/users/{user_id(api, 'demoted')}", headers={"Accept": "text/html"})
        assert 'action="/users/' in page.text
        assert "Change role" in page.text
        done = await confirm(admin, f"/users/{user_id(api, 'demoted')}/role?role=viewer")
        assert "demoted is now viewer" in done.text
    assert api.sql("SELECT role FROM ops.users WHERE username = 'demoted'") == [("viewer",)]
    assert (await victim.get("/bookings")).status_code == 303  # signed out
    assert (await key.get("/api/v1/api-logs?from=now-1h")).status_code == 403
    (row,) = audit_rows(api, "action.user-role", user="demoted")
    assert (row["details"]["from"], row["details"]["to"]) == ("ops", "viewer")
    await victim.aclose()
    await key.aclose()


async def test_a_disabled_user_cannot_sign_in_and_their_keys_stop(api: Harness) -> None:
    api.user(Role.OPS, "leaver")
    session = await api.session_client(Role.OPS, "leaver")
    key = api.key_client(Role.OPS, user="leaver")
    target = user_id(api, "leaver")
    async with await _admin(api) as admin:
        await confirm(admin, f"/users/{target}/disable")
        refused = await key.get("/api/v1/incidents?from=now-1h")
        assert refused.status_code == 401
        assert "disabled" in refused.json()["detail"]
        assert (await session.get("/incidents")).status_code == 303
        assert (await _sign_in(api, "leaver", "correct horse battery staple")).status_code == 401
        await confirm(admin, f"/users/{target}/enable")
    assert (await key.get("/api/v1/incidents?from=now-1h")).status_code == 200
    assert (await _sign_in(api, "leaver", "correct horse battery staple")).status_code == 303
    assert [r["outcome"] for r in audit_rows(api, "action.user-disable", user="leaver")] == ["ok"]
    assert [r["outcome"] for r in audit_rows(api, "action.user-enable", user="leaver")] == ["ok"]
    await session.aclose()
    await key.aclose()


async def test_a_reset_password_is_shown_once_and_the_old_one_stops(api: Harness) -> None:
    api.user(Role.FINANCE, "forgetful")
    async with await _admin(api) as admin:
        done = await confirm(admin, f"/users/{user_id(api, 'forgetful')}/password", password="")
    password = shown_once(done)
    assert (await _sign_in(api, "forgetful", "correct horse battery staple")).status_code == 401
    assert (await _sign_in(api, "forgetful", password)).status_code == 303
    assert audit_rows(api, "action.user-password-reset", user="forgetful")


async def test_a_second_factor_reset_forgets_the_device(api: Harness) -> None:
    api.user(Role.OPS, "lost-phone", two_factor=True)
    session = await api.session_client(Role.OPS, "lost-phone")
    async with await _admin(api) as admin:
        await confirm(admin, f"/users/{user_id(api, 'lost-phone')}/totp")
        listing = await admin.get("/users", headers={"Accept": "application/json"})
    found = {u["username"]: u for u in listing.json()["users"]}
    assert found["lost-phone"]["two_factor"] is False
    assert api.sql("SELECT totp_secret FROM ops.users WHERE username = 'lost-phone'") == [(None,)]
    assert (await session.get("/incidents")).status_code == 303
    assert audit_rows(api, "action.user-totp-reset", user="lost-phone")
    await session.aclose()


async def test_ending_sessions_signs_the_user_out_everywhere(api: Harness) -> None:
    first = await api.session_client(Role.VIEWER, "everywhere")
    second = await api.session_client(Role.VIEWER, "everywhere")
    async with await _admin(api) as admin:
        await confirm(admin, f"/users/{user_id(api, 'everywhere')}/sessions")
    for client in (first, second):
        assert (await client.get("/incidents")).status_code == 303
        await client.aclose()
    assert audit_rows(api, "action.user-sessions-end", user="everywhere")


async def test_the_last_super_admin_who_can_sign_in_stays(api: Harness) -> None:
    others = api.sql(
        "UPDATE ops.users SET disabled_at = now() WHERE role = 'super_admin' "
        "AND username <> %s AND disabled_at IS NULL RETURNING id",
        (ADMIN,),
    )
    me = user_id(api, ADMIN)
    try:
        async with await _admin(api) as admin:
            for change in ("disable", "role?role=ops", "totp"):
                refused = await confirm(admin, f"/users/{me}/{change}")
                assert refused.status_code == 409, change
                assert "last super admin who can sign in" in refused.text
            assert api.sql("SELECT role, disabled_at FROM ops.users WHERE id = %s", (me,)) == [
                ("super_admin", None)
            ]
            # With a second super admin who can sign in, the first may step down.
            api.user(Role.SUPER_ADMIN, "successor")
            demoted = await confirm(admin, f"/users/{me}/role?role=ops")
            assert demoted.status_code == 200
    finally:
        api.sql("UPDATE ops.users SET role = 'super_admin' WHERE id = %s", (me,))
        api.sql(
            "UPDATE ops.users SET disabled_at = NULL WHERE id = ANY(%s)", ([r[0] for r in others],)
        )
    refusals = audit_rows(api, "action.user-disable")
    assert any(r["outcome"] == "failed" and r["target_id"] == str(me) for r in refusals)


@pytest.mark.parametrize("role", [Role.OPS, Role.FINANCE, Role.VIEWER])
async def test_only_super_admins_manage_users(api: Harness, role: Role) -> None:
    target = user_id(api, api.user(Role.VIEWER, "bystander"))
    session = await api.session_client(role)
    key = api.key_client(role)
    for client in (session, key):
        assert (
            await client.get("/users", headers={"Accept": "application/json"})
        ).status_code == 403
        for change in CHANGES:
            assert (await client.get(f"/users/{target}/{change}")).status_code == 403
    token = await csrf_token(session)
    for change in CHANGES:
        form = {"csrf_token": token, "reason": "trying my luck", "password": ""}
        assert (await session.post(f"/users/{target}/{change}", data=form)).status_code == 403
        assert (await by_key(key, f"/users/{target}/{change}")).status_code == 403
    assert (await by_key(key, "/users/new?username=intruder&role=super_admin")).status_code == 403
    assert api.sql("SELECT 1 FROM ops.users WHERE username = 'intruder'") == []
    assert api.sql("SELECT disabled_at FROM ops.users WHERE id = %s", (target,)) == [(None,)]
    denied = api.sql(
        "SELECT count(*) FROM ops.audit_log WHERE outcome = 'denied' AND actor_role = %s "
        "AND target_id LIKE %s",
        (role.value, "POST /users/%"),
    )
    assert denied[0][0] >= 2 * len(CHANGES) + 1


async def test_unknown_roles_and_parameters_are_refused(api: Harness) -> None:
    async with await _admin(api) as admin:
        bad_role = await admin.get(
            "/users/new?username=x&role=root", headers={"Accept": "application/json"}
        )
        assert bad_role.status_code == 400
        assert "root" in bad_role.json()["detail"]
        extra = await admin.get("/users?sort=name", headers={"Accept": "application/json"})
        assert extra.status_code == 400
        assert "sort" in extra.json()["detail"]
        page = await admin.get("/users", headers={"Accept": "text/html"})
        assert CSRF_RE.search(page.text)
