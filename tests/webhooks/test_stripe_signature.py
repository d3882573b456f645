"""Our Stripe-Signature code (core.psp_webhooks) against Stripe's own library: what we
sign, ``stripe.WebhookSignature.verify_header`` accepts; what is signed as Stripe's docs
describe (``t=<unix>,v1=<HMAC-SHA256 of "<t>.<raw body>">``, with a legacy ``v0`` beside
it) or by ``stripe``'s own signer, we accept. Both refuse a tampered body, a wrong secret
and a timestamp older than the tolerance, and accept one just inside it.

One difference is deliberate and pinned here: a timestamp further in the FUTURE than the
tolerance is refused by us (a skewed clock or a request signed ahead for a later replay)
and accepted by Stripe's library, which only checks age."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import stripe

from core.psp_webhooks import (
    SignatureError,
    stripe_charge_event,
    stripe_header,
    verify_stripe,
)

SECRET = "whsec_3f9c1d2e7a6b5c4d3e2f1a0b9c8d7e6f"
OLD_SECRET = "whsec_0a1b2c3d4e5f60718293a4b5c6d7e8f9"
TOLERANCE = 300
# Stripe sends the event as UTF-8 JSON; a non-ASCII description checks bytes vs text.
EVENT = {
    **stripe_charge_event("evt_1Q2w3E", "ch_3Q2w3E", 4999, "EUR", True, False, 1_767_225_600),
    "description": "Café Zürich – booking #42",
}
PAYLOAD = json.dumps(EVENT, ensure_ascii=False).encode()


def _docs_header(secret: str, payload: bytes, timestamp: int) -> str:
    """Stripe-Signature exactly as Stripe's docs build it, test mode's ``v0`` included."""
    signed = f"{timestamp}.".encode() + payload
    v1 = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    v0 = hmac.new(b"whsec_legacy_scheme_secret", signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={v1},v0={v0}"


def _stripe_accepts(header: str, payload: bytes = PAYLOAD, secret: str = SECRET) -> bool:
    try:
        return bool(stripe.WebhookSignature.verify_header(payload, header, secret, TOLERANCE))
    except stripe.SignatureVerificationError:
        return False


def _ours(header: str, payload: bytes = PAYLOAD, secrets: tuple[str, ...] = (SECRET,)) -> str:
    """Which secret matched, or the reason we refused."""
    try:
        return verify_stripe(header, payload, secrets, TOLERANCE, time.time())
    except SignatureError as refused:
        return refused.reason


def test_stripe_verifies_what_we_sign() -> None:
    now = int(time.time())
    assert _stripe_accepts(stripe_header([SECRET], PAYLOAD, now))


def test_stripe_verifies_each_secret_of_a_rolled_pair() -> None:
    header = stripe_header([OLD_SECRET, SECRET], PAYLOAD, int(time.time()))
    assert _stripe_accepts(header, secret=SECRET)
    assert _stripe_accepts(header, secret=OLD_SECRET)


def test_we_verify_what_is_signed_per_stripes_docs() -> None:
    now = int(time.time())
    assert _ours(_docs_header(SECRET, PAYLOAD, now)).startswith("v1 matched secret #1")
    assert _stripe_accepts(_docs_header(SECRET, PAYLOAD, now))  # the docs header is right


def test_we_verify_what_stripes_library_signs() -> None:
    now = int(time.time())
    header = stripe.WebhookSignature.generate_signature_header(PAYLOAD.decode(), SECRET, now)
    assert _ours(header, secrets=(OLD_SECRET, SECRET)) == f"v1 matched secret #2 at t={now}"


@pytest.mark.parametrize(
    ("age", "accepted"),
    [(TOLERANCE - 5, True), (TOLERANCE + 5, False), (24 * 3600, False)],
    ids=["just-inside", "just-expired", "a-day-old"],
)
def test_both_apply_the_tolerance_to_old_events(age: int, accepted: bool) -> None:
    then = int(time.time()) - age
    ours = stripe_header([SECRET], PAYLOAD, then)
    docs = _docs_header(SECRET, PAYLOAD, then)
    assert _stripe_accepts(ours) is accepted
    assert (_ours(docs) == "stale") is not accepted
    assert _ours(docs).startswith("v1 matched") is accepted


@pytest.mark.parametrize(
    "payload",
    [
        PAYLOAD.replace(b"4999", b"9999"),  # the amount changed
        PAYLOAD + b" ",  # a byte appended: the signature covers the raw body
        json.dumps(EVENT, ensure_ascii=True).encode(),  # the same JSON, re-encoded
    ],
    ids=["amount", "trailing-space", "re-encoded"],
)
def test_both_refuse_a_tampered_body(payload: bytes) -> None:
    now = int(time.time())
    assert not _stripe_accepts(stripe_header([SECRET], PAYLOAD, now), payload=payload)
    assert _ours(_docs_header(SECRET, PAYLOAD, now), payload=payload) == "bad_signature"


def test_both_refuse_a_wrong_secret() -> None:
    now = int(time.time())
    assert not _stripe_accepts(stripe_header([OLD_SECRET], PAYLOAD, now))
    assert _ours(_docs_header(OLD_SECRET, PAYLOAD, now)) == "bad_signature"


def test_both_refuse_a_header_without_a_v1_signature() -> None:
    now = int(time.time())
    legacy_only = _docs_header(SECRET, PAYLOAD, now).split(",v1=")[0] + ",v0=00"
    assert not _stripe_accepts(legacy_only)
    assert _ours(legacy_only) == "malformed_signature"


def test_a_future_timestamp_beyond_the_tolerance_is_refused_by_us_only() -> None:
    ahead = int(time.time()) + TOLERANCE + 60
    assert _stripe_accepts(stripe_header([SECRET], PAYLOAD, ahead))  # Stripe checks age only
    assert _ours(_docs_header(SECRET, PAYLOAD, ahead)) == "stale"
