"""Grafana annotations of actions, through ``grafana-client``: queued in
``ops.grafana_annotations`` by the action's transaction, sent by the engine's pass, and
retried while Grafana is unreachable or failing (4xx other than 429: given up).

Retries follow :func:`core.retry.next_delay` on the transports' schedule and jitter
(``incidents.retry_schedule_seconds``, ``retry_jitter``), honouring a 429's or 503's
``Retry-After`` up to ``max_retry_after_seconds``; past the schedule the last delay repeats,
because an annotation is never abandoned while Grafana is merely away. grafana-client's
errors carry the decoded body but not the headers, so the answer's ``Retry-After`` is kept
by a response hook on the client's session, per thread (each send runs in a worker
thread)."""

from __future__ import annotations

import logging
import random
import threading
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import anyio
import psycopg
from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from core.retry import next_delay, retry_after_of
from core.settings import IncidentSettings

log = logging.getLogger(__name__)
Conn = psycopg.AsyncConnection[Any]
BATCH = 20
_rng = random.Random()  # jitter needs spread, not reproducibility

CLAIM = """
SELECT id, text, tags, at, attempts FROM ops.grafana_annotations
WHERE status = 'pending' AND next_attempt_at <= %(now)s
ORDER BY id LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""
SENT = """
UPDATE ops.grafana_annotations SET status = 'sent', attempts = attempts + 1,
    grafana_id = %(grafana_id)s, last_error = NULL
WHERE id = %(id)s
"""
RETRY = """
UPDATE ops.grafana_annotations SET attempts = attempts + 1, next_attempt_at = %(next)s,
    last_error = %(error)s
WHERE id = %(id)s
"""
GIVE_UP = """
UPDATE ops.grafana_annotations SET status = 'sent', attempts = attempts + 1,
    last_error = 'given up: ' || %(error)s
WHERE id = %(id)s
"""


class AnnotationError(Exception):
    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after  # seconds the answer's Retry-After asks for


class GrafanaAnnotations:
    """One ``POST /api/annotations`` per queued annotation (organisation-wide, tagged)."""

    def __init__(self, url: str, token: str, verify: bool | str, timeout: float) -> None:
        parts = urlsplit(url)
        self.api = GrafanaApi(
            auth=token,
            host=parts.hostname or "localhost",
            port=parts.port,
            url_path_prefix=parts.path.strip("/"),
            protocol=parts.scheme or "http",
            verify=verify,
            timeout=timeout,
        )
        self._last = threading.local()
        self.api.client.s.hooks["response"].append(self._keep_retry_after)

    def _keep_retry_after(self, response: Any, **_: Any) -> None:
        self._last.retry_after = retry_after_of(response.status_code or 0, response.headers)

    def add(self, text: str, tags: list[str], at: datetime) -> int:
        self._last.retry_after = None
        try:
            answer = self.api.annotations.add_annotation(  # type: ignore[no-untyped-call]
                time_from=int(at.timestamp() * 1000), tags=tags, text=text
            )
        except GrafanaClientError as exc:
            wait, permanent = self._last.retry_after, exc.status_code != 429
            message = f"Grafana refused: {exc.message}"
            raise AnnotationError(message, permanent=permanent, retry_after=wait) from exc
        except GrafanaException as exc:
            wait = self._last.retry_after
            message = f"Grafana failed: {exc.message}"
            raise AnnotationError(message, permanent=False, retry_after=wait) from exc
        except OSError as exc:  # connection refused, TLS, timeouts below grafana-client
            raise AnnotationError(f"Grafana unreachable: {exc}", permanent=False) from exc
        return int(answer.get("id", 0)) if isinstance(answer, dict) else 0


def sender(settings: IncidentSettings, grafana_url: str | None) -> GrafanaAnnotations | None:
    if grafana_url is None or settings.grafana_token is None:
        return None
    verify: bool | str = str(settings.grafana_ca_file) if settings.grafana_ca_file else True
    token = settings.grafana_token.get_secret_value()
    return GrafanaAnnotations(grafana_url, token, verify, settings.request_timeout_seconds)


def _delay(settings: IncidentSettings, attempts: int, error: AnnotationError) -> float:
    """Seconds until the next try after the failure of attempt ``attempts + 1``."""
    return next_delay(
        settings.retry_schedule_seconds,
        attempts + 1,
        jitter=settings.retry_jitter,
        rng=_rng,
        retry_after=error.retry_after,
        max_retry_after=settings.max_retry_after_seconds,
        after_schedule="repeat_last",
    )


async def _one(
    conn: Conn,
    row: tuple[Any, ...],
    grafana: GrafanaAnnotations,
    now: datetime,
    settings: IncidentSettings,
) -> None:
    ident, text, tags, at, attempts = row
    try:
        grafana_id = await anyio.to_thread.run_sync(grafana.add, text, list(tags), at)
    except AnnotationError as error:
        log.warning("annotation %s: %s", ident, error)
        if error.permanent:
            await conn.execute(GIVE_UP, {"id": ident, "error": str(error)})
            return
        later = now + timedelta(seconds=_delay(settings, attempts, error))
        await conn.execute(RETRY, {"id": ident, "next": later, "error": str(error)})
        return
    await conn.execute(SENT, {"id": ident, "grafana_id": grafana_id})


async def flush(
    conn: Conn, grafana: GrafanaAnnotations, now: datetime, settings: IncidentSettings
) -> int:
    """Send the due annotations; how many were attempted."""
    async with conn.transaction():
        rows = await (await conn.execute(CLAIM, {"now": now, "limit": BATCH})).fetchall()
        for row in rows:
            await _one(conn, row, grafana, now, settings)
    return len(rows)
