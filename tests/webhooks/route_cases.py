"""The gateway's routes in the route x role test (tests/api/test_route_roles.py): a real
record behind every path parameter, and a valid request for every method."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from api.routing import RouteSpec
from core.psp_webhooks import paystack_charge_event
from tests.incidents.actions_client import post_change
from tests.webhooks.gateway import charge, paystack_headers, stripe_headers

SAMPLE_ROWS = """
WITH e AS (
    INSERT INTO ops.webhook_endpoints (url, max_in_flight) VALUES ('https://p.example/h', 5)
    RETURNING id
), s AS (
    INSERT INTO ops.webhook_endpoint_secrets (endpoint_id, secret, hint)
    SELECT id, 'sealed:sample-never-opened', 'whsec_c2Fw' FROM e
), m AS (
    INSERT INTO ops.webhook_messages (event_type, body, source) VALUES ('x.y', '{}', 'test')
    RETURNING id
), d AS (
    INSERT INTO ops.webhook_deliveries (message_id, endpoint_id, status)
    SELECT m.id, e.id, 'dead' FROM m, e RETURNING id
), i AS (
    INSERT INTO ops.webhook_inbound_events (provider, event_key, livemode, event_type, headers,
        body, signature, status)
    VALUES ('stripe', 'evt_sample', true, 'charge.succeeded', '{}', '\\x7b7d', 'sample',
        'processed')
    RETURNING id
)
SELECT (SELECT id FROM e), (SELECT id FROM d), (SELECT id FROM i)
"""


class Sql(Protocol):
    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]: ...


# The endpoint pages' confirmed changes, by route name: the fields their form sends. Disable
# and enable act on an endpoint of their own (TOGGLED), so the others' stays enabled.
PAGE_FIELDS: dict[str, dict[str, str]] = {
    "webhook_endpoint_page_new": {"url": "https://p.example/new", "event_types": "*"},
    "webhook_endpoint_page_edit": {
        "url": "https://p.example/h",
        "event_types": "*",
        "retry_schedule": "5, 60",
        "rate_limit": "",
        "description": "",
    },
    "webhook_endpoint_page_replay": {"from": "now-1h", "to": "now"},
    "webhook_endpoint_page_send_test": {},
    "webhook_endpoint_page_rotate_secret": {},
    "webhook_endpoint_page_disable": {},
    "webhook_endpoint_page_enable": {},
}
TOGGLED = "INSERT INTO ops.webhook_endpoints (url, max_in_flight) VALUES ('https://t.example/h', 5) RETURNING id"
KEY_RE = re.compile(r'name="idempotency_key" value="([^"]+)"')


def webhook_samples(api: Sql) -> dict[str, str]:
    endpoint, delivery, inbound = (str(v) for v in api.sql(SAMPLE_ROWS)[0])
    toggled = str(api.sql(TOGGLED)[0][0])
    samples = {"webhook_outbound": delivery, "webhook_inbound": inbound}
    for name in PAGE_FIELDS:
        samples[name] = toggled if name.endswith(("_disable", "_enable")) else endpoint
    for name in (
        "endpoint",
        "endpoint_update",
        "endpoint_delete",
        "endpoint_rotate_secret",
        "endpoint_test",
        "endpoint_replay",
        "endpoint_recover",
    ):
        samples[f"webhook_{name}"] = endpoint
    samples["webhook_outbound_replay"] = delivery
    return samples


async def _page_change(
    client: httpx.AsyncClient, name: str, path: str, token: str
) -> httpx.Response:
    """An endpoint page's confirmed POST, as the principal at hand."""
    fields = {**PAGE_FIELDS[name], "reason": "route matrix"}
    return await post_change(client, path, token, fields)


async def webhook_request(
    api: Sql, client: httpx.AsyncClient, spec: RouteSpec, method: str, path: str, token: str
) -> httpx.Response | None:
    """The request for one of the gateway's state-changing routes; None for other routes."""
    headers = {"X-CSRF-Token": token}
    page_change = spec.name.removesuffix("_run")
    if method == "POST" and page_change in PAGE_FIELDS:
        return await _page_change(client, page_change, path, token)
    if spec.name == "webhooks_inbound_stripe":
        body = charge(f"evt_{uuid.uuid4().hex}", "ch_matrix")
        return await client.post(path, content=body, headers=stripe_headers(body))
    if spec.name == "webhooks_inbound_paystack":
        event = paystack_charge_event(
            uuid.uuid4().int % 10**9, "ps_matrix", 100, "NGN", True, False, datetime.now(UTC)
        )
        body = json.dumps(event).encode()
        return await client.post(path, content=body, headers=paystack_headers(body))
    if spec.name == "webhook_endpoint_delete":
        (fresh,) = api.sql(
            "INSERT INTO ops.webhook_endpoints (url, max_in_flight) "
            "VALUES ('https://gone.example/h', 1) RETURNING id"
        )
        return await client.delete(path.rsplit("/", 1)[0] + f"/{fresh[0]}", headers=headers)
    if spec.name == "webhook_outbound_replay":
        api.sql(
            "UPDATE ops.webhook_deliveries SET status = 'dead' WHERE id = %s",
            (int(path.split("/")[-2]),),
        )
    bodies: dict[str, Any] = {
        "webhook_endpoint_create": {"url": "https://p.example/new"},
        "webhook_endpoint_update": {"description": "route matrix"},
        "webhook_endpoint_replay": {"dry_run": True},
        "webhook_endpoint_recover": {"dry_run": True},
    }
    if not spec.name.startswith("webhook") or method == "GET":
        return None
    return await client.request(method, path, json=bodies.get(spec.name, {}), headers=headers)
