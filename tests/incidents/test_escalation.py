"""The escalation engine with a clock moved by hand, and its transports against local
HTTPS fakes of Slack and PagerDuty: steps at 0, 15 and 45 minutes, none after an
acknowledgement, exactly once across a crash, retries on 429/5xx/timeouts only (due when
the schedule, jittered, or a later Retry-After says)."""

from __future__ import annotations

import email.utils
import hashlib
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import jsonschema
import psycopg
import pytest

from api.incidents import context, escalation, notifier, store
from api.incidents.alertmanager import Notification
from api.incidents.context import Incidents
from api.incidents.transports.base import Outgoing
from tests.api.conftest import Harness
from tests.dashboards.shared_schemas import load
from tests.incidents.conftest import alert, faked_settings, notification
from tests.incidents.fakes import Fake, Reply

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
ENQUEUE = "/v2/enqueue"
POST = "/api/chat.postMessage"
UPDATE = "/api/chat.update"
Conn = psycopg.AsyncConnection[Any]


@dataclass
class Engine:
    incidents: Incidents
    conn: Conn
    fake: Fake

    async def at(self, minutes: float) -> list[escalation.Fired]:
        now = T0 + timedelta(minutes=minutes)
        fired = await escalation.fire_due(
            self.conn, now, self.incidents.oncall, self.incidents.settings
        )
        await notifier.deliver_due(
            self.conn, self.incidents.transports, now, self.incidents.settings
        )
        return fired

    async def open(self, name: str, fingerprint: str, severity: str = "high") -> int:
        note = Notification.model_validate(
            notification(name, alert(name, fingerprint, severity=severity))
        )
        applied = await store.apply_notification(
            self.conn, note, T0, self.incidents.oncall, self.incidents.settings
        )
        assert applied.incident is not None
        return applied.incident


@asynccontextmanager
async def _engine(
    api: Harness, fake: tuple[Fake, httpx.AsyncClient], jitter: float
) -> AsyncIterator[Engine]:
    server, client = fake
    settings = faked_settings(server, retry_schedule_seconds=(5.0, 30.0, 60.0), retry_jitter=jitter)
    incidents = context.build(settings, client)
    async with await psycopg.AsyncConnection.connect(api.db_url, autocommit=True) as conn:
        yield Engine(incidents, conn, server)


@pytest.fixture
async def engine(api: Harness, fake: tuple[Fake, httpx.AsyncClient]) -> AsyncIterator[Engine]:
    """Without jitter, so retries are due at exact times (the jitter has its own test)."""
    async with _engine(api, fake, jitter=0.0) as built:
        yield built


@pytest.fixture
async def jittered(api: Harness, fake: tuple[Fake, httpx.AsyncClient]) -> AsyncIterator[Engine]:
    async with _engine(api, fake, jitter=0.1) as built:
        yield built


def _levels(fired: list[escalation.Fired], incident: int) -> list[int]:
    return [f.level for f in fired if f.incident == incident]


async def test_steps_fire_at_0_15_45_and_stop_at_acknowledgement(engine: Engine) -> None:
    incident = await engine.open("EscalationA", "fa01")
    # notification() names the group after the alert; Alertmanager's PagerDuty key for it:
    dedup = hashlib.sha256(b"EscalationA").hexdigest()
    assert _levels(await engine.at(0), incident) == [0]
    assert _levels(await engine.at(14.9), incident) == []
    assert _levels(await engine.at(15), incident) == [1]
    assert _levels(await engine.at(45), incident) == [2]
    fired = [f for f in await engine.at(120) if f.incident == incident]
    assert [(f.level, f.round) for f in fired] == [(0, 1)]  # the policy repeats

    post = engine.fake.bodies(POST)[-1]
    assert post["channel"] == "#ops-platform"
    actions = post["blocks"][1]["elements"]
    assert [a["action_id"] for a in actions] == ["acknowledge", "create_incident", "mute_1h"]
    assert {a["value"] for a in actions} == {str(incident)}
    seen = [s for s in engine.fake.seen if s.path == POST][-1]
    assert seen.headers["authorization"] == "Bearer xoxb-test-token"
    assert seen.headers["content-type"].startswith("application/json")
    trigger = engine.fake.bodies(ENQUEUE)[-1]
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == dedup
    assert trigger["payload"]["severity"] == "error"

    async with engine.conn.transaction():
        at = T0 + timedelta(minutes=121)
        assert await store.acknowledge(engine.conn, incident, "ada", at, "test")
    assert _levels(await engine.at(135), incident) == []
    assert _levels(await engine.at(600), incident) == []
    ack = engine.fake.bodies(ENQUEUE)[-1]
    assert ack == {
        "routing_key": "R0PSDECKTEST00000000000000000000",
        "event_action": "acknowledge",
        "dedup_key": dedup,
    }
    update = engine.fake.bodies(UPDATE)[-1]
    assert update["ts"] == "1700000000.000100"
    assert "Acknowledged by ada" in str(update["blocks"])


