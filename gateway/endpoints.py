"""Outbound endpoints: where partners receive webhooks, what they receive, how fast.

An endpoint has a URL, event-type filters (``*`` is a wildcard: ``payment.*``, ``*``), a
description, an on/off switch, an optional rate limit (deliveries a second, a token bucket;
none: ``default_rate_limit_per_second``) and a concurrency cap (deliveries in flight), both
enforced by the workers' claim, an optional retry schedule of its own (none: the global
``retry_schedule_seconds``), and one or more ``whsec_`` signing secrets. Rotating a secret
adds a new one and keeps the previous ones signing beside it for ``secret_grace_seconds``
(24 h): each delivery carries a signature of every active secret, so receivers can switch
without a gap.

Disabling an endpoint, by hand, on a 410 Gone, or after five days of failures, parks what
it still had queued as dead letters: nothing is lost, and it can be replayed once the
endpoint works again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import psycopg

from core.audit import AuditEntry, record_in
from core.sealed_secrets import SecretBox
from core.settings import WebhookSettings
from gateway import signing
from gateway.queries import delivery as delivery_sql
from gateway.queries import endpoints as sql
from gateway.ssrf import Blocked, Guard, Unresolvable

FILTER = re.compile(r"^(\*|[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?)$")
MAX_URL = 2000
MAX_DESCRIPTION = 500
MAX_FILTERS = 50
MAX_RATE = 100_000.0
MAX_IN_FLIGHT = 10_000


class InvalidEndpoint(ValueError):
    """A field of an endpoint is wrong: ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class EndpointSpec:
    url: str
    event_types: tuple[str, ...] = ("*",)
    description: str = ""
    enabled: bool = True
    rate_limit_per_second: float | None = None
    max_in_flight: int = 50
    retry_schedule_seconds: tuple[float, ...] | None = None

    def params(self, secret: str, box: SecretBox) -> dict[str, Any]:
        return {
            **signing.stored(secret, box),
            "url": self.url,
            "description": self.description,
            "event_types": list(self.event_types),
            "enabled": self.enabled,
            "rate_limit_per_second": self.rate_limit_per_second,
            "max_in_flight": self.max_in_flight,
            "retry_schedule_seconds": _schedule(self.retry_schedule_seconds),
        }


def _schedule(value: Sequence[float] | None) -> list[float] | None:
    return None if value is None else list(value)


