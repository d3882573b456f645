"""The PSPs' webhooks, as the live stream sends them to the gateway's inbound routes.

When ``simulator.psp_webhook_url`` is set, what each PSP reports about a charge (amount,
status) reaches opsdeck the way it does in production: as a signed Stripe event
(``charge.succeeded`` / ``charge.failed``) or Paystack event (``charge.success`` /
``charge.failed``) POSTed to ``<url>/stripe`` or ``<url>/paystack``, instead of the live
stream writing ``psp_transactions`` itself. Like the real PSPs, the sender retries until it
gets a 2xx (backing off), and it misbehaves the ways they do: some events are delivered
twice (``duplicate_share``), some late, after newer ones (``reorder_share``), and some first
with a broken signature (``bad_signature_share``: the gateway answers 400, the sender
retries with the right one).
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from core.psp_webhooks import (
    PAYSTACK_HEADER,
    STRIPE_HEADER,
    paystack_charge_event,
    paystack_signature,
    stripe_charge_event,
    stripe_header,
)

log = logging.getLogger(__name__)
SENDERS = 4
MAX_TRIES = 30
MAX_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True)
class PspWebhooks:
    url: str  # the gateway's inbound base URL: <url>/stripe, <url>/paystack
    stripe_secret: str
    paystack_secret: str
    duplicate_share: float = 0.05
    bad_signature_share: float = 0.01
    reorder_share: float = 0.05


@dataclass(frozen=True)
class Delivery:
    provider: str
    body: bytes
    tries: int = 0
    corrupt: bool = False  # send a wrong signature this time
    duplicate: bool = False  # a redelivery of an acknowledged event


class PspSender:
    def __init__(self, target: PspWebhooks, seed: int) -> None:
        self.target = target
        self.rng = random.Random(seed * 7919)
        self._heap: list[tuple[float, int, Delivery]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=10.0, trust_env=False)
        self.sent = self.rejected = self.failed = 0

    def submit(self, row: tuple[object, ...], delay: float) -> None:
        """A PSP report (psp_id, psp, amount, currency, status, livemode) due after ``delay``."""
        psp_id, psp, amount, currency, status, livemode = row
        assert isinstance(amount, int)
        succeeded = status != "failed"  # an uncaptured authorization is a charge.succeeded too
        now = datetime.now(UTC)
        if psp == "stripe":
            stamp = int(now.timestamp())
            event = stripe_charge_event(
                f"evt_{psp_id}",
                str(psp_id),
                amount,
                str(currency),
                succeeded,
                bool(livemode),
                stamp,
            )
        else:
            reference = str(psp_id)
            digits = reference.rsplit("L", 1)[-1]
            number = int(digits) if digits.isdigit() else zlib.crc32(reference.encode())
            event = paystack_charge_event(
                number, reference, amount, str(currency), succeeded, bool(livemode), now
            )
        if self.rng.random() < self.target.reorder_share:
            delay += self.rng.uniform(2.0, 10.0)  # overtaken by later events
        corrupt = self.rng.random() < self.target.bad_signature_share
        body = json.dumps(event, separators=(",", ":")).encode()
        self._schedule(delay, Delivery(str(psp), body, corrupt=corrupt))

    def pending(self) -> int:
        """Deliveries waiting for their time (or their retry)."""
        with self._lock:
            return len(self._heap)

    def _schedule(self, delay: float, delivery: Delivery) -> None:
        with self._lock:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), delivery))

    def _due(self) -> list[Delivery]:
        now = time.monotonic()
        out: list[Delivery] = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now and len(out) < 500:
                out.append(heapq.heappop(self._heap)[2])
        return out

    def run(self, stop: threading.Event) -> None:
        with ThreadPoolExecutor(SENDERS, thread_name_prefix="psp-webhooks") as pool:
            while not stop.wait(0.05):
                for delivery in self._due():
                    pool.submit(self._send, delivery)
        self._client.close()

    def _headers(self, delivery: Delivery) -> dict[str, str]:
        if delivery.provider == "stripe":
            secret = self.target.stripe_secret
            signature = stripe_header([secret], delivery.body, int(time.time()))
            if delivery.corrupt:
                signature = signature[:-4] + "0000"
            return {"content-type": "application/json", STRIPE_HEADER: signature}
        signature = paystack_signature(self.target.paystack_secret, delivery.body)
        if delivery.corrupt:
            signature = "0" * 8 + signature[8:]
        return {"content-type": "application/json", PAYSTACK_HEADER: signature}

    def _send(self, d: Delivery) -> None:
        url = f"{self.target.url.rstrip('/')}/{d.provider}"
        try:
            status = self._client.post(url, content=d.body, headers=self._headers(d)).status_code
        except httpx.HTTPError as exc:
            status = 0
            if d.tries == 0:
                log.warning("PSP webhook to %s failed (%s); retrying", url, exc)
        if 200 <= status < 300:
            self.sent += 1
            if not d.duplicate and self.rng.random() < self.target.duplicate_share:
                again = Delivery(d.provider, d.body, duplicate=True)
                self._schedule(self.rng.uniform(0.5, 5.0), again)
            return
        self.rejected += status == 400
        if d.tries + 1 >= MAX_TRIES:
            self.failed += 1
            log.error("PSP webhook to %s given up after %d tries", url, MAX_TRIES)
            return
        backoff = min(MAX_BACKOFF_SECONDS, 2.0**d.tries)
        self._schedule(backoff, Delivery(d.provider, d.body, d.tries + 1, False, d.duplicate))
