"""Claiming due deliveries: the worker's **claim** step.

Contract: :meth:`Claims.claim` is one ops transaction that takes up to ``wanted`` due
deliveries ``FOR UPDATE SKIP LOCKED`` (so workers never take the same one) from at most
``MAX_ENDPOINTS_PER_CLAIM`` endpoints, within each endpoint's room: its concurrency cap
minus what is in flight, one probe while its circuit is half-open, and its rate limit's
whole tokens (the tokens taken are spent in the same transaction). The batch is split
fairly between the endpoints that have room. Every claimed delivery is leased to this
worker for ``lease_seconds`` (``gateway.heartbeat`` renews the lease while it is held) and
comes with its endpoint's active signing secrets and its own retry schedule, if it has
one. It also says how soon to ask again when a limit, not an empty queue, held deliveries
back.

:meth:`Claims.release` hands back deliveries claimed but never attempted (a worker
stopping): they are due again at once, their attempt not counted. A release that fails is
logged; the leases expire and another worker takes them over.

Inbound events are claimed by :meth:`gateway.inbound_processing.InboundProcessor.run_once`
under the same rules (``FOR UPDATE SKIP LOCKED``, a lease the heartbeat renews).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from core.sealed_secrets import SecretBox
from core.settings import WebhookSettings
from gateway.attempts import Claimed
from gateway.queries import delivery as sql

log = logging.getLogger(__name__)
MAX_ENDPOINTS_PER_CLAIM = 100
# Due deliveries exist but another worker holds their endpoints' rows: ask again soon.
BUSY_RETRY_SECONDS = 0.02
CLAIM_TIMEOUT_SECONDS = 10
RELEASE_TIMEOUT_SECONDS = 5


class Claims:
    """One worker's claims on the ops database's delivery queue."""

    def __init__(
        self, ops: AsyncConnectionPool, hooks: WebhookSettings, worker: str, box: SecretBox
    ) -> None:
        self.ops = ops
        self.hooks = hooks
        self.worker = worker
        self.box = box

    async def claim(self, wanted: int) -> tuple[list[Claimed], float | None]:
        """One claim transaction; (claimed deliveries, seconds until a limit lets more go)."""
        params = {
            "threshold": self.hooks.circuit_failure_threshold,
            "endpoints": MAX_ENDPOINTS_PER_CLAIM,
            "default_rate": self.hooks.default_rate_limit_per_second,
        }
        async with self.ops.connection(timeout=CLAIM_TIMEOUT_SECONDS) as conn, conn.transaction():
            due = await (await conn.execute(sql.DUE_ENDPOINTS, params)).fetchall()
            if not due:
                busy = await (await conn.execute(sql.DUE_ELSEWHERE)).fetchone()
                return [], BUSY_RETRY_SECONDS if busy and busy[0] else None
            room, retry_in = shares(due, wanted)
            rows, secrets = await self._take(conn, due, room)
        policies = {int(r[0]): _Policy(str(r[1]), _schedule(r[6])) for r in due}
        return [_claimed(row, policies, secrets) for row in rows], retry_in

    async def release(self, ids: list[int]) -> None:
        """Hand back deliveries that were claimed but never attempted."""
        if not ids:
            return
        try:
            async with self.ops.connection(timeout=RELEASE_TIMEOUT_SECONDS) as conn:
                await conn.execute(sql.RELEASE, {"ids": ids, "worker": self.worker})
        except (psycopg.Error, TimeoutError) as exc:
            log.warning("could not hand back %d deliveries (leases expire): %s", len(ids), exc)

    async def _take(
        self, conn: psycopg.AsyncConnection[Any], due: list[tuple[Any, ...]], room: dict[int, int]
    ) -> tuple[list[tuple[Any, ...]], dict[int, tuple[str, ...]]]:
        """Lease each endpoint's share, spend the tokens taken, read the secrets needed."""
        ids = [int(r[0]) for r in due]
        params = {
            "endpoints": ids,
            "counts": [room[i] for i in ids],
            "worker": self.worker,
            "lease": self.hooks.lease_seconds,
        }
        rows = await (await conn.execute(sql.CLAIM, params)).fetchall()
        spent = dict.fromkeys(ids, 0)
        for row in rows:
            spent[int(row[1])] += 1
        tokens = [float(r[3]) if r[3] is not None else 0.0 for r in due]
        await conn.execute(
            sql.SPEND_TOKENS,
            {
                "endpoints": ids,
                "tokens": tokens,
                "spent": [spent[i] for i in ids],
                "default_rate": self.hooks.default_rate_limit_per_second,
            },
        )
        return rows, await _secrets(conn, [i for i in ids if spent[i]], self.box)


def shares(due: list[tuple[Any, ...]], wanted: int) -> tuple[dict[int, int], float | None]:
    """What each endpoint may take now: its room (cap minus in flight; one probe while
    its circuit is half-open; its whole tokens), the batch split fairly between them."""
    room: dict[int, int] = {}
    retry_in: float | None = None
    for endpoint_id, _url, cap, tokens, probing, in_flight, _schedule in due:
        free = max(0, int(cap) - int(in_flight))
        if probing:
            free = 1 if int(in_flight) == 0 else 0
        if tokens is not None:
            whole = int(float(tokens))
            free = min(free, whole)
            if whole < 1:
                retry_in = min(retry_in or 1.0, 0.1)
        room[int(endpoint_id)] = free
    return _split(room, wanted), retry_in


def _split(room: dict[int, int], wanted: int) -> dict[int, int]:
    shares = dict.fromkeys(room, 0)
    left = wanted
    while left > 0:
        hungry = [i for i in room if shares[i] < room[i]]
        if not hungry:
            break
        each = max(1, left // len(hungry))
        for i in hungry:
            take = min(each, room[i] - shares[i], left)
            shares[i] += take
            left -= take
            if left <= 0:
                break
    return shares


async def _secrets(
    conn: psycopg.AsyncConnection[Any], ids: list[int], box: SecretBox
) -> dict[int, tuple[str, ...]]:
    """The active signing secrets of each endpoint, opened (they are stored sealed)."""
    if not ids:
        return {}
    found: dict[int, list[str]] = {}
    rows = await (await conn.execute(sql.SECRETS, {"endpoints": ids})).fetchall()
    for endpoint_id, secret in rows:
        found.setdefault(int(endpoint_id), []).append(box.open(str(secret)))
    return {k: tuple(v) for k, v in found.items()}


@dataclass(frozen=True)
class _Policy:
    url: str
    retry_schedule: tuple[float, ...] | None  # None: the global one


def _schedule(value: Any) -> tuple[float, ...] | None:
    return None if value is None else tuple(float(d) for d in value)


def _claimed(
    row: tuple[Any, ...], policies: dict[int, _Policy], secrets: dict[int, tuple[str, ...]]
) -> Claimed:
    endpoint_id = int(row[1])
    policy = policies[endpoint_id]
    return Claimed(
        delivery_id=int(row[0]),
        endpoint_id=endpoint_id,
        attempt=int(row[2]),
        trigger=str(row[3]),
        uid=str(row[4]),
        body=str(row[5]),
        created_at=row[6],
        url=policy.url,
        secrets=secrets.get(endpoint_id, ()),
        retry_schedule=policy.retry_schedule,
    )
