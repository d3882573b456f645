"""The gateway's drilldowns (seed 001 "Webhooks → raw payload + retry history", seed 000's
webhook debugging, seeds 002/004's delivery logs): every webhook in and out, one outbound
delivery with its message and every attempt, one inbound event with its raw payload,
signature result and processing attempts, the endpoints, dead letters and rejections.

These views need ``webhooks.read``, which only the roles that operate the gateway hold.
Raw payloads, headers and errors pass through the PII masker like every field: a payment
event carries the customer's email, name and phone. A super admin sees one webhook as
received or sent with an unmask grant for it (``webhook_inbound``, ``webhook_rejection`` or
``webhook_message``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.drilldowns.spec import (
    Adds,
    DetailView,
    Field,
    Filter,
    ListView,
    Rows,
    Section,
    Subject,
)
from api.pii import PiiKind
from api.queries import webhooks as sql
from api.runtime import Runtime

READ = "webhooks.read"
EXPORT = "webhooks.export"
MANAGE = "webhooks.manage"
DIRECTIONS = ("inbound", "outbound")
STATUSES = ("pending", "succeeded", "dead", "processed")
INBOUND = Subject("webhook_inbound", "id")
REJECTION = Subject("webhook_rejection", "id")
MESSAGE = Subject("webhook_message", "id")

WEBHOOKS = ListView(
    name="webhooks",
    title="Webhooks",
    permission=READ,
    export_permission=EXPORT,
    listing=sql.WEBHOOKS,
    fields=(
        Field("id", "Id", "integer", link="/webhooks/{direction}/{id}"),
        Field("direction", "Direction"),
        Field("status", "Status", show="badge"),
        Field("event_type", "Event type"),
        Field("target", "Endpoint / PSP"),
        Field("attempts", "Attempts", "integer"),
        Field("last_status", "Last HTTP status", "integer", nullable=True),
        Field("last_error", "Last error", nullable=True, pii=PiiKind.TEXT),
        Field("next_attempt_at", "Next attempt", "date-time", nullable=True),
        Field("created_at", "Created", "date-time"),
        Field("done_at", "Delivered / processed", "date-time", nullable=True),
        Field("reference", "webhook-id / event key"),
    ),
    filters=(
        Filter("direction", "inbound or outbound", choices=DIRECTIONS),
        Filter(
            "status", "status (repeatable); dead = dead letters", choices=STATUSES, multiple=True
        ),
        Filter("event_type", "event type, e.g. payment.succeeded", max_length=200),
        Filter("endpoint_id", "outbound endpoint", "integer", minimum=1),
        Filter("provider", "inbound PSP", choices=("paystack", "stripe")),
        Filter("reference", "webhook-id (msg_...) or PSP event key", max_length=255),
    ),
    sorts=("created_at", "id"),
    database="ops",
    default_from="now-24h",
    description="Outbound deliveries and inbound PSP events; open one for its raw payload "
    "and attempt history.",
)

ENDPOINT_FIELDS = (
    Field("id", "Id", "integer", link="/webhook-endpoints/{id}"),
    Field("url", "URL"),
    Field("description", "Description"),
    Field("event_types", "Event types", "array"),
    Field("enabled", "Enabled", "boolean"),
    Field("disabled_reason", "Disabled because", nullable=True),
    Field("disabled_at", "Disabled at", "date-time", nullable=True),
    Field("rate_limit_per_second", "Rate limit /s", "number", nullable=True),
    Field("max_in_flight", "Max in flight", "integer"),
    Field("retry_schedule", "Retry schedule (s; none: the global one)", nullable=True),
    Field("consecutive_failures", "Consecutive failures", "integer"),
    Field("circuit_open_until", "Circuit open until", "date-time", nullable=True),
    Field("failing_since", "Failing since", "date-time", nullable=True),
    Field("last_success_at", "Last success", "date-time", nullable=True),
    Field("created_at", "Created", "date-time"),
)

ENDPOINTS = ListView(
    name="webhook-endpoints",
    title="Webhook endpoints",
    permission=READ,
    export_permission=EXPORT,
    listing=sql.ENDPOINTS,
    fields=ENDPOINT_FIELDS,
    filters=(Filter("enabled", "true or false", "boolean"),),
    sorts=("created_at", "id"),
    database="ops",
    default_from="now-3650d",
    adds=Adds("New endpoint", "/webhook-endpoints/new", MANAGE),
)

DEAD_LETTERS = ListView(
    name="webhook-dead-letters",
    title="Webhook dead letters",
    permission=READ,
    export_permission=EXPORT,
    listing=sql.DEAD_LETTERS,
    fields=(
        Field("id", "Id", "integer"),
        Field("direction", "Direction"),
        Field("webhook_id", "Webhook", "integer", link="/webhooks/{direction}/{webhook_id}"),
        Field("reason", "Reason"),
        Field("created_at", "Parked", "date-time"),
        Field("resolved_at", "Reprocessed", "date-time", nullable=True),
        Field("resolution", "Resolution", nullable=True),
    ),
    filters=(
        Filter("direction", "inbound or outbound", choices=DIRECTIONS),
        Filter("open", "true: not reprocessed yet", "boolean"),
    ),
    sorts=("created_at", "id"),
    database="ops",
    default_from="now-7d",
)

REJECTIONS = ListView(
    name="webhook-rejections",
    title="Rejected inbound webhooks",
    permission=READ,
    export_permission=EXPORT,
    listing=sql.REJECTIONS,
    fields=(
        Field("id", "Id", "integer"),
        Field("provider", "PSP"),
        Field("reason", "Reason"),
        Field("detail", "Detail", pii=PiiKind.TEXT),
        Field("status_code", "Answered", "integer"),
        Field("body_bytes", "Body bytes", "integer"),
        Field("remote_addr", "From", nullable=True, pii=PiiKind.IP),
        Field("received_at", "Received", "date-time"),
        Field("headers", "Headers", pii=PiiKind.TEXT),
        Field("body_sha256", "Body SHA-256", nullable=True),
        Field("body", "Body (first bytes)", pii=PiiKind.TEXT),
    ),
    filters=(
        Filter("provider", "PSP", choices=("paystack", "stripe")),
        Filter("reason", "bad_signature, stale, malformed, ...", max_length=40),
    ),
    sorts=("received_at", "id"),
    database="ops",
    default_from="now-24h",
    subject=REJECTION,
)


async def _rows(runtime: Runtime, queries: Mapping[str, str], key: Any) -> dict[str, Rows]:
    found: dict[str, Rows] = {}
    async with runtime.ops.connection() as conn:
        for name, query in queries.items():
            cursor = await conn.execute(query, {"id": key})
            rows = await cursor.fetchall()
            found[name] = ([c.name for c in cursor.description or ()], rows)
    return found


async def load_outbound(runtime: Runtime, key: Any) -> Mapping[str, Rows] | None:
    queries = {"delivery": sql.DELIVERY, "message": sql.MESSAGE, "attempts": sql.ATTEMPTS}
    found = await _rows(runtime, queries, key)
    return found if found["delivery"][1] else None


async def load_inbound(runtime: Runtime, key: Any) -> Mapping[str, Rows] | None:
    queries = {
        "event": sql.INBOUND_EVENT,
        "processing": sql.INBOUND_ATTEMPTS,
        "dead_letters": sql.INBOUND_DEAD_LETTERS,
    }
    found = await _rows(runtime, queries, key)
    return found if found["event"][1] else None


async def load_endpoint(runtime: Runtime, key: Any) -> Mapping[str, Rows] | None:
    queries = {
        "endpoint": sql.ENDPOINT,
        "secrets": sql.ENDPOINT_SECRETS,
        "recent": sql.ENDPOINT_RECENT,
    }
    found = await _rows(runtime, queries, key)
    return found if found["endpoint"][1] else None


KEY = Filter("id", "id", "integer", minimum=1)
ATTEMPT_FIELDS = (
    Field("attempt", "#", "integer"),
    Field("trigger", "Trigger"),
    Field("started_at", "Started", "date-time"),
    Field("duration_ms", "ms", "number"),
    Field("address", "Address", nullable=True),
    Field("response_status", "HTTP status", "integer", nullable=True),
    Field("error_class", "Error class", nullable=True),
    Field("error", "Error", nullable=True, pii=PiiKind.TEXT),
    Field("succeeded", "Succeeded", "boolean"),
    Field("next_attempt_at", "Next attempt", "date-time", nullable=True),
    Field("worker", "Worker"),
    Field("request_headers", "Request headers"),
    Field("body_sha256", "Body SHA-256"),
    Field("response_headers", "Response headers", nullable=True),
    Field("response_body", "Response body (first 20 KB)", nullable=True, pii=PiiKind.TEXT),
)

OUTBOUND_DETAIL = DetailView(
    name="webhook_outbound",
    title="Outbound webhook",
    permission=READ,
    path="/webhooks/outbound/{id}",
    key=KEY,
    sections=(
        Section(
            "delivery",
            "Delivery",
            (
                Field("id", "Id", "integer"),
                Field("status", "Status", show="badge"),
                Field("trigger", "Trigger"),
                Field("attempts", "Attempts", "integer"),
                Field("next_attempt_at", "Next attempt", "date-time", nullable=True),
                Field("last_status", "Last HTTP status", "integer", nullable=True),
                Field("last_error", "Last error", nullable=True, pii=PiiKind.TEXT),
                Field("created_at", "Created", "date-time"),
                Field("delivered_at", "Delivered", "date-time", nullable=True),
                Field(
                    "endpoint_id", "Endpoint", "integer", link="/webhook-endpoints/{endpoint_id}"
                ),
                Field("url", "URL"),
            ),
        ),
        Section(
            "message",
            "Message (raw payload)",
            (
                Field("id", "Message", "integer"),
                Field("uid", "webhook-id"),
                Field("event_type", "Event type"),
                Field("source", "Source"),
                Field("source_key", "Caused by", nullable=True),
                Field("created_at", "Created", "date-time"),
                Field("body", "Body", pii=PiiKind.TEXT),
            ),
            subject=MESSAGE,
        ),
        Section("attempts", "Attempts (retry history)", ATTEMPT_FIELDS, many=True),
    ),
    load=load_outbound,
    unmask=(MESSAGE.type, "message", MESSAGE.column),
)

INBOUND_DETAIL = DetailView(
    name="webhook_inbound",
    title="Inbound PSP webhook",
    permission=READ,
    path="/webhooks/inbound/{id}",
    key=KEY,
    sections=(
        Section(
            "event",
            "Event (raw payload)",
            (
                Field("id", "Id", "integer"),
                Field("provider", "PSP"),
                Field("event_key", "Event key"),
                Field("livemode", "Live mode", "boolean"),
                Field("event_type", "Event type"),
                Field("received_at", "Received", "date-time"),
                Field("signature", "Signature"),
                Field("remote_addr", "From", nullable=True, pii=PiiKind.IP),
                Field("status", "Status", show="badge"),
                Field("outcome", "Outcome", nullable=True, show="badge"),
                Field("attempts", "Processing attempts", "integer"),
                Field("duplicates", "Duplicates acknowledged", "integer"),
                Field("last_duplicate_at", "Last duplicate", "date-time", nullable=True),
                Field("next_attempt_at", "Next attempt", "date-time"),
                Field("last_error", "Last error", nullable=True, pii=PiiKind.TEXT),
                Field("processed_at", "Processed", "date-time", nullable=True),
                Field("headers", "Headers", pii=PiiKind.TEXT),
                Field("body", "Body", pii=PiiKind.TEXT),
            ),
            subject=INBOUND,
        ),
        Section(
            "processing",
            "Processing attempts",
            (
                Field("attempt", "#", "integer"),
                Field("started_at", "Started", "date-time"),
                Field("duration_ms", "ms", "number"),
                Field("succeeded", "Succeeded", "boolean"),
                Field("outcome", "Outcome", nullable=True, show="badge"),
                Field("error", "Error", nullable=True, pii=PiiKind.TEXT),
                Field("worker", "Worker"),
            ),
            many=True,
        ),
        Section(
            "dead_letters",
            "Dead letters",
            (
                Field("id", "Id", "integer"),
                Field("reason", "Reason"),
                Field("created_at", "Parked", "date-time"),
                Field("resolved_at", "Reprocessed", "date-time", nullable=True),
                Field("resolution", "Resolution", nullable=True),
            ),
            many=True,
        ),
    ),
    load=load_inbound,
    unmask=(INBOUND.type, "event", INBOUND.column),
)

ENDPOINT_DETAIL = DetailView(
    name="webhook_endpoint",
    title="Webhook endpoint",
    permission=READ,
    path="/webhook-endpoints/{id}",
    key=KEY,
    sections=(
        Section(
            "endpoint", "Endpoint", (*ENDPOINT_FIELDS, Field("updated_at", "Updated", "date-time"))
        ),
        Section(
            "secrets",
            "Signing secrets",
            (
                Field("id", "Id", "integer"),
                Field("prefix", "Secret"),
                Field("created_at", "Created", "date-time"),
                Field("expires_at", "Stops signing", "date-time", nullable=True),
                Field("active", "Active", "boolean"),
            ),
            many=True,
        ),
        Section(
            "recent",
            "Recent deliveries",
            (
                Field("id", "Delivery", "integer", link="/webhooks/outbound/{id}"),
                Field("event_type", "Event type"),
                Field("status", "Status", show="badge"),
                Field("attempts", "Attempts", "integer"),
                Field("last_status", "Last HTTP status", "integer", nullable=True),
                Field("created_at", "Created", "date-time"),
                Field("delivered_at", "Delivered", "date-time", nullable=True),
            ),
            many=True,
        ),
    ),
    load=load_endpoint,
)

LIST_VIEWS = (WEBHOOKS, ENDPOINTS, DEAD_LETTERS, REJECTIONS)
# The endpoint's page is api.webhooks.endpoint_page's (its delivery log and forms beside
# this view's JSON).
DETAIL_VIEWS = (OUTBOUND_DETAIL, INBOUND_DETAIL)
