"""Mute 1h: one Alertmanager silence per target. A second click extends the same silence
(Alertmanager updates a silence posted with its id) instead of adding another."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from api.incidents import store
from api.incidents.actions.spec import Context, Outcome, Summary, Target
from api.incidents.context import Incidents
from api.incidents.queries import actions as sql
from api.problems import Problem, invalid
from api.runtime import Runtime


def _base(runtime: Runtime) -> str:
    url = runtime.settings.alertmanager_url
    if url is None:
        raise Problem(409, "ALERTMANAGER_URL is not set: silences cannot be created")
    return str(url).rstrip("/")


def _alertname(target: Target) -> str:
    if not target.alertname:
        raise invalid("alertname", "name the alert to mute")
    return target.alertname


async def _alertmanager(
    client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise Problem(503, f"Alertmanager is unreachable: {exc}") from exc
    if response.is_error:
        raise Problem(502, f"Alertmanager answered {response.status_code}: {response.text[:200]}")
    return response


async def mute_summary(runtime: Runtime, incidents: Incidents, target: Target) -> Summary:
    if not target.alertname:
        return Summary("Name the alert to mute.", {"alerts": 0})
    if runtime.settings.alertmanager_url is None:
        return Summary("ALERTMANAGER_URL is not set: Mute 1h cannot run.", {"alerts": 0})
    name = target.alertname
    assert incidents.http is not None
    response = await _alertmanager(
        incidents.http,
        "GET",
        f"{_base(runtime)}/api/v2/alerts",
        params={"filter": f'alertname="{name}"', "silenced": "true", "inhibited": "true"},
    )
    alerts = response.json()
    minutes = int(incidents.settings.mute_seconds // 60)
    return Summary(
        f"Silence alertname={name} in Alertmanager for {minutes} minutes (extends an existing"
        " silence of this alert).",
        {"alerts": len(alerts)},
        tuple(sorted({str(a.get("fingerprint")) for a in alerts})),
    )


def _silence(name: str, ctx: Context, ends: datetime, existing: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "matchers": [{"name": "alertname", "value": name, "isRegex": False, "isEqual": True}],
        "startsAt": ctx.now.isoformat(),
        "endsAt": ends.isoformat(),
        "createdBy": ctx.actor,
        "comment": ctx.reason or f"Mute 1h from opsdeck ({ctx.target.source})",
    }
    if existing:
        body["id"] = existing
    return body


async def mute(ctx: Context) -> Outcome:
    name = _alertname(ctx.target)
    base = _base(ctx.runtime)
    assert ctx.incidents.http is not None
    label = f"alertname={name}"
    ends = ctx.now + timedelta(seconds=ctx.incidents.settings.mute_seconds)
    async with ctx.runtime.ops.connection() as conn, conn.transaction():
        await conn.execute(sql.LOCK_SILENCE_TARGET, {"target": label})
        row = await (await conn.execute(sql.SILENCE, {"target": label})).fetchone()
        existing = str(row[0]) if row and row[1] > ctx.now else None
        response = await _alertmanager(
            ctx.incidents.http,
            "POST",
            f"{base}/api/v2/silences",
            json=_silence(name, ctx, ends, existing),
        )
        silence = str(response.json()["silenceID"])
        params = {"target": label, "silence": silence, "ends_at": ends, "actor": ctx.actor}
        await conn.execute(sql.SAVE_SILENCE, params)
        incidents = await store.open_by_alertname(conn, name)
    verb = "extended" if existing == silence else "created"
    return Outcome(
        f"silence {silence} {verb} until {ends.isoformat(timespec='minutes')}",
        {"silence": silence, "ends_at": ends.isoformat(), "extended": existing == silence},
        tuple(incidents),
    )
