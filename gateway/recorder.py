"""Recording a batch of attempts: one transaction writes the attempt log, moves each delivery
on (delivered, retried later, or dead with a dead letter), updates each endpoint's failure
streak and circuit breaker, and bumps the counters behind the metrics.

Contract: a success is applied even when the lease was lost meanwhile (another worker may
have sent it too: receivers deduplicate by ``webhook-id``); a failure is applied only by
the lease holder. Rows are locked in a fixed order (deliveries, endpoints by id, counters
by key), so concurrent recorders never deadlock.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from core.settings import WebhookSettings
from gateway import metrics as m
from gateway.attempts import Result
from gateway.queries import counters as counters_sql
from gateway.queries import delivery as sql
from gateway.signing import body_sha256

SCHEDULED = frozenset({"scheduled", "recover"})


@dataclass
class EndpointTally:
    ok: int = 0
    failed: int = 0
    first_failure: datetime | None = None
    last_ok: datetime | None = None
    gone: bool = False


@dataclass(frozen=True)
class Recorded:
    applied: int
    # endpoints to disable, and why (done in a transaction of their own)
    disable: list[tuple[int, str]] = field(default_factory=list)


def attempt_rows(results: Sequence[Result], worker: str) -> dict[str, Any]:
    """The attempt log rows of a batch, column by column (one INSERT ... unnest)."""
    columns: dict[str, list[Any]] = {name: [] for name in ATTEMPT_COLUMNS}
    for r in results:
        c = r.claimed
        row = (
            c.delivery_id,
            c.attempt,
            c.trigger,
            r.started_at,
            r.duration_ms,
            c.url,
            r.address,
            json.dumps(r.request_headers),
            body_sha256(c.body),
            r.status,
            json.dumps(r.response_headers) if r.response_headers is not None else None,
            _text(r.response_body),
            r.error_class,
            _text(r.error),
            r.succeeded,
            r.next_attempt_at,
        )
        for name, value in zip(ATTEMPT_COLUMNS, row, strict=True):
            columns[name].append(value)
    return {"worker": worker, **columns}


def _text(value: str | None) -> str | None:
    """Text PostgreSQL accepts: no NUL characters."""
    return value.replace("\x00", "\ufffd") if value else value


ATTEMPT_COLUMNS = (
    "delivery_id",
    "attempt",
    "trigger",
    "started_at",
    "duration_ms",
    "url",
    "address",
    "request_headers",
    "body_sha256",
    "response_status",
    "response_headers",
    "response_body",
    "error_class",
    "error",
    "succeeded",
    "next_attempt_at",
)


def increments(results: Sequence[Result], buckets: Sequence[float]) -> m.Increments:
    counts = m.Increments()
    for r in results:
        outcome = "succeeded" if r.succeeded else "failed"
        counts.add(m.ATTEMPTS, ("outbound", outcome))
        scheduled = r.claimed.trigger in SCHEDULED
        if scheduled and r.claimed.attempt > 1:
            counts.add(m.RETRIES, ("outbound",))
            if r.succeeded:
                counts.add(m.RECOVERED, ("outbound",))
        if scheduled and r.succeeded:
            seconds = max(0.0, (r.done_at - r.claimed.created_at).total_seconds())
            counts.observe(m.LATENCY, ("outbound",), buckets, seconds)
    return counts


def tally(results: Sequence[Result]) -> dict[int, EndpointTally]:
    tallies: dict[int, EndpointTally] = defaultdict(EndpointTally)
    for r in results:
        t = tallies[r.claimed.endpoint_id]
        if r.succeeded:
            t.ok += 1
            t.last_ok = max(t.last_ok or r.done_at, r.done_at)
        else:
            t.failed += 1
            t.first_failure = min(t.first_failure or r.started_at, r.started_at)
        t.gone = t.gone or r.gone
    return tallies


async def record(
    conn: psycopg.AsyncConnection[Any],
    worker: str,
    results: Sequence[Result],
    settings: WebhookSettings,
) -> Recorded:
    """Write one batch of results in one transaction."""
    async with conn.transaction():
        await conn.execute(sql.INSERT_ATTEMPTS, attempt_rows(results, worker))
        applied = await _finish(conn, worker, results)
        disable = await _endpoints(conn, results, settings)
        counts = increments(results, settings.latency_buckets_seconds)
        if counts:
            await conn.execute(counters_sql.BUMP, counts.params())
    return Recorded(applied, disable)


async def _finish(
    conn: psycopg.AsyncConnection[Any], worker: str, results: Sequence[Result]
) -> int:
    ordered = sorted(results, key=lambda r: r.claimed.delivery_id)
    params = {
        "worker": worker,
        "ids": [r.claimed.delivery_id for r in ordered],
        "outcomes": [r.decision.outcome for r in ordered],
        "next_at": [r.next_attempt_at for r in ordered],
        "statuses": [r.status for r in ordered],
        "errors": [r.error for r in ordered],
        "done_at": [r.done_at for r in ordered],
    }
    rows = await (await conn.execute(sql.FINISH, params)).fetchall()
    reasons = {r.claimed.delivery_id: r.decision.reason or r.error or "failed" for r in ordered}
    dead = [int(row[0]) for row in rows if row[1] == "dead"]
    if dead:
        await conn.execute(
            sql.DEAD_LETTERS, {"ids": dead, "reasons": [reasons[i][:500] for i in dead]}
        )
    return len(rows)


async def _endpoints(
    conn: psycopg.AsyncConnection[Any], results: Sequence[Result], settings: WebhookSettings
) -> list[tuple[int, str]]:
    tallies = tally(results)
    ids = sorted(tallies)
    params = {
        "ids": ids,
        "ok": [tallies[i].ok for i in ids],
        "failed": [tallies[i].failed for i in ids],
        "first_failure": [tallies[i].first_failure for i in ids],
        "last_ok": [tallies[i].last_ok for i in ids],
        "threshold": settings.circuit_failure_threshold,
        "open_base": settings.circuit_open_seconds,
        "open_max": settings.circuit_open_max_seconds,
        "disable_after": settings.disable_after_failing_seconds,
    }
    rows = await (await conn.execute(sql.ENDPOINT_OUTCOMES, params)).fetchall()
    failing = {int(row[0]) for row in rows if row[1]}
    disable = [(i, "the endpoint answered 410 Gone") for i in ids if tallies[i].gone]
    days = settings.disable_after_failing_seconds / 86_400
    disable += [
        (i, f"failing for {days:g} days without a success")
        for i in ids
        if i in failing and not tallies[i].gone
    ]
    return disable