def check_url(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_URL:
        raise InvalidEndpoint("url", f"an http(s) URL of at most {MAX_URL} characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidEndpoint("url", "an http:// or https:// URL with a host")
    if any(ord(c) < 33 for c in value):
        raise InvalidEndpoint("url", "no spaces or control characters")
    return value


def check_filters(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_FILTERS:
        raise InvalidEndpoint("event_types", f"a list of 1 to {MAX_FILTERS} event types")
    for item in value:
        if not isinstance(item, str) or len(item) > 100 or not FILTER.match(item):
            raise InvalidEndpoint(
                "event_types", "event types like 'payment.succeeded', 'payment.*' or '*'"
            )
    return tuple(dict.fromkeys(value))


def check_rate(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_RATE:
        raise InvalidEndpoint("rate_limit_per_second", f"a number above 0, at most {MAX_RATE:g}")
    return float(value)


def check_in_flight(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_IN_FLIGHT:
        raise InvalidEndpoint("max_in_flight", f"an integer from 1 to {MAX_IN_FLIGHT}")
    return value


def check_schedule(value: Any, *, max_delays: int, max_delay: float) -> tuple[float, ...] | None:
    """A retry schedule of the endpoint's own (delays in seconds), or None for the global one;
    a refusal names the value it refuses."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= max_delays:
        raise InvalidEndpoint(
            "retry_schedule_seconds",
            f"a list of 1 to {max_delays} delays in seconds (null: the global schedule)",
        )
    for delay in value:
        number = isinstance(delay, int | float) and not isinstance(delay, bool)
        if not number or not 0 < delay <= max_delay:
            raise InvalidEndpoint(
                "retry_schedule_seconds",
                f"{delay!r} is not a delay above 0 and at most {max_delay:g} seconds",
            )
    return tuple(float(d) for d in value)


def check_description(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise InvalidEndpoint("description", f"text of at most {MAX_DESCRIPTION} characters")
    return value


def check_enabled(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidEndpoint("enabled", "true or false")
    return value


Check = Callable[[Any], Any]


def field_checks(hooks: WebhookSettings) -> dict[str, Check]:
    """Each field's check, with the bounds the settings give."""
    schedule = partial(
        check_schedule,
        max_delays=hooks.endpoint_retry_max_delays,
        max_delay=hooks.endpoint_retry_max_delay_seconds,
    )
    return {
        "url": check_url,
        "event_types": check_filters,
        "description": check_description,
        "enabled": check_enabled,
        "rate_limit_per_second": check_rate,
        "max_in_flight": check_in_flight,
        "retry_schedule_seconds": schedule,
    }


def checked(data: Mapping[str, Any], hooks: WebhookSettings, *, partial: bool) -> dict[str, Any]:
    """The fields of a create (``partial=False``: url required) or update body."""
    checks = field_checks(hooks)
    unknown = sorted(set(data) - set(checks))
    if unknown:
        raise InvalidEndpoint(unknown[0], "unknown field")
    if not partial and "url" not in data:
        raise InvalidEndpoint("url", "required")
    return {name: checks[name](value) for name, value in data.items()}


def spec_from(data: Mapping[str, Any], hooks: WebhookSettings) -> EndpointSpec:
    fields = checked(data, hooks, partial=False)
    fields.setdefault("max_in_flight", hooks.default_max_in_flight)
    return EndpointSpec(**fields)


async def check_reachable(url: str, hooks: WebhookSettings) -> None:
    """The SSRF guard of every attempt, applied when a URL is set: a host that resolves to
    an address deliveries may not reach is refused now rather than at every attempt. A host
    that does not resolve yet is accepted (its DNS may come later); each attempt checks
    again."""
    try:
        await Guard(hooks.ssrf_allow, 0).resolve(url)
    except Blocked as exc:
        raise InvalidEndpoint("url", f"deliveries may not reach it: {exc}") from None
    except Unresolvable:
        return


def record(names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(names, row, strict=True))


def create(
    conn: psycopg.Connection[Any], spec: EndpointSpec, box: SecretBox
) -> tuple[dict[str, Any], str]:
    """Create an endpoint in ``conn``'s transaction; (its fields, its first secret, which
    is stored sealed in ``box``)."""
    secret = signing.new_secret()
    cursor = conn.execute(sql.CREATE, spec.params(secret, box))
    names = [c.name for c in cursor.description or ()]
    row = cursor.fetchone()
    assert row is not None
    return record(names, row), secret


async def create_async(
    conn: psycopg.AsyncConnection[Any], spec: EndpointSpec, box: SecretBox
) -> tuple[dict[str, Any], str]:
    secret = signing.new_secret()
    cursor = await conn.execute(sql.CREATE, spec.params(secret, box))
    names = [c.name for c in cursor.description or ()]
    row = await cursor.fetchone()
    assert row is not None
    return record(names, row), secret


async def get(conn: psycopg.AsyncConnection[Any], endpoint_id: int) -> dict[str, Any] | None:
    cursor = await conn.execute(sql.GET, {"id": endpoint_id})
    row = await cursor.fetchone()
    if row is None:
        return None
    found = record([c.name for c in cursor.description or ()], row)
    secrets = await (await conn.execute(sql.SECRETS, {"id": endpoint_id})).fetchall()
    found["secrets"] = [
        {"id": s[0], "prefix": s[1], "created_at": s[2], "expires_at": s[3], "active": s[4]}
        for s in secrets
    ]
    return found


async def update(
    conn: psycopg.AsyncConnection[Any], endpoint_id: int, fields: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Change the given fields; ``enabled: true`` also clears the failure state."""
    params: dict[str, Any] = {"id": endpoint_id, "enable": fields.get("enabled") is True}
    for name in ("url", "description", "rate_limit_per_second", "max_in_flight"):
        params[f"set_{name}"] = name in fields
        params[name] = fields.get(name)
    params["set_retry_schedule_seconds"] = "retry_schedule_seconds" in fields
    params["retry_schedule_seconds"] = _schedule(fields.get("retry_schedule_seconds"))
    params["set_event_types"] = "event_types" in fields
    params["event_types"] = list(fields.get("event_types", ()))
    row = await (await conn.execute(sql.UPDATE, params)).fetchone()
    return None if row is None else await get(conn, endpoint_id)


async def delete(conn: psycopg.AsyncConnection[Any], endpoint_id: int) -> bool:
    return await (await conn.execute(sql.DELETE, {"id": endpoint_id})).fetchone() is not None


async def rotate_secret(
    conn: psycopg.AsyncConnection[Any], endpoint_id: int, grace_seconds: float, box: SecretBox
) -> tuple[str, Any] | None:
    """A new secret; (it, when the previous ones stop signing) or None without the endpoint."""
    secret = signing.new_secret()
    params = {"id": endpoint_id, "grace": grace_seconds, **signing.stored(secret, box)}
    row = await (await conn.execute(sql.ROTATE, params)).fetchone()
    return None if row is None else (secret, row[1])


async def disable(
    conn: psycopg.AsyncConnection[Any],
    endpoint_id: int,
    reason: str,
    *,
    actor: str,
    incident: bool,
) -> int | None:
    """Disable the endpoint and park its queue as dead letters, in one transaction, with an
    audit entry (and an open incident when it happened on its own). Returns how many
    deliveries were parked, or None when it was not enabled."""
    async with conn.transaction():
        cursor = await conn.execute(delivery_sql.DISABLE, {"id": endpoint_id, "reason": reason})
        row = await cursor.fetchone()
        if row is None:
            return None
        entry = AuditEntry(
            actor=actor,
            action="webhooks.endpoint.disable",
            target_type="webhook_endpoint",
            target_id=str(endpoint_id),
            reason=reason,
            details={"url": row[1], "parked": int(row[2])},
        )
        await record_in(conn, entry)
        if incident:
            title = f"Webhook endpoint {endpoint_id} disabled: {reason}"
            await conn.execute(delivery_sql.OPEN_INCIDENT, {"title": title[:300], "runbook": None})
    return int(row[2])


def find_by_url(conn: psycopg.Connection[Any], url: str) -> int | None:
    row = conn.execute(sql.BY_URL, {"url": url}).fetchone()
    return None if row is None else int(row[0])
