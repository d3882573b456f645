"""API keys managed from their pages: each user makes, rotates and revokes their own (super
admins anyone's), the secret shown once; a key holds only its scopes, within its user's
role; it expires; it has a rate limit of its own; its requests per day show on its page;
and nobody but its user and the super admins sees it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import anyio
import httpx
import pytest

from api.rbac import Role
from tests.api.conftest import Harness, api_settings, running
from tests.api.manage_flow import audit_rows, by_key, confirm, resubmit, shown_once

pytestmark = pytest.mark.anyio

JSON = {"Accept": "application/json"}
INCIDENTS = "/api/v1/incidents?from=now-1h"  # incidents.read: every role
USAGE = "/api/v1/usage?from=now-1h"  # usage.read: every role


@pytest.fixture(scope="module")
async def api(api_db: str, api_redis: str) -> AsyncIterator[Harness]:
    async with running(api_settings(api_db, api_redis, session_recheck_seconds=0)) as harness:
        yield harness


def _bearer(api: Harness, token: str) -> httpx.AsyncClient:
    return api.client(headers={"Authorization": f"Bearer {token}"})


def _key_id(api: Harness, token: str) -> int:
    prefix = token.split("_")[1]
    return int(api.sql("SELECT id FROM ops.api_keys WHERE prefix = %s", (prefix,))[0][0])


async def _create(client: httpx.AsyncClient, query: str) -> tuple[httpx.Response, str]:
    done = await confirm(client, f"/api-keys/new?{query}")
    assert done.status_code == 200, done.text[:800]
    return done, shown_once(done)


async def test_a_key_made_on_its_page_holds_only_its_scopes(api: Harness) -> None:
    async with await api.session_client(Role.VIEWER, "scoped") as me:
        page = await me.get("/api-keys", headers={"Accept": "text/html"})
        assert 'value="incidents.read"' in page.text
        assert 'value="users.manage"' not in page.text
        done, token = await _create(me, "name=reader&scope=incidents.read")
        again = await resubmit(me, "/api-keys/new?name=reader&scope=incidents.read", done)
        assert "already done" in again.text
        assert token not in again.text
        key_page = await me.get(f"/api-keys/{_key_id(api, token)}", headers={"Accept": "text/html"})
        assert token not in key_page.text
        assert token.split("_")[1] in key_page.text
    async with _bearer(api, token) as key:
        assert (await key.get(INCIDENTS)).status_code == 200
        outside = await key.get(USAGE)
        assert outside.status_code == 403
        assert "scopes do not include usage.read" in outside.json()["detail"]
        # It cannot make itself a wider key either.
        wider = await by_key(key, "/api-keys/new?name=wider&scope=incidents.read")
        assert wider.status_code == 403
    (row,) = audit_rows(api, "action.api-key-create", key=token.split("_")[1])
    assert (row["actor"], row["outcome"], row["details"]["scopes"]) == (
        "scoped",
        "ok",
        ["incidents.read"],
    )
    assert token not in str(api.sql("SELECT details FROM ops.audit_log"))
    assert token not in str(api.sql("SELECT result FROM ops.action_requests"))


async def test_scopes_beyond_the_role_or_unknown_are_refused_by_name(api: Harness) -> None:
    async with await api.session_client(Role.VIEWER, "modest") as me:
        unknown = await me.get(
            "/api-keys/new?name=x&scope=incidents.read,launch.rockets", headers=JSON
        )
        assert unknown.status_code == 400
        assert "launch.rockets" in unknown.json()["detail"]
        beyond = await me.get(
            "/api-keys/new?name=x&scope=audit.read&scope=users.manage", headers=JSON
        )
        assert beyond.status_code == 400
        assert "audit.read, users.manage" in beyond.json()["detail"]
        none = await me.get("/api-keys/new?name=x", headers=JSON)
        assert none.status_code == 400
    async with api.key_client(Role.OPS, ["api_keys.manage"]) as key:
        more = await by_key(key, "/api-keys/new?name=more&scope=incidents.read")
        assert more.status_code == 400
        assert "this API key does not hold incidents.read" in more.json()["detail"]
        same = await by_key(key, "/api-keys/new?name=same&scope=api_keys.manage")
        assert same.status_code == 200
        assert same.json()["shown_once"]["API key"].startswith("opsk_")


async def test_an_expired_key_is_refused_as_expired(api: Harness) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    async with await api.session_client(Role.OPS, "expiring") as me:
        past = await me.get(
            "/api-keys/new?name=x&scope=incidents.read&expires=2020-01-01", headers=JSON
        )
        assert past.status_code == 400
        _, token = await _create(me, f"name=short&scope=incidents.read&expires={tomorrow}")
    async with _bearer(api, token) as key:
        assert (await key.get(INCIDENTS)).status_code == 200
        api.sql(
            "UPDATE ops.api_keys SET expires_at = now() - interval '1 second' WHERE prefix = %s",
            (token.split("_")[1],),
        )
        refused = await key.get(INCIDENTS)
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]


async def test_limits_change_on_the_key_page(api: Harness) -> None:
    later = (datetime.now(UTC) + timedelta(days=30)).date()
    async with await api.session_client(Role.FINANCE, "limited") as me:
        _, token = await _create(me, "name=limits&scope=usage.read")
        key_id = _key_id(api, token)
        await confirm(me, f"/api-keys/{key_id}/limits?expires={later.isoformat()}&rate_limit=50")
        too_fast = await me.get(f"/api-keys/{key_id}/limits?rate_limit=100000000", headers=JSON)
        assert too_fast.status_code == 400
        page = await me.get(f"/api-keys/{key_id}", headers=JSON)
    shown = page.json()["key"]
    assert shown["rate_limit_per_minute"] == 50
    assert shown["expires_at"].startswith(later.isoformat())
    assert audit_rows(api, "action.api-key-limits", key=token.split("_")[1])


async def _start_of_a_minute() -> None:
    """Wait out the end of a fixed rate-limit window, so the next requests share one."""
    left = 60 - time.time() % 60
    if left < 15:
        await anyio.sleep(left + 0.5)


async def test_a_key_trips_its_own_rate_limit(api: Harness) -> None:
    async with await api.session_client(Role.OPS, "throttled") as me:
        _, slow = await _create(me, "name=slow&scope=incidents.read&rate_limit=3")
        _, other = await _create(me, "name=other&scope=incidents.read")
    await _start_of_a_minute()
    async with _bearer(api, slow) as key, _bearer(api, other) as spare:
        statuses = [(await key.get(INCIDENTS)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = await key.get(INCIDENTS)
        assert "more than 3 requests a minute" in refused.json()["detail"]
        assert (await spare.get(INCIDENTS)).status_code == 200


async def test_rotation_stops_the_old_secret(api: Harness) -> None:
    async with await api.session_client(Role.OPS, "rotator") as me:
        _, old = await _create(me, "name=rotating&scope=incidents.read&rate_limit=77")
        done = await confirm(me, f"/api-keys/{_key_id(api, old)}/rotate")
        new = shown_once(done)
        again = await resubmit(me, f"/api-keys/{_key_id(api, old)}/rotate", done)
        assert "already done" in again.text
        assert new not in again.text
    assert new != old
    async with _bearer(api, old) as stale, _bearer(api, new) as fresh:
        assert (await stale.get(INCIDENTS)).status_code == 401
        assert (await fresh.get(INCIDENTS)).status_code == 200
    assert api.sql(
        "SELECT scopes, rate_limit_per_minute FROM ops.api_keys WHERE prefix = %s",
        (new.split("_")[1],),
    ) == [(["incidents.read"], 77)]
    (row,) = audit_rows(api, "action.api-key-rotate", key=old.split("_")[1])
    assert row["details"]["replaced_by"] == new.split("_")[1]


async def test_a_revoked_key_is_refused(api: Harness) -> None:
    async with await api.session_client(Role.VIEWER, "revoker") as me:
        _, token = await _create(me, "name=doomed&scope=incidents.read")
        await confirm(me, f"/api-keys/{_key_id(api, token)}/revoke")
        listing = await me.get("/api-keys", headers=JSON)
    assert {k["prefix"]: k["status"] for k in listing.json()["keys"]}[
        token.split("_")[1]
    ] == "revoked"
    async with _bearer(api, token) as key:
        assert (await key.get(INCIDENTS)).status_code == 401
    assert audit_rows(api, "action.api-key-revoke", key=token.split("_")[1])


async def test_the_key_page_shows_requests_per_day(api: Harness) -> None:
    async with await api.session_client(Role.OPS, "counted") as me:
        _, token = await _create(me, "name=counted&scope=incidents.read")
        async with _bearer(api, token) as key:
            for _ in range(5):
                assert (await key.get(INCIDENTS)).status_code == 200
            assert (await key.get(USAGE)).status_code == 403
        await api.runtime.key_usage.flush(api.runtime.ops)
        page = await me.get(f"/api-keys/{_key_id(api, token)}", headers=JSON)
        html = await me.get(f"/api-keys/{_key_id(api, token)}", headers={"Accept": "text/html"})
    today = datetime.now(UTC).date().isoformat()
    assert page.json()["usage"] == [
        {"day": today, "calls": 6, "client_errors": 1, "server_errors": 0}
    ]
    assert f'data-day="{today}"' in html.text


async def test_another_users_keys_stay_hidden(api: Harness) -> None:
    async with await api.session_client(Role.OPS, "owner-a") as owner:
        _, token = await _create(owner, "name=private&scope=incidents.read")
    key_id, prefix = _key_id(api, token), token.split("_")[1]
    async with await api.session_client(Role.OPS, "nosy-b") as nosy:
        assert (await nosy.get(f"/api-keys/{key_id}", headers=JSON)).status_code == 404
        assert (await nosy.get("/api-keys?user=owner-a", headers=JSON)).status_code == 403
        listing = await nosy.get("/api-keys", headers={"Accept": "text/html"})
        assert listing.status_code == 200
        assert prefix not in listing.text
        assert (await nosy.get(f"/api-keys/{key_id}/revoke", headers=JSON)).status_code == 404
        stolen = await nosy.get(
            "/api-keys/new?name=x&scope=incidents.read&user=owner-a", headers=JSON
        )
        assert stolen.status_code == 403
    async with api.key_client(Role.OPS, user="nosy-b") as nosy_key:
        assert (await by_key(nosy_key, f"/api-keys/{key_id}/revoke")).status_code == 404
    async with _bearer(api, token) as key:
        assert (await key.get(INCIDENTS)).status_code == 200
    async with await api.session_client(Role.SUPER_ADMIN, "key-admin") as admin:
        mine = await admin.get("/api-keys?user=owner-a", headers=JSON)
        assert [k["prefix"] for k in mine.json()["keys"]] == [prefix]
        made = await confirm(admin, "/api-keys/new?name=for-a&scope=incidents.read&user=owner-a")
        assert "created for owner-a" in made.text
        too_much = await admin.get(
            "/api-keys/new?name=x&scope=audit.read&user=owner-a", headers=JSON
        )
        assert too_much.status_code == 400
        await confirm(admin, f"/api-keys/{key_id}/revoke")
    async with _bearer(api, token) as key:
        assert (await key.get(INCIDENTS)).status_code == 401


async def test_a_user_name_postgresql_cannot_hold_is_refused_by_name(api: Harness) -> None:
    async with await api.session_client(Role.SUPER_ADMIN, "naming") as admin:
        response = await admin.get("/api-keys", params={"user": "ada\x00"})
    assert response.status_code == 400, response.text
    assert "user" in response.text
