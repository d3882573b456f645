"""Pure parts: signatures (verified with the standardwebhooks package), the retry policy,
Retry-After, and the PSPs' signature schemes."""

from __future__ import annotations

import random
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from core.psp_webhooks import (
    SignatureError,
    paystack_signature,
    stripe_header,
    verify_paystack,
    verify_stripe,
)
from core.retry import parse_retry_after
from gateway import signing
from gateway.retry import decide

SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0)


def test_signatures_verify_with_every_active_secret() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    assert old.startswith("whsec_")
    now = int(time.time())
    headers = signing.headers([new, old], "msg_1", now, '{"a":1}')
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify('{"a":1}', headers) == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify('{"a":1}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify('{"a":2}', headers)


def test_the_retry_schedule_with_jitter_then_a_dead_letter() -> None:
    rng = random.Random(1)
    for attempt, base in enumerate(SCHEDULE, start=1):
        d = decide(
            succeeded=False,
            permanent=False,
            attempt=attempt,
            trigger="scheduled",
            retry_after=None,
            schedule=SCHEDULE,
            jitter=0.2,
            rng=rng,
        )
        assert d.outcome == "retry"
        assert d.delay is not None
        assert 0.8 * base <= d.delay <= 1.2 * base
    last = decide(
        succeeded=False,
        permanent=False,
        attempt=10,
        trigger="scheduled",
        retry_after=None,
        schedule=SCHEDULE,
        jitter=0.2,
        rng=rng,
    )
    assert last.outcome == "dead"


@pytest.mark.parametrize(
    ("trigger", "permanent", "retry_after", "outcome", "delay"),
    [
        ("manual", False, None, "dead", None),
        ("replay", False, None, "dead", None),
        ("test", False, None, "dead", None),
        ("scheduled", True, None, "dead", None),
        ("scheduled", False, 60.0, "retry", 60.0),
        ("recover", False, None, "retry", 5.0),
    ],
)
def test_single_shots_permanent_failures_and_retry_after(
    trigger: str, permanent: bool, retry_after: float | None, outcome: str, delay: float | None
) -> None:
    d = decide(
        succeeded=False,
        permanent=permanent,
        attempt=1,
        trigger=trigger,
        retry_after=retry_after,
        schedule=SCHEDULE,
        jitter=0.0,
        rng=random.Random(1),
    )
    assert (d.outcome, d.delay) == (outcome, delay)


def test_retry_after_as_seconds_or_a_date() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412430.0) == 50.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_stripe_signatures_timestamps_and_rotation() -> None:
    body = b'{"id":"evt_1"}'
    now = int(time.time())
    header = stripe_header(["whsec_new", "whsec_old"], body, now)
    assert header.startswith(f"t={now},v1=")
    assert header.count("v1=") == 2
    assert "secret #2" in verify_stripe(header, body, ["whsec_other", "whsec_old"], 300, now)
    with pytest.raises(SignatureError) as bad:
        verify_stripe(header, body + b" ", ["whsec_new"], 300, now)
    assert bad.value.reason == "bad_signature"
    with pytest.raises(SignatureError) as stale:
        verify_stripe(header, body, ["whsec_new"], 300, now + 301)
    assert stale.value.reason == "stale"
    with pytest.raises(SignatureError) as malformed:
        verify_stripe("v1=abc", body, ["whsec_new"], 300, now)
    assert malformed.value.reason == "malformed_signature"


def test_paystack_signatures() -> None:
    body = b'{"event":"charge.success"}'
    header = paystack_signature("sk_test_1", body)
    assert len(header) == 128  # SHA-512, hex
    verify_paystack(header, body, ["sk_test_1"])
    with pytest.raises(SignatureError):
        verify_paystack(header, body, ["sk_test_2"])
    with pytest.raises(SignatureError):
        verify_paystack(None, body, ["sk_test_1"])
