"""Stripe's and Paystack's webhook formats: their signature schemes, the event key each
event is deduplicated by, and what a charge event says about ``psp_transactions``.

The gateway verifies and reads them (``api/webhooks/inbound*.py``); the simulator builds and
signs them (``simulator/psp_sender.py``). Both follow the PSPs' documentation:

- Stripe: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`` where each ``v1`` is
  HMAC-SHA256 of ``"<t>.<raw body>"`` keyed with the endpoint secret's bytes (the whole
  ``whsec_...`` string); events older than the tolerance (300 s) are refused.
- Paystack: ``x-paystack-signature: <hex>``, HMAC-SHA512 of the raw body keyed with the
  secret key; Paystack events have no id, so the key is derived from the event name and
  the transaction id.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core import json_depth

STRIPE_HEADER = "stripe-signature"
PAYSTACK_HEADER = "x-paystack-signature"
PROVIDERS = ("stripe", "paystack")


class SignatureError(Exception):
    """A request whose signature does not hold; ``reason`` is a bounded label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason  # missing_signature, malformed_signature, stale, bad_signature


class MalformedEvent(ValueError):
    """A correctly signed body that is not an event of the provider's shape."""


@dataclass(frozen=True)
class EventIdentity:
    key: str  # unique per provider and livemode
    livemode: bool
    event_type: str


@dataclass(frozen=True)
class PspUpdate:
    """What an event says about one PSP object (a row of platform.psp_transactions)."""

    psp: str
    psp_id: str
    amount_cents: int
    currency: str
    status: str
    livemode: bool
    event_at: datetime


# -- signatures ----------------------------------------------------------------------------


def stripe_signature(secret: str, payload: bytes, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def stripe_header(secrets: Sequence[str], payload: bytes, timestamp: int) -> str:
    signatures = ",".join(f"v1={stripe_signature(s, payload, timestamp)}" for s in secrets)
    return f"t={timestamp},{signatures}"


def verify_stripe(
    header: str | None, payload: bytes, secrets: Sequence[str], tolerance: float, now: float
) -> str:
    """Check ``Stripe-Signature``; returns which secret matched (``secret #n``)."""
    if not header:
        raise SignatureError("missing_signature", "no Stripe-Signature header")
    timestamp: int | None = None
    offered: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            offered.append(value)
    if timestamp is None or not offered:
        raise SignatureError("malformed_signature", "Stripe-Signature needs t= and v1=")
    for index, secret in enumerate(secrets):
        if not secret:  # an HMAC under an empty key is anybody's to make
            continue
        expected = stripe_signature(secret, payload, timestamp)
        if any(hmac.compare_digest(expected, sig) for sig in offered):
            if abs(now - timestamp) > tolerance:
                raise SignatureError(
                    "stale", f"timestamp {timestamp} is more than {tolerance:g} s from now"
                )
            return f"v1 matched secret #{index + 1} at t={timestamp}"
    raise SignatureError("bad_signature", "no v1 signature matches")


def paystack_signature(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha512).hexdigest()


def verify_paystack(header: str | None, payload: bytes, secrets: Sequence[str]) -> str:
    if not header:
        raise SignatureError("missing_signature", "no x-paystack-signature header")
    for index, secret in enumerate(secrets):
        if not secret:  # an HMAC under an empty key is anybody's to make
            continue
        if hmac.compare_digest(paystack_signature(secret, payload), header.strip().lower()):
            return f"HMAC-SHA512 matched secret #{index + 1}"
    raise SignatureError("bad_signature", "x-paystack-signature does not match")


# -- reading events ------------------------------------------------------------------------


def parse(body: bytes) -> dict[str, Any]:
    try:
        event = json_depth.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise MalformedEvent("not a JSON object")
    return event


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value or len(value) > 255:
        raise MalformedEvent(f"{name} must be a non-empty string")
    return value


def _int(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedEvent(f"{name} must be an integer")
    return value


def _object(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise MalformedEvent(f"{name} must be an object")
    return value


def identity(provider: str, event: Mapping[str, Any]) -> EventIdentity:
    if provider == "stripe":
        if not isinstance(event.get("livemode"), bool):
            raise MalformedEvent("livemode must be true or false")
        return EventIdentity(_text(event, "id"), bool(event["livemode"]), _text(event, "type"))
    name = _text(event, "event")
    data = _object(event, "data")
    ref = data.get("id")
    if isinstance(ref, bool) or not isinstance(ref, int | str) or ref == "":
        raise MalformedEvent("data.id must be an integer or a string")
    return EventIdentity(f"{name}:{ref}", data.get("domain") == "live", name)


def _when(value: Any) -> datetime:
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise MalformedEvent(f"bad time {value!r}") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise MalformedEvent("the event has no time")


def _currency(value: str) -> str:
    if len(value) != 3 or not value.isalpha():
        raise MalformedEvent(f"bad currency {value!r}")
    return value.upper()


STRIPE_CHARGE_EVENTS = ("charge.succeeded", "charge.failed", "charge.refunded")
PAYSTACK_STATUSES = {"success": "succeeded", "failed": "failed", "reversed": "refunded"}


def psp_update(provider: str, event: Mapping[str, Any]) -> PspUpdate | None:
    """The change to ``psp_transactions`` a charge event makes; None for other events."""
    if provider == "stripe":
        if event.get("type") not in STRIPE_CHARGE_EVENTS:
            return None
        charge = _object(_object(event, "data"), "object")
        status = "refunded" if event["type"] == "charge.refunded" else _text(charge, "status")
        return PspUpdate(
            "stripe",
            _text(charge, "id"),
            _int(charge, "amount"),
            _currency(_text(charge, "currency")),
            status,
            bool(event.get("livemode")),
            _when(event.get("created")),
        )
    if not str(event.get("event", "")).startswith("charge."):
        return None
    data = _object(event, "data")
    status = _text(data, "status")
    return PspUpdate(
        "paystack",
        _text(data, "reference"),
        _int(data, "amount"),
        _currency(_text(data, "currency")),
        PAYSTACK_STATUSES.get(status, status),
        data.get("domain") == "live",
        _when(data.get("paid_at") or data.get("created_at")),
    )


# -- building events (the simulator, tests) ------------------------------------------------


def stripe_charge_event(
    event_id: str, psp_id: str, amount: int, currency: str, succeeded: bool, livemode: bool, at: int
) -> dict[str, Any]:
    status = "succeeded" if succeeded else "failed"
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": at,
        "livemode": livemode,
        "type": f"charge.{status}",
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {
            "object": {
                "id": psp_id,
                "object": "charge",
                "amount": amount,
                "currency": currency.lower(),
                "status": status,
                "livemode": livemode,
            }
        },
    }


def paystack_charge_event(
    transaction_id: int,
    reference: str,
    amount: int,
    currency: str,
    succeeded: bool,
    livemode: bool,
    at: datetime,
) -> dict[str, Any]:
    stamp = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {
        "event": "charge.success" if succeeded else "charge.failed",
        "data": {
            "id": transaction_id,
            "domain": "live" if livemode else "test",
            "status": "success" if succeeded else "failed",
            "reference": reference,
            "amount": amount,
            "currency": currency.upper(),
            "paid_at": stamp,
            "created_at": stamp,
        },
    }
