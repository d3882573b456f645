"""Grafana annotations of actions, through ``grafana-client``: queued in
``ops.grafana_annotations`` by the action's transaction, sent by the engine's pass, and
retried on the transport schedule while Grafana is unreachable (4xx: given up)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import anyio
import psycopg
from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from core.settings import IncidentSettings

log = logging.getLogger(__name__)
Conn = psycopg.AsyncConnection[Any]
BATCH = 20

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
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


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

    def add(self, text: str, tags: list[str], at: datetime) -> int:
        try:
            answer = self.api.annotations.add_annotation(  # type: ignore[no-untyped-call]
                time_from=int(at.timestamp() * 1000), tags=tags, text=text
            )
        except GrafanaClientError as exc:
            permanent = exc.status_code != 429
            raise AnnotationError(f"Grafana refused: {exc.message}", permanent=permanent) from exc
        except GrafanaException as exc:
            raise AnnotationError(f"Grafana failed: {exc.message}", permanent=False) from exc
        except OSError as exc:  # connection refused, TLS, timeouts below grafana-client
            raise AnnotationError(f"Grafana unreachable: {exc}", permanent=False) from exc
        return int(answer.get("id", 0)) if isinstance(answer, dict) else 0


def sender(settings: IncidentSettings, grafana_url: str | None) -> GrafanaAnnotations | None:
    if grafana_url is None or settings.grafana_token is None:
        return None
    verify: bool | str = str(settings.grafana_ca_file) if settings.grafana_ca_file else True
    token = settings.grafana_token.get_secret_value()
    return GrafanaAnnotations(grafana_url, token, verify, settings.request_timeout_seconds)


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
        schedule = settings.retry_schedule_seconds
        if error.permanent:
            await conn.execute(GIVE_UP, {"id": ident, "error": str(error)})
            return
        delay = schedule[min(attempts, len(schedule) - 1)]
        later = now + timedelta(seconds=delay)
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
