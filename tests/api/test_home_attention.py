"""The home page says what needs attention now: its counts equal plain SQL over injected
rows, each link (a real route with its own parameters) opens a page showing exactly the
rows counted, and each role sees only the items whose pages it may open."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from api.rbac import Role
from tests.api.conftest import Harness, api_settings, running
from tests.api.pages_html import attention, column
from tests.conftest import scratch_database

pytestmark = pytest.mark.anyio

ROWS = """
INSERT INTO ops.incidents (title, severity, status, started_at) VALUES
    ('Payments down', 'critical', 'triggered', now() - interval '40 days'),
    ('Bookings slow', 'critical', 'acknowledged', now() - interval '2 hours'),
    ('Old outage', 'critical', 'resolved', now() - interval '3 hours'),
    ('API 5xx', 'high', 'triggered', now() - interval '1 hour'),
    ('Sync lagging', 'medium', 'resolved', now() - interval '1 hour');
INSERT INTO ops.webhook_endpoints (url, max_in_flight, enabled, disabled_reason, created_at)
VALUES ('https://partner.example/a', 5, false, 'failing for 5 days', now() - interval '400 days'),
       ('https://partner.example/b', 5, true, NULL, now() - interval '1 day'),
       ('https://partner.example/c', 5, false, 'disabled by hand', now() - interval '2 days');
INSERT INTO ops.webhook_messages (event_type, body, source) VALUES ('booking.confirmed', '{}', 'test');
INSERT INTO ops.webhook_deliveries (message_id, endpoint_id, status)
SELECT m.id, e.id, 'dead' FROM ops.webhook_messages m, ops.webhook_endpoints e;
INSERT INTO ops.webhook_dead_letters (direction, delivery_id, reason, created_at, resolved_at)
SELECT 'outbound', d.id, 'gave up after 8 attempts', now() - (d.id || ' days')::interval,
       CASE WHEN d.id % 3 = 0 THEN now() END
FROM ops.webhook_deliveries d;
INSERT INTO platform.service_checks (service, checked_at, ok, latency_ms) VALUES
    ('booking_api', now() - interval '2 hours', true, 10),
    ('booking_api', now() - interval '10 minutes', true, 12),
    ('payment_webhook_handler', now() - interval '5 seconds', true, 8);
"""

# What each item counts, in plain SQL: (count, the ids its page must show).
EXPECTED = {
    "incidents-critical": "SELECT id FROM ops.incidents WHERE severity = 'critical' "
    "AND resolved_at IS NULL AND status <> 'resolved'",
    "incidents-high": "SELECT id FROM ops.incidents WHERE severity = 'high' AND status <> 'resolved'",
    "incidents-medium": "SELECT id FROM ops.incidents WHERE severity = 'medium' "
    "AND status <> 'resolved'",
    "dead-letters": "SELECT id FROM ops.webhook_dead_letters WHERE resolved_at IS NULL",
    "disabled-endpoints": "SELECT id FROM ops.webhook_endpoints WHERE NOT enabled",
    # The stale service's newest check; a service never checked has none to show.
    "stale-booking_api": "SELECT max(id) FROM platform.service_checks "
    "WHERE service = 'booking_api' HAVING max(checked_at) < now() - interval '90 seconds'",
}


@pytest.fixture(scope="module")
def home_db(admin_url: str, template_db: str) -> Iterator[str]:
    with scratch_database(admin_url, template_db) as url:
        yield url


@pytest.fixture(scope="module")
async def app(home_db: str, api_redis: str) -> AsyncIterator[Harness]:
    async with running(api_settings(home_db, api_redis)) as harness:
        harness.sql(ROWS)
        requester = harness.user(Role.FINANCE, "payout-asker")
        harness.sql(
            "INSERT INTO ops.payout_suspensions (kind, status, requested_by, requested_by_user, "
            "reason) SELECT 'suspend', 'pending', username, id, 'chargebacks spiking' "
            "FROM ops.users WHERE username = %s",
            (requester,),
        )
        yield harness


def _ids(app: Harness, query: str) -> set[str]:
    return {str(row[0]) for row in app.sql(query)}


async def test_counts_match_plain_sql_and_links_show_exactly_those_rows(app: Harness) -> None:
    client = await app.session_client(Role.SUPER_ADMIN, "home-admin")
    home = await client.get("/")
    assert home.status_code == 200
    items = attention(home.text)
    for key, query in EXPECTED.items():
        ids = _ids(app, query)
        count, href = items[key]
        assert count == len(ids), key
        page = await client.get(href)
        assert page.status_code == 200, f"{key}: {href}: {page.text[:300]}"
        shown = set(column(page.text, 0))
        assert shown == ids, f"{key}: {href} shows {shown}, not {ids}"
    assert items["incidents-critical"][0] == 2  # one opened 40 days ago, past the list's default
    assert items["dead-letters"][0] >= 1
    assert items["disabled-endpoints"][0] == 2
    # Stale checks: booking_api's newest is 10 minutes old, calendar_sync never reported; the
    # payment webhook handler checked seconds ago.
    assert "stale-payment_webhook_handler" not in items
    assert items["stale-calendar_sync"][0] == 1
    assert "never checked" in home.text
    # The payout change waiting for its second person: the action's page shows the request.
    pending = app.sql(
        "SELECT count(*) FROM ops.payout_suspensions WHERE status = 'pending' "
        "AND requested_at >= now() - interval '1 hour'"
    )[0][0]
    count, href = items["payouts-suspend"]
    assert (count, href) == (pending, "/actions/suspend-payouts")
    assert items["payouts-resume"][0] == 0
    action = await client.get(href)
    assert action.status_code == 200
    assert "payout-asker asked to suspend (chargebacks spiking)" in action.text


async def test_the_home_page_is_no_grid_of_buttons(app: Harness) -> None:
    client = await app.session_client(Role.SUPER_ADMIN, "home-admin")
    home = (await client.get("/")).text
    assert 'class="cards"' not in home
    assert '<nav class="groups" aria-label="Pages">' in home
    assert 'href="/service-checks"' in home  # the navigation keeps every page
    assert 'href="/preferences"' in home


@pytest.mark.parametrize(
    ("role", "sees", "hidden"),
    [
        (
            Role.VIEWER,
            {"incidents-critical", "stale-calendar_sync"},
            {"dead-letters", "payouts-suspend"},
        ),
        (
            Role.FINANCE,
            {"incidents-critical", "payouts-suspend"},
            {"dead-letters", "stale-calendar_sync"},
        ),
        (
            Role.OPS,
            {"dead-letters", "disabled-endpoints", "stale-calendar_sync"},
            {"payouts-suspend"},
        ),
    ],
)
async def test_each_role_sees_only_what_it_may_open(
    app: Harness, role: Role, sees: set[str], hidden: set[str]
) -> None:
    client = await app.session_client(role, f"home-{role.value}")
    items = attention((await client.get("/")).text)
    assert sees <= set(items)
    assert not hidden & set(items)
    for key, (_, href) in items.items():
        assert (await client.get(href)).status_code == 200, f"{role}: {key} {href}"
