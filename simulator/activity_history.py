"""Backfilled activity: API request logs, site sessions, calendar syncs, service checks and
support tickets.

API logs are the biggest table by far, so they are built in time slices (ids follow time,
as they do in a real log table) from a per-slice random stream: a slice costs the same
whatever the scale, and any slice can be rebuilt alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from simulator import vocabulary
from simulator.clock import HOUR, MINUTE, SECOND
from simulator.columns import (
    Ints,
    as_text,
    join,
    nullable_ints,
    pick,
    pick_values,
    text_from,
    timestamps,
    tokens,
)
from simulator.seasonality import minute_weights, sample_times

API_SLICE_ROWS = 250_000
ID_KINDS = {"bookings": "bk_", "customers": "cus_", "payment_intents": "pi_"}


@dataclass(frozen=True)
class RouteParts:
    """Vocabulary arrays by route index: method, template, and the raw path around the id."""

    method: pa.Array
    route: pa.Array
    before: pa.Array
    after: pa.Array
    id_prefix: pa.Array
    has_id: np.ndarray


def route_parts() -> RouteParts:
    befores, afters, prefixes = [], [], []
    for route in vocabulary.ROUTES:
        before, _, after = route.route.partition("{id}")
        befores.append(before)
        afters.append(after)
        kind = route.route.split("/")[2]
        prefixes.append(ID_KINDS.get(kind, "") if "{id}" in route.route else "")
    return RouteParts(
        method=pa.array([r.method for r in vocabulary.ROUTES]),
        route=pa.array([r.route for r in vocabulary.ROUTES]),
        before=pa.array(befores),
        after=pa.array(afters),
        id_prefix=pa.array(prefixes),
        has_id=np.asarray(["{id}" in r.route for r in vocabulary.ROUTES]),
    )


def _bodies(route_index: Ints, variant: Ints, method: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Small JSON request and response bodies; GETs have no request body."""
    vocab = [r.route.split("/")[2] for r in vocabulary.ROUTES]
    kind = text_from(vocab, route_index)
    number = as_text(variant)
    request = join(
        '{"resource_id": ', number, ', "quantity": 1, "metadata": {"source": "', kind, '"}}'
    )
    is_get = pc.equal(method, "GET")
    request = pc.if_else(is_get, pa.scalar(None, pa.string()), request)
    response = join('{"object": "', kind, '", "id": "', kind, "_", number, '", "livemode": true}')
    return request, response


