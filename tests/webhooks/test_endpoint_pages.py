"""Webhook endpoints managed from their pages (server-rendered forms, confirmed, audited):
create, edit, retry schedule and rate limit of their own, test events, replays with a dry
run, secret rotation, disable and enable; refused to every role without webhooks.manage;
and the endpoint page's delivery log."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from api.rbac import ROLES, Role, allowed
from api.webhooks.endpoint_changes import routes as change_routes
from api.webhooks.endpoint_page import LOG_PAGE
from tests.api.conftest import Harness, running
from tests.incidents.actions_client import confirmation, submit
from tests.webhooks.endpoint_forms import REASON, change, endpoint_fields, row, shown_once
from tests.webhooks.gateway import gateway_settings
from tests.webhooks.harness import endpoint, send

pytestmark = pytest.mark.anyio
MANAGE = "webhooks.manage"
PAGES = "/webhook-endpoints"
SETTINGS = (
    "SELECT url, event_types, description, retry_schedule_seconds, rate_limit_per_second, "
    "enabled, updated_at FROM ops.webhook_endpoints ORDER BY id"
)


@pytest.fixture
async def gw(db_url: str, redis_url: str) -> AsyncIterator[Harness]:
    async with running(gateway_settings(db_url, redis_url)) as harness:
        yield harness


def _audit(gw: Harness, outcome: str = "ok") -> list[tuple[str, str, str]]:
    rows = gw.sql(
        "SELECT action, actor, target_id FROM ops.audit_log "
        "WHERE action LIKE 'action.webhook-endpoint-%%' AND outcome = %s ORDER BY id",
        (outcome,),
    )
    return [(str(a), str(b), str(c)) for a, b, c in rows]


async def test_every_form_changes_the_endpoint_once_with_an_audit_row(gw: Harness) -> None:
    user = gw.user(Role.OPS, "olga")
    async with await gw.session_client(Role.OPS, "olga") as ops:
        fields = endpoint_fields(
            url="https://partner.example/hooks",
            event_types="payment.*, refund.created",
            description="Partner A",
            retry_schedule="10, 60, 600",
            rate_limit="2.5",
        )
        created = await change(ops, f"{PAGES}/new", fields)
        assert created.status_code == 200, created.text[:500]
        secret = shown_once(created)
        assert secret.startswith("whsec_")
        (made,) = row(gw.sql("SELECT id FROM ops.webhook_endpoints"))
        stored = row(
            gw.sql(
                "SELECT url, event_types, description, retry_schedule_seconds, "
                "rate_limit_per_second, enabled FROM ops.webhook_endpoints"
            )
        )
        assert stored == (
            "https://partner.example/hooks",
            ["payment.*", "refund.created"],
            "Partner A",
            [10.0, 60.0, 600.0],
            2.5,
            True,
        )
        page = await ops.get(f"{PAGES}/{made}")
        assert "10, 60, 600 (its own)" in page.text
        assert secret not in page.text  # shown once, never again

        edit = f"{PAGES}/{made}/edit?retry_schedule=5%2C+5"
        text, csrf, key = await confirmation(ops, edit)
        assert 'value="5, 5"' in text  # the page's form prefills the confirmation
        edited = await submit(
            ops,
            edit,
            csrf,
            key,
            REASON,
            endpoint_fields(
                url="https://partner.example/v2", event_types="*", retry_schedule="5, 5"
            ),
        )
        assert edited.status_code == 200, edited.text[:500]
        again = await submit(
            ops, edit, csrf, key, REASON, endpoint_fields(url="https://x.example", event_types="*")
        )
        assert 'data-replayed="true"' in again.text  # one change per confirmation
        stored = row(
            gw.sql(
                "SELECT url, event_types, description, retry_schedule_seconds, "
                "rate_limit_per_second FROM ops.webhook_endpoints"
            )
        )
        assert stored == ("https://partner.example/v2", ["*"], "", [5.0, 5.0], None)

        rotated = await change(ops, f"{PAGES}/{made}/rotate-secret")
        new_secret = shown_once(rotated)
        assert new_secret.startswith("whsec_")
        assert new_secret != secret
        secrets = gw.sql(
            "SELECT expires_at IS NOT NULL FROM ops.webhook_endpoint_secrets ORDER BY id"
        )
        assert secrets == [(True,), (False,)]  # the old one signs for 24 h more

        send(gw.db_url, 3)
        disabled = await change(ops, f"{PAGES}/{made}/disable")
        assert "3 queued deliveries parked" in disabled.text
        assert gw.sql("SELECT enabled FROM ops.webhook_endpoints") == [(False,)]
        twice = await ops.get(f"{PAGES}/{made}/disable")
        assert "disabled already: this changes nothing" in twice.text
        enabled = await change(ops, f"{PAGES}/{made}/enable")
        assert enabled.status_code == 200
        assert gw.sql("SELECT enabled FROM ops.webhook_endpoints") == [(True,)]

        tested = await change(ops, f"{PAGES}/{made}/send-test")
        assert tested.status_code == 200
        link = re.search(r'<a href="(/webhooks/outbound/\d+)">Back</a>', tested.text)
        assert link, tested.text[:500]
        delivery = await ops.get(link.group(1))
        assert "webhook.test" in delivery.text

    target = str(made)
    assert _audit(gw) == [
        ("action.webhook-endpoint-create", user, "new"),
        ("action.webhook-endpoint-edit", user, target),
        ("action.webhook-endpoint-rotate-secret", user, target),
        ("action.webhook-endpoint-disable", user, target),
        ("action.webhook-endpoint-enable", user, target),
        ("action.webhook-endpoint-test", user, target),
    ]
    details = gw.sql("SELECT details::text FROM ops.audit_log")
    assert not [d for (d,) in details if secret in d or new_secret in d]
    created_detail = gw.sql(
        "SELECT details->>'endpoint' FROM ops.audit_log "
        "WHERE action = 'action.webhook-endpoint-create'"
    )
    assert created_detail == [(target,)]


@pytest.mark.parametrize(
    ("fields", "named", "value"),
    [
        ({"retry_schedule": "5, -1"}, "retry_schedule", "-1"),
        ({"retry_schedule": "5, soon"}, "retry_schedule", "soon"),
        ({"retry_schedule": "5, 0"}, "retry_schedule", "0"),
        ({"retry_schedule": "5, 90000"}, "retry_schedule", "90000"),
        ({"retry_schedule": "5, nan"}, "retry_schedule", "nan"),
        ({"retry_schedule": ", ".join(["1"] * 21)}, "retry_schedule", "1 to 20 delays"),
        ({"rate_limit": "0"}, "rate_limit", "above 0"),
        ({"rate_limit": "fast"}, "rate_limit", "fast"),
        ({"url": "http://10.1.2.3/hooks"}, "url", "10.1.2.3 is a private address"),
        ({"url": "http://169.254.169.254/latest"}, "url", "cloud metadata"),
        ({"url": "http://[::ffff:127.0.0.2]/x"}, "url", "IPv4 127.0.0.2 inside IPv6"),
        ({"event_types": "Payment!"}, "event_types", "event types like"),
    ],
)
async def test_bad_values_are_refused_naming_them(
    gw: Harness, fields: dict[str, str], named: str, value: str
) -> None:
    made, _ = endpoint(gw.db_url, "https://partner.example/hooks")
    before = gw.sql(SETTINGS)
    good = {"url": "https://partner.example/hooks", "event_types": "*"}
    async with await gw.session_client(Role.OPS) as ops:
        for path in (f"{PAGES}/new", f"{PAGES}/{made}/edit"):
            refused = await change(ops, path, endpoint_fields(**{**good, **fields}))
            assert refused.status_code == 400, refused.text[:300]
            assert f"{named}: " in refused.text
            assert value in refused.text
    assert gw.sql(SETTINGS) == before
    assert len(_audit(gw, "failed")) == 2


async def test_the_json_routes_check_schedules_and_urls_alike(gw: Harness) -> None:
    async with gw.key_client(Role.OPS) as ops:
        path = "/api/v1/webhook-endpoints"
        body = {"url": "https://partner.example/h", "retry_schedule_seconds": [1, 0]}
        refused = await ops.post(path, json=body)
        assert refused.status_code == 400
        assert refused.json()["invalid_params"][0]["name"] == "retry_schedule_seconds"
        assert "0 is not a delay" in refused.text
        blocked = await ops.post(path, json={"url": "http://127.0.0.9:8080/"})
        assert blocked.status_code == 400
        assert "loopback" in blocked.text
        made = await ops.post(path, json={**body, "retry_schedule_seconds": [1, 2.5]})
        assert made.json()["retry_schedule_seconds"] == [1.0, 2.5]
        back = await ops.patch(f"{path}/{made.json()['id']}", json={"retry_schedule_seconds": None})
        assert back.json()["retry_schedule_seconds"] is None


async def test_every_form_is_refused_to_roles_without_manage(gw: Harness) -> None:
    made, _ = endpoint(gw.db_url, "https://partner.example/hooks")
    gw.sql("UPDATE ops.webhook_endpoints SET enabled = false WHERE id = %s", (made,))
    forms = [f"{PAGES}/new"] + [
        spec.path.replace("{id}", str(made)) for spec in change_routes() if "GET" in spec.methods
    ]
    refused_roles = [role for role in ROLES if not allowed(role, MANAGE)]
    assert refused_roles == [Role.FINANCE, Role.VIEWER]
    for role in refused_roles:
        async with await gw.session_client(role) as client:
            token_page = await client.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', token_page.text)
            assert csrf
            for path in forms:
                assert (await client.get(path)).status_code == 403, path
                posted = await submit(client, path, csrf.group(1), "forged.key", REASON)
                assert posted.status_code == 403, path
            page = await client.get(f"{PAGES}/{made}")
            assert page.status_code == (200 if allowed(role, "webhooks.read") else 403)
    denied = gw.sql(
        "SELECT actor_role, count(*) FROM ops.audit_log WHERE outcome = 'denied' "
        "AND target_id LIKE '%%/webhook-endpoints/%%' GROUP BY 1 ORDER BY 1"
    )
    assert denied == [(role.value, 2 * len(forms)) for role in refused_roles]
    assert gw.sql("SELECT enabled, url FROM ops.webhook_endpoints") == [
        (False, "https://partner.example/hooks")
    ]


async def test_the_page_shows_its_delivery_log_newest_first(gw: Harness) -> None:
    mine, _ = endpoint(gw.db_url, "https://partner.example/mine")
    other, _ = endpoint(gw.db_url, "https://partner.example/other", event_types=("refund.*",))
    send(gw.db_url, LOG_PAGE + 5)
    send(gw.db_url, 2, event_type="refund.created")
    ours = [
        int(r[0])
        for r in gw.sql(
            "SELECT id FROM ops.webhook_deliveries WHERE endpoint_id = %s ORDER BY id DESC",
            (mine,),
        )
    ]
    theirs = {
        int(r[0])
        for r in gw.sql("SELECT id FROM ops.webhook_deliveries WHERE endpoint_id = %s", (other,))
    }
    assert len(ours) == LOG_PAGE + 7
    async with await gw.session_client(Role.OPS) as ops:
        page = await ops.get(f"{PAGES}/{mine}")
        assert page.status_code == 200
        shown = [int(i) for i in re.findall(r'<tr data-delivery="(\d+)">', page.text)]
        assert shown == ours[:LOG_PAGE]
        assert not set(shown) & theirs
        assert "pending: 57" in page.text
        older = re.search(r'href="([^"]+)" rel="next" id="older"', page.text)
        assert older
        rest = await ops.get(older.group(1).replace("&amp;", "&"))
        assert [int(i) for i in re.findall(r'<tr data-delivery="(\d+)">', rest.text)] == ours[
            LOG_PAGE:
        ]
        first = await ops.get(f"/webhooks/outbound/{shown[0]}")
        assert first.status_code == 200
        assert f"/webhook-endpoints/{mine}" in first.text
        assert "refund.created" in first.text  # the newest: the last event sent
        listed = await ops.get(PAGES)
        assert 'id="adds" href="/webhook-endpoints/new"' in listed.text
        unknown = await ops.get(f"{PAGES}/{mine}?page=2")
        assert unknown.status_code == 400
        assert "page" in unknown.text
    async with await gw.session_client(Role.FINANCE) as finance:
        assert (await finance.get(f"{PAGES}/{mine}")).status_code == 403
