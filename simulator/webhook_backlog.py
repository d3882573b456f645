"""The ``webhook-backlog`` injection: a partner endpoint that starts failing.

The endpoint's host is under ``.invalid`` (RFC 2606: it never resolves), so every attempt
fails with a DNS error and is retried on the schedule; its circuit opens after a few
failures. The messages are addressed to that endpoint alone, through the gateway's own
outbox, in the injection's transaction.
"""

from __future__ import annotations

from typing import Any

import psycopg

from core.sealed_secrets import SecretBox
from gateway.endpoints import EndpointSpec, create, find_by_url
from gateway.outbox import Event, enqueue_many

FAILING_URL = "https://failing-partner.invalid/webhooks"
EVENT = "partner.notice"
ENABLE = """
UPDATE ops.webhook_endpoints
SET enabled = true, disabled_reason = NULL, disabled_at = NULL, failing_since = NULL,
    consecutive_failures = 0, circuit_open_until = NULL, updated_at = clock_timestamp()
WHERE id = %(id)s
"""


def inject_backlog(ops: psycopg.Connection[Any], count: int, box: SecretBox) -> int:
    """Queue ``count`` messages for the failing endpoint (created on first use); its id."""
    endpoint_id = find_by_url(ops, FAILING_URL)
    if endpoint_id is None:
        spec = EndpointSpec(
            FAILING_URL,
            (EVENT,),
            "opsdeck simulate --inject webhook-backlog: a partner whose endpoint fails",
        )
        endpoint_id = int(create(ops, spec, box)[0]["id"])
    else:
        ops.execute(ENABLE, {"id": endpoint_id})
    events = [
        Event(EVENT, {"notice": "simulated", "n": n}, "simulator", endpoint_id=endpoint_id)
        for n in range(count)
    ]
    enqueue_many(ops, events)
    return endpoint_id
