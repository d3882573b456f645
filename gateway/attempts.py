"""One delivery attempt: sign the message, send it through the transport, and describe what
happened in the shape the attempt log stores."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.settings import WebhookSettings
from gateway import signing
from gateway.retry import Decision, decide, schedule_for
from gateway.transport import DeliveryError, OutboundRequest, WebhookTransport


@dataclass(frozen=True)
class Claimed:
    """A delivery under this worker's lease."""

    delivery_id: int
    endpoint_id: int
    attempt: int  # 1-based, this attempt's number
    trigger: str
    uid: str
    body: str
    created_at: datetime  # the message's
    url: str
    secrets: tuple[str, ...]
    retry_schedule: tuple[float, ...] | None = None  # the endpoint's own; None: the global one


@dataclass(frozen=True)
class Result:
    claimed: Claimed
    started_at: datetime
    done_at: datetime
    duration_ms: float
    request_headers: dict[str, str]
    address: str | None
    status: int | None
    response_headers: dict[str, str] | None
    response_body: str | None
    error_class: str | None
    error: str | None
    decision: Decision

    @property
    def succeeded(self) -> bool:
        return self.decision.outcome == "succeeded"

    @property
    def gone(self) -> bool:
        """410 Gone: the receiver asked us to stop; the endpoint gets disabled."""
        return self.status == 410

    @property
    def next_attempt_at(self) -> datetime | None:
        if self.decision.delay is None:
            return None
        return self.done_at + timedelta(seconds=self.decision.delay)


async def perform(
    transport: WebhookTransport, claimed: Claimed, settings: WebhookSettings, rng: random.Random
) -> Result:
    """Sign and send; never raises for a failed delivery (the result says so)."""
    started_at = datetime.now(UTC)
    began = time.perf_counter()
    headers = signing.headers(claimed.secrets, claimed.uid, int(time.time()), claimed.body)
    request = OutboundRequest(claimed.url, headers, claimed.body.encode())
    status = address = error_class = error = response_body = None
    response_headers: dict[str, str] | None = None
    succeeded = permanent = False
    retry_after: float | None = None
    try:
        response = await transport.send(request)
        succeeded, status, address = True, response.status, response.address
        response_headers, response_body = response.headers, response.body
    except DeliveryError as exc:
        permanent, error_class, error = exc.permanent, exc.error_class, exc.message
        retry_after, address = exc.retry_after, exc.address
        if exc.response is not None:
            status, response_headers = exc.response.status, exc.response.headers
            response_body = exc.response.body
    duration_ms = (time.perf_counter() - began) * 1000
    decision = decide(
        succeeded=succeeded,
        permanent=permanent,
        attempt=claimed.attempt,
        trigger=claimed.trigger,
        retry_after=retry_after,
        schedule=schedule_for(claimed.retry_schedule, settings),
        jitter=settings.retry_jitter,
        rng=rng,
    )
    return Result(
        claimed,
        started_at,
        started_at + timedelta(milliseconds=duration_ms),
        duration_ms,
        headers,
        address,
        status,
        response_headers,
        response_body,
        error_class,
        error,
        decision,
    )