async def test_critical_pages_text_everyone_paged_and_high_ones_do_not(
    engine: Engine, api: Harness
) -> None:
    critical = await engine.open("EscalationCritical", "fp01", severity="critical")
    high = await engine.open("EscalationHigh", "fq01")
    fired = [f for f in await engine.at(0) if f.incident in (critical, high)]
    oncall = engine.incidents.oncall
    phones = {oncall.user(u).phone for f in fired if f.incident == critical for u in f.paged}
    sms = api.sql(
        "SELECT incident_id, recipient FROM ops.notifications "
        "WHERE transport = 'sms' AND incident_id = ANY(%s)",
        ([critical, high],),
    )
    assert phones
    assert {incident for incident, _ in sms} == {critical}
    assert {phone for _, phone in sms} == phones


async def test_medium_goes_to_slack_and_email_and_never_to_the_pager(
    engine: Engine, api: Harness
) -> None:
    incident = await engine.open("EscalationMedium", "fm01", severity="medium")
    await engine.at(0)
    async with engine.conn.transaction():
        assert await store.acknowledge(engine.conn, incident, "ada", T0, "test")
        assert await store.resolve(engine.conn, incident, "test", T0)
    await engine.at(1)
    sent = api.sql(
        "SELECT DISTINCT transport FROM ops.notifications WHERE incident_id = %s ORDER BY 1",
        (incident,),
    )
    assert sent == [("email",), ("slack",)]
    ((dedup,),) = api.sql("SELECT dedup_key FROM ops.incidents WHERE id = %s", (incident,))
    assert dedup
    assert not [b for b in engine.fake.bodies(ENQUEUE) if b["dedup_key"] == dedup]


async def test_pagerduty_bodies_match_the_events_v2_schema(engine: Engine) -> None:
    document = load("pagerduty", "events-v2.openapiv3.json")
    pointer = "#/paths/~1enqueue/post/requestBody/content/application~1json/schema"
    validator = jsonschema.Draft7Validator({**document, "$ref": pointer})
    incident = await engine.open("EscalationSchema", "fs01")
    await engine.at(0)
    async with engine.conn.transaction():
        await store.resolve(engine.conn, incident, "test", T0)
    await engine.at(1)
    bodies = engine.fake.bodies(ENQUEUE)
    assert {b["event_action"] for b in bodies} >= {"trigger", "resolve"}
    for body in bodies:
        validator.validate(body)


async def test_a_crash_mid_step_neither_skips_nor_repeats(engine: Engine) -> None:
    incident = await engine.open("EscalationCrash", "fc01")
    inc = engine.incidents
    doomed = await psycopg.AsyncConnection.connect(engine_url(engine))
    await doomed.execute("SELECT 1")  # inside an open transaction, never committed
    claimed = await escalation.fire_due(doomed, T0, inc.oncall, inc.settings)
    assert _levels(claimed, incident) == [0]
    # Meanwhile a second engine skips the claimed step: nobody is paged twice.
    assert _levels(await engine.at(0), incident) == []
    pid = doomed.info.backend_pid
    await doomed.close()  # killed before its commit: nothing it did persists
    await _gone(engine.conn, pid)
    assert _levels(await engine.at(0), incident) == [0]  # the restart fires it, once
    assert _levels(await engine.at(0), incident) == []
    posts = [b for b in engine.fake.bodies(POST) if "EscalationCrash" in b["text"]]
    assert len(posts) == 1


async def _gone(conn: Conn, pid: int) -> None:
    """Until the server has noticed the dead connection (and released its locks)."""
    for _ in range(100):
        row = await (
            await conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
        ).fetchone()
        if row is not None and row[0] == 0:
            return
        await anyio.sleep(0.05)
    raise AssertionError(f"backend {pid} is still there")


def engine_url(engine: Engine) -> str:
    info = engine.conn.info
    return f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"