def api_log_slices(
    scale: vocabulary.Scale, seed: int, start_us: int, end_us: int, total: int, test_share: float
) -> Iterator[pa.Table]:
    """API request logs in consecutive time slices of about API_SLICE_ROWS rows each."""
    slices = max(1, -(-total // API_SLICE_ROWS))
    minutes = np.arange(start_us // MINUTE, (end_us - 1) // MINUTE + 1)
    cumulative = np.cumsum(minute_weights(minutes))
    bounds = np.linspace(start_us, end_us, slices + 1).astype(np.int64)
    cut = np.searchsorted(minutes * MINUTE, bounds)
    shares = np.diff(np.concatenate([[0.0], cumulative])[np.minimum(cut, len(minutes))])
    counts = np.floor(shares / shares.sum() * total).astype(np.int64)
    counts[-1] += total - counts.sum()
    parts = route_parts()
    first_id = 1
    for index in range(slices):
        rng = np.random.default_rng([seed, 20, index])
        yield _api_slice(
            rng,
            parts,
            scale,
            seed,
            (int(bounds[index]), int(bounds[index + 1])),
            first_id,
            int(counts[index]),
            test_share,
        )
        first_id += int(counts[index])


def _api_slice(
    rng: np.random.Generator,
    parts: RouteParts,
    scale: vocabulary.Scale,
    seed: int,
    window: tuple[int, int],
    first_id: int,
    count: int,
    test_share: float,
) -> pa.Table:
    ids = np.arange(first_id, first_id + count)
    started = sample_times(rng, count, *window)
    route = pick(rng, [r.weight for r in vocabulary.ROUTES], count)
    median = np.asarray([r.median_ms for r in vocabulary.ROUTES])[route]
    sigma = np.asarray([r.sigma for r in vocabulary.ROUTES])[route]
    duration = median * np.exp(sigma * rng.standard_normal(count))
    tail = rng.random(count) < vocabulary.LATENCY_TAIL_SHARE
    duration[tail] *= vocabulary.LATENCY_TAIL_FACTOR * rng.random(int(tail.sum())) + 1
    duration = np.round(duration, 3)
    status = np.asarray([c for c, _ in vocabulary.STATUS_CODES])[
        pick(rng, [s for _, s in vocabulary.STATUS_CODES], count)
    ]
    method = parts.method.take(pa.array(route))
    object_id = as_text(rng.integers(1, 5_000_000, count))
    path = join(
        parts.before.take(pa.array(route)),
        pc.if_else(
            pa.array(parts.has_id[route]),
            join(parts.id_prefix.take(pa.array(route)), object_id),
            "",
        ),
        parts.after.take(pa.array(route)),
    )
    webhook = np.char.startswith(
        np.asarray([r.route for r in vocabulary.ROUTES])[route], "/v1/webhooks"
    )
    account = (np.minimum(rng.zipf(1.4, count), scale.accounts) * 7907) % scale.accounts
    anonymous = webhook | (status == 401)
    request, response = _bodies(route, rng.integers(1, 10_000, count), method)
    is_error = status >= 400
    error_index = np.searchsorted(sorted(vocabulary.ERROR_TYPES), status)
    error_codes = sorted(vocabulary.ERROR_TYPES)
    error_index = np.minimum(error_index, len(error_codes) - 1)
    error_type = text_from(
        [vocabulary.ERROR_TYPES[c][0] for c in error_codes], error_index, ~is_error
    )
    error_message = text_from(
        [vocabulary.ERROR_TYPES[c][1] for c in error_codes], error_index, ~is_error
    )
    server_error = status >= 500
    handlers = [r.route.split("/")[2] for r in vocabulary.ROUTES]
    traces = [
        vocabulary.STACK_TRACE.format(
            handler=h, line=120 + i, line2=40 + i, error="OperationalError"
        )
        for i, h in enumerate(handlers)
    ]
    post = pc.equal(method, "POST").to_numpy(zero_copy_only=False)
    ips = rng.integers(0, 20_000, count)
    return pa.table(
        {
            "id": pa.array(ids),
            "request_id": tokens("req_", ids, seed),
            "started_at": timestamps(started),
            "method": method,
            "path": path,
            "route": parts.route.take(pa.array(route)),
            "status_code": pa.array(status),
            "duration_ms": pa.array(duration),
            "api_key_id": pc.if_else(
                pa.array(anonymous),
                pa.scalar(None, pa.string()),
                tokens("key_", account * 3 + rng.integers(0, 3, count), seed + 2),
            ),
            "account_id": pc.if_else(
                pa.array(anonymous),
                pa.scalar(None, pa.string()),
                tokens("acct_", account, seed + 3),
            ),
            "ip_address": join(
                "10.",
                as_text(ips // 65536 % 256),
                ".",
                as_text(ips // 256 % 256),
                ".",
                as_text(ips % 256),
            ),
            "livemode": pa.array(rng.random(count) >= test_share),
            "api_version": pick_values(rng, vocabulary.API_VERSIONS, count),
            "idempotency_key": pc.if_else(
                pa.array(post & (rng.random(count) < 0.7)),
                tokens("idk_", ids, seed + 4),
                pa.scalar(None, pa.string()),
            ),
            "error_type": error_type,
            "error_message": error_message,
            "stack_trace": text_from(traces, route, ~server_error),
            "user_id": pc.if_else(
                pa.array(rng.random(count) < 0.3),
                tokens("usr_", rng.integers(1, 50_000, count), seed + 5),
                pa.scalar(None, pa.string()),
            ),
            "request_body": request,
            "response_body": response,
            "updated_at": timestamps(
                np.minimum(started + (duration * 1000).astype(np.int64), window[1] - 1)
            ),
        }
    )


def sessions_table(
    scale: vocabulary.Scale, seed: int, start_us: int, end_us: int, count: int
) -> pa.Table:
    rng = np.random.default_rng([seed, 21])
    started = sample_times(rng, count, start_us, end_us)
    customer = rng.integers(1, scale.customers + 1, count)
    return pa.table(
        {
            "id": pa.array(np.arange(1, count + 1)),
            "started_at": timestamps(started),
            "customer_id": nullable_ints(customer, rng.random(count) < 0.55),
            "updated_at": timestamps(started),
        }
    )


def calendar_syncs_table(
    scale: vocabulary.Scale, seed: int, start_us: int, end_us: int, count: int
) -> pa.Table:
    rng = np.random.default_rng([seed, 22])
    started = sample_times(rng, count, start_us, end_us)
    provider = pick(rng, [p[1] for p in vocabulary.CALENDAR_PROVIDERS], count)
    failed = rng.random(count) < np.asarray([p[2] for p in vocabulary.CALENDAR_PROVIDERS])[provider]
    finished = np.minimum(
        started + (rng.lognormal(0.5, 0.8, count) * SECOND).astype(np.int64), end_us - 1
    )
    resource = rng.integers(1, scale.resources + 1, count)
    errors = rng.integers(0, len(vocabulary.CALENDAR_ERRORS), count)
    return pa.table(
        {
            "id": pa.array(np.arange(1, count + 1)),
            "provider": text_from([p[0] for p in vocabulary.CALENDAR_PROVIDERS], provider),
            "calendar_id": tokens("cal_", resource, seed + 6),
            "resource_id": pa.array(resource),
            "started_at": timestamps(started),
            "finished_at": timestamps(finished),
            "status": pa.array(np.where(failed, "failed", "ok").tolist()),
            "error": text_from(vocabulary.CALENDAR_ERRORS, errors, ~failed),
            "updated_at": timestamps(finished),
        }
    )


def service_checks_table(seed: int, start_us: int, end_us: int) -> pa.Table:
    rng = np.random.default_rng([seed, 23])
    interval = vocabulary.SERVICE_CHECK_INTERVAL_SECONDS * SECOND
    ticks = np.arange(start_us - start_us % interval + interval, end_us, interval)
    services = len(vocabulary.SERVICES)
    checked = np.repeat(ticks, services) + rng.integers(0, SECOND, len(ticks) * services)
    service = np.tile(np.arange(services), len(ticks))
    count = len(checked)
    ok = rng.random(count) >= 0.0005
    latency = np.round(rng.lognormal(3.0, 0.4, count) * np.where(ok, 1, 20), 2)
    return pa.table(
        {
            "id": pa.array(np.arange(1, count + 1)),
            "service": text_from(vocabulary.SERVICES, service),
            "checked_at": timestamps(checked),
            "ok": pa.array(ok),
            "latency_ms": pa.array(latency),
            "updated_at": timestamps(np.minimum(checked, end_us - 1)),
        }
    )


def support_tickets_table(
    scale: vocabulary.Scale, seed: int, start_us: int, end_us: int, count: int
) -> pa.Table:
    rng = np.random.default_rng([seed, 24])
    opened = sample_times(rng, count, start_us, end_us)
    resolution = (rng.lognormal(np.log(4.0), 0.9, count) * HOUR).astype(np.int64)
    resolved_at = opened + resolution
    resolved = resolved_at < end_us
    still_open = np.where(rng.random(count) < 0.3, "pending", "open")
    status = np.where(resolved, "resolved", still_open)
    subjects = rng.integers(0, len(vocabulary.TICKET_SUBJECTS), count)
    return pa.table(
        {
            "id": pa.array(np.arange(1, count + 1)),
            "customer_id": pa.array(rng.integers(1, scale.customers + 1, count)),
            "subject": text_from(vocabulary.TICKET_SUBJECTS, subjects),
            "priority": pick_values(rng, vocabulary.TICKET_PRIORITIES, count),
            "status": pa.array(status.tolist()),
            "opened_at": timestamps(opened),
            "resolved_at": timestamps(resolved_at, ~resolved),
            "updated_at": timestamps(np.where(resolved, resolved_at, opened)),
        }
    )
