"""Inbound PSP webhooks: ``POST /webhooks/inbound/stripe`` and ``/webhooks/inbound/paystack``.

Public routes (PSPs sign their requests; there is no session), exempt from CSRF. Each
client address is held, in Redis and before any database work, to
``inbound_requests_per_address_per_minute`` requests and ``inbound_rejections_per_address``
rejected ones per window: a request past either gets 429 with ``Retry-After`` and writes
nothing, so a loop of bad requests can neither fill the disk nor take the pool sign-in
needs, while the PSP's own correctly signed events from the same address still go through.
Each admitted request is read up to ``inbound_max_body_bytes`` (413 beyond), its signature
checked against every configured secret over the raw bytes, and its JSON read for the
event's identity. Then the raw bytes and headers are stored, and only after that commit does the
PSP get its 2xx. A redelivery of a stored event (same provider, event key and livemode) is
acknowledged with 200, counted, and not stored or processed again. A bad signature, a stale
timestamp or malformed JSON gets a 400 problem document and a counted rejection row (the
SHA-256 of the body and its first ``rejected_sample_bytes``, pruned after
``retention_days``): nothing is processed, nothing is silently dropped.
Processing happens in ``opsdeck worker`` (:mod:`gateway.inbound_processing`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from typing import Any

from psycopg.types.json import Jsonb
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from api.problems import Problem
from api.routing import RouteSpec, runtime_of
from core.psp_webhooks import (
    PAYSTACK_HEADER,
    STRIPE_HEADER,
    MalformedEvent,
    SignatureError,
    identity,
    parse,
    verify_paystack,
    verify_stripe,
)
from core.settings import WebhookSettings
from gateway import metrics as m
from gateway.queries import counters as counters_sql
from gateway.queries import inbound as sql
from gateway.queries import outbox as outbox_sql

# Of a rejected request only these are kept, cut short: its address is remote_addr.
REJECTED_HEADERS = frozenset(
    {"content-type", "content-length", "user-agent", STRIPE_HEADER, PAYSTACK_HEADER}
)
REJECTED_HEADER_CHARS = 200
KEPT_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "user-agent",
        STRIPE_HEADER,
        PAYSTACK_HEADER,
        "x-forwarded-for",
        "request-id",
    }
)


class Rejected(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


def _headers(
    request: Request, kept: frozenset[str] = KEPT_HEADERS, chars: int = 1000
) -> dict[str, str]:
    return {k: v[:chars] for k, v in request.headers.items() if k in kept}


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _too_many(retry_after: int) -> Problem:
    return Problem(
        429,
        "too many requests from this address; retry later",
        headers={"Retry-After": str(retry_after)},
    )


async def _admit(request: Request) -> None:
    """The client address's request rate, checked before anything else (429 past it)."""
    runtime = runtime_of(request)
    verdict = await runtime.limiter.hit(
        f"inbound-ip:{_client(request)}",
        runtime.settings.webhooks.inbound_requests_per_address_per_minute,
        60,
    )
    if not verdict.allowed:
        raise _too_many(verdict.retry_after)


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Rejected(413, "oversize", f"the body exceeds {limit} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Rejected(413, "oversize", f"the body exceeds {limit} bytes")
    return body


def _secrets(values: tuple[Any, ...]) -> list[str]:
    return [v.get_secret_value() for v in values]


def _verify(provider: str, request: Request, body: bytes, hooks: WebhookSettings) -> str:
    if provider == "stripe":
        secrets = _secrets(hooks.stripe_secrets)
        if not secrets:
            raise Rejected(400, "unconfigured", "no Stripe signing secret is configured here")
        return verify_stripe(
            request.headers.get(STRIPE_HEADER),
            body,
            secrets,
            hooks.stripe_tolerance_seconds,
            time.time(),
        )
    secrets = _secrets(hooks.paystack_secrets)
    if not secrets:
        raise Rejected(400, "unconfigured", "no Paystack secret key is configured here")
    if hooks.paystack_allowed_networks:
        client = _client(request)  # the address the trusted proxies vouch for
        if not _in_networks(client, hooks.paystack_allowed_networks):
            raise Rejected(403, "forbidden_address", f"{client} is not a Paystack address")
    return verify_paystack(request.headers.get(PAYSTACK_HEADER), body, secrets)


def _in_networks(address: str, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


async def _reject(request: Request, provider: str, body: bytes, rejected: Rejected) -> None:
    """Store the rejection, within the address's budget; past it, 429 and no row."""
    runtime = runtime_of(request)
    hooks = runtime.settings.webhooks
    verdict = await runtime.limiter.hit(
        f"inbound-rejected-ip:{_client(request)}",
        hooks.inbound_rejections_per_address,
        hooks.inbound_rejection_window_seconds,
    )
    if not verdict.allowed:
        raise _too_many(verdict.retry_after)
    counts = m.Increments()
    counts.add(m.REJECTED, (provider, rejected.reason))
    async with runtime.ops.connection() as conn, conn.transaction():
        await conn.execute(
            sql.REJECT,
            {
                "provider": provider,
                "reason": rejected.reason,
                "detail": rejected.detail[:500],
                "status_code": rejected.status,
                "headers": Jsonb(_headers(request, REJECTED_HEADERS, REJECTED_HEADER_CHARS)),
                "body": body[: hooks.rejected_sample_bytes],
                "body_sha256": hashlib.sha256(body).digest(),
                "body_bytes": len(body),
                "remote_addr": request.client.host if request.client else None,
            },
        )
        await conn.execute(counters_sql.BUMP, counts.params())


async def _store(
    request: Request, provider: str, body: bytes, signature: str, event: dict[str, Any]
) -> tuple[int, bool]:
    runtime = runtime_of(request)
    who = identity(provider, event)
    async with runtime.ops.connection() as conn, conn.transaction():
        cursor = await conn.execute(
            sql.STORE,
            {
                "provider": provider,
                "event_key": who.key,
                "livemode": who.livemode,
                "event_type": who.event_type[:200],
                "headers": Jsonb(_headers(request)),
                "body": body,
                "signature": signature,
                "remote_addr": request.client.host if request.client else None,
            },
        )
        row = await cursor.fetchone()
        assert row is not None
        event_id, inserted = int(row[0]), bool(row[1])
        if inserted:
            await conn.execute(outbox_sql.NOTIFY, {"what": "inbound"})
        else:
            counts = m.Increments()
            counts.add(m.DUPLICATES, (provider,))
            await conn.execute(counters_sql.BUMP, counts.params())
    return event_id, not inserted


def receiver(provider: str) -> Any:
    async def endpoint(request: Request) -> Response:
        hooks = runtime_of(request).settings.webhooks
        await _admit(request)
        body = b""
        try:
            body = await _body(request, hooks.inbound_max_body_bytes)
            signature = _verify(provider, request, body, hooks)
            event = parse(body)
            identity(provider, event)
        except ClientDisconnect:
            raise Problem(400, "the client went away before sending the whole body") from None
        except SignatureError as exc:
            await _reject(request, provider, body, Rejected(400, exc.reason, str(exc)))
            raise Problem(400, str(exc)) from None
        except MalformedEvent as exc:
            await _reject(request, provider, body, Rejected(400, "malformed", str(exc)))
            raise Problem(400, str(exc)) from None
        except Rejected as exc:
            await _reject(request, provider, body, exc)
            raise Problem(exc.status, exc.detail) from None
        event_id, duplicate = await _store(request, provider, body, signature, event)
        return JSONResponse({"received": True, "id": event_id, "duplicate": duplicate})

    return endpoint


RECEIPT_SCHEMA = {
    "type": "object",
    "required": ["received", "id", "duplicate"],
    "properties": {
        "received": {"type": "boolean"},
        "id": {"type": "integer"},
        "duplicate": {"type": "boolean"},
    },
}

ROUTES = tuple(
    RouteSpec(
        f"/webhooks/inbound/{provider}",
        f"webhooks_inbound_{provider}",
        receiver(provider),
        None,
        "json",
        f"Receive a {title} webhook (signed; stored before the 2xx; duplicates acknowledged)",
        methods=("POST",),
        body={"application/json": {"type": "object"}},
        schema=RECEIPT_SCHEMA,
        tags=("webhooks",),
        errors={429: "too many requests, or rejected requests, from this address"},
    )
    for provider, title in (("stripe", "Stripe"), ("paystack", "Paystack"))
)