async def test_retries_429_5xx_and_timeouts_but_not_4xx(engine: Engine, api: Harness) -> None:
    engine.fake.on(
        ENQUEUE,
        Reply(429, {"status": "throttled"}, {"Retry-After": "7"}),
        Reply(503, {"status": "unavailable"}),
        Reply(200, delay=1.5),  # longer than the client's timeout
    )
    incident = await engine.open("EscalationRetry", "fr01")
    await engine.at(0)
    states = _notification(api, incident)
    assert states[0] == 1
    assert states[1] == T0 + timedelta(seconds=7)  # Retry-After honoured
    await engine.at(7 / 60)
    assert _notification(api, incident)[:2] == (2, T0 + timedelta(seconds=7 + 30))
    await engine.at(37 / 60)
    attempts, _, status, error = _notification(api, incident)
    assert (attempts, status) == (3, "pending")
    assert "timed out" in error
    await engine.at(2)
    assert _notification(api, incident)[2] == "sent"

    engine.fake.on(ENQUEUE, Reply(400, {"status": "invalid event", "errors": ["bad"]}))
    rejected = await engine.open("EscalationRejected", "fx01")
    await engine.at(0)
    attempts, _, status, error = _notification(api, rejected)
    assert (attempts, status) == (1, "failed")
    assert "400" in error
    await engine.at(60)
    assert _notification(api, rejected)[0] == 1  # never sent again


class Broken:
    """A transport with a bug: it raises something other than TransportError."""

    name = "slack"

    async def send(self, note: Outgoing) -> dict[str, Any]:
        raise KeyError(f"no field for {note.kind}")


async def test_a_message_that_raises_fails_alone_and_the_queue_moves_on(
    engine: Engine, api: Harness
) -> None:
    incident = await engine.open("EscalationBug", "fb01")
    settings = engine.incidents.settings
    await escalation.fire_due(engine.conn, T0, engine.incidents.oncall, settings)
    transports = {**engine.incidents.transports, "slack": Broken()}
    await notifier.deliver_due(engine.conn, transports, T0, settings)
    queue = api.sql(
        "SELECT transport, status, last_error FROM ops.notifications "
        "WHERE incident_id = %s ORDER BY id",
        (incident,),
    )
    assert queue[0][0] == "slack"  # the broken transport's message is first in the queue
    assert queue[0][1:] == ("failed", "slack: KeyError('no field for page')")
    assert [status for t, status, _ in queue if t == "pagerduty"] == ["sent"]  # queued after
    assert engine.fake.bodies(ENQUEUE)


def _notification(api: Harness, incident: int) -> tuple[Any, ...]:
    (row,) = api.sql(
        "SELECT attempts, next_attempt_at, status, last_error FROM ops.notifications "
        "WHERE incident_id = %s AND transport = 'pagerduty'",
        (incident,),
    )
    return row


async def _settle(engine: Engine, *incidents: int) -> None:
    """Resolve the incidents and send what they left queued, so no retry of theirs takes a
    reply another test scripts."""
    async with engine.conn.transaction():
        for incident in incidents:
            await store.resolve(engine.conn, incident, "test", T0)
    settings = engine.incidents.settings
    later = T0 + timedelta(hours=1)
    await notifier.deliver_due(engine.conn, engine.incidents.transports, later, settings)


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_as_an_http_date_sets_the_next_attempt(
    engine: Engine, api: Harness, status: int
) -> None:
    when = math.ceil(time.time()) + 120  # HTTP dates have whole seconds
    date = email.utils.formatdate(when, usegmt=True)
    engine.fake.on(ENQUEUE, Reply(status, {"status": "busy"}, {"Retry-After": date}))
    incident = await engine.open(f"EscalationRetryDate{status}", f"fd{status}")
    await engine.at(0)
    attempts, next_at, state, _ = _notification(api, incident)
    assert (attempts, state) == (1, "pending")
    # The engine's clock is T0; the date is about 120 s ahead of the real one.
    assert T0 + timedelta(seconds=118) <= next_at <= T0 + timedelta(seconds=121)
    await engine.at(1)  # the schedule alone would have retried after 5 s
    assert _notification(api, incident)[:3] == (1, next_at, "pending")
    await engine.at(2.1)
    assert _notification(api, incident)[2] == "sent"
    await _settle(engine, incident)


async def test_retries_of_failures_at_one_moment_are_spread(jittered: Engine, api: Harness) -> None:
    jittered.fake.on(ENQUEUE, Reply(503, {"status": "unavailable"}), Reply(503, {}))
    first = await jittered.open("EscalationJitterA", "fj01")
    second = await jittered.open("EscalationJitterB", "fj02")
    await jittered.at(0)
    retries = [_notification(api, incident) for incident in (first, second)]
    assert [(attempts, state) for attempts, _, state, _ in retries] == [(1, "pending")] * 2
    due = [next_at for _, next_at, _, _ in retries]
    for next_at in due:  # 5 s +/- 10 %
        assert T0 + timedelta(seconds=4.5) <= next_at <= T0 + timedelta(seconds=5.5)
    assert due[0] != due[1]
    await _settle(jittered, first, second)
