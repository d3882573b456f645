"""The API's side of the gateway under test: the real app in-process (tests/api's harness)
with PSP secrets configured, signed PSP requests, and inbound processing run to the end."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
from pydantic import SecretStr

from core.application_names import GATEWAY, WORKER
from core.database import async_pool
from core.psp_webhooks import (
    PAYSTACK_HEADER,
    STRIPE_HEADER,
    paystack_signature,
    stripe_charge_event,
    stripe_header,
)
from core.settings import ApiSettings, Settings, WebhookSettings
from gateway.inbound_processing import InboundProcessor
from tests.api.conftest import PAYSTACK_TEST_SECRET, SECRET, STRIPE_TEST_SECRET
from tests.conftest import TEST_SECRETS_KEY

STRIPE_SECRET = STRIPE_TEST_SECRET
PAYSTACK_SECRET = PAYSTACK_TEST_SECRET


def gateway_settings(db_url: str, redis_url: str, **hooks: Any) -> Settings:
    webhooks = {
        "stripe_secrets": (SecretStr(STRIPE_SECRET),),
        "paystack_secrets": (SecretStr(PAYSTACK_SECRET),),
        "inbound_retry_schedule_seconds": (0.05, 0.05),
        "ssrf_allow": ("127.0.0.1/32",),
        **hooks,
    }
    return Settings(
        database_url=db_url,
        redis_url=redis_url,
        api=ApiSettings(secret_key=SECRET, requests_per_minute=100_000, cookie_secure=False),
        secrets_key=SecretStr(TEST_SECRETS_KEY),
        webhooks=WebhookSettings(**webhooks),
    )


def charge(
    event_id: str,
    psp_id: str,
    amount: int = 1250,
    *,
    succeeded: bool = True,
    at: int | None = None,
    livemode: bool = True,
) -> bytes:
    event = stripe_charge_event(
        event_id, psp_id, amount, "usd", succeeded, livemode, at or int(time.time())
    )
    return json.dumps(event).encode()


def stripe_headers(
    body: bytes, secret: str = STRIPE_SECRET, at: int | None = None
) -> dict[str, str]:
    stamp = int(time.time()) if at is None else at
    return {"content-type": "application/json", STRIPE_HEADER: stripe_header([secret], body, stamp)}


def paystack_headers(body: bytes, secret: str = PAYSTACK_SECRET) -> dict[str, str]:
    return {"content-type": "application/json", PAYSTACK_HEADER: paystack_signature(secret, body)}


async def process_inbound(settings: Settings, rounds: int = 50) -> int:
    """Run the worker's inbound step until nothing is due (retries included)."""
    url = str(settings.database_url)
    ops = async_pool(url, WORKER, 2)
    platform = async_pool(url, GATEWAY, 2)
    await ops.open()
    await platform.open()
    held = 0
    try:
        processor = InboundProcessor(settings.webhooks, ops, platform, "test-worker")
        idle = 0
        for _ in range(rounds):
            count = await processor.run_once()
            held += count
            idle = 0 if count else idle + 1
            if idle >= 3:
                break
            await anyio.sleep(0.1)
    finally:
        await ops.close()
        await platform.close()
    return held
