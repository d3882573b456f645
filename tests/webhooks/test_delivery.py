"""Outbound delivery through real ``opsdeck worker`` processes to real local HTTP servers:
signatures, the attempt log, retries, Retry-After, 410, redirects, dead letters, automatic
disabling, and SIGTERM."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.webhooks.harness import (
    WorkerProcess,
    endpoint,
    send,
    sql,
    statuses,
    wait_for,
    workers,
)
from tests.webhooks.servers import Partner, Seen, partner


def test_every_message_arrives_signed_with_its_attempt_logged(db_url: str, logs: Path) -> None:
    with partner() as server, workers(db_url, logs) as (worker,):
        endpoint_id, secret = endpoint(db_url, server.url("/ok"))
        server.secrets.append(secret)
        send(db_url, 200)
        wait_for("200 deliveries", lambda: statuses(db_url) == {"succeeded": 200})
        uids = {r[0] for r in sql(db_url, "SELECT uid FROM ops.webhook_messages")}
        assert sorted(server.ids()) == sorted(uids)  # each once, with the message's id
        assert all(s.verified for s in server.seen)
        first = server.seen[0]
        assert first.headers["content-type"] == "application/json"
        assert first.headers["webhook-signature"].startswith("v1,")
        assert abs(int(first.headers["webhook-timestamp"]) - time.time()) < 60
        (row,) = sql(
            db_url,
            "SELECT a.attempt, a.trigger, a.response_status, a.succeeded, a.request_headers, "
            "a.body_sha256, a.duration_ms, a.address, a.response_body, d.delivered_at "
            "FROM ops.webhook_attempts a JOIN ops.webhook_deliveries d ON d.id = a.delivery_id "
            "JOIN ops.webhook_messages m ON m.id = d.message_id WHERE m.uid = %s",
            (first.webhook_id,),
        )
        assert row[:4] == (1, "scheduled", 200, True)
        assert row[4]["webhook-id"] == first.webhook_id
        assert len(row[5]) == 64
        assert row[6] > 0
        assert row[7] == "127.0.0.1"
        assert row[8] == "ok"
        assert row[9] is not None
        wait_for(
            "the attempts counted",
            lambda: (
                worker.value(
                    "opsdeck_webhook_delivery_attempts_total",
                    direction="outbound",
                    result="succeeded",
                )
                == 200
            ),
        )
        assert worker.value("opsdeck_webhook_queue_depth", direction="outbound") == 0
        count = worker.value("opsdeck_webhook_delivery_latency_seconds_count", direction="outbound")
        assert count == 200
        assert endpoint_id


def test_failures_are_retried_and_recoveries_counted(db_url: str, logs: Path) -> None:
    with partner() as server, workers(db_url, logs) as (worker,):
        endpoint(db_url, server.url("/fail/2"))
        send(db_url, 20)
        wait_for("recovered deliveries", lambda: statuses(db_url) == {"succeeded": 20}, 60)
        attempts = sql(
            db_url,
            "SELECT delivery_id, array_agg(response_status ORDER BY attempt), "
            "array_agg(attempt ORDER BY attempt) FROM ops.webhook_attempts GROUP BY 1",
        )
        assert len(attempts) == 20
        assert all(r[1] == [500, 500, 200] and r[2] == [1, 2, 3] for r in attempts)
        wait_for(
            "retries counted",
            lambda: (
                worker.value("opsdeck_webhook_retries_total", direction="outbound") == 40
                and worker.value("opsdeck_webhook_retries_recovered_total", direction="outbound")
                == 20
            ),
        )
        assert (
            worker.value(
                "opsdeck_webhook_delivery_attempts_total", direction="outbound", result="failed"
            )
            == 40
        )


def test_a_delivery_that_keeps_failing_becomes_a_dead_letter(db_url: str, logs: Path) -> None:
    with partner() as server, workers(db_url, logs) as (worker,):
        endpoint_id, _ = endpoint(db_url, server.url("/status/500"))
        send(db_url, 1)
        wait_for("a dead delivery", lambda: statuses(db_url) == {"dead": 1}, 30)
        # The schedule in tests: immediately, then 0.2, 0.4 and 0.8 s: four attempts.
        assert len(server.seen) == 4
        ((reason,),) = sql(db_url, "SELECT reason FROM ops.webhook_dead_letters")
        assert "4 attempts" in reason
        wait_for(
            "the dead letter counted",
            lambda: worker.value("opsdeck_webhook_dead_letters", direction="outbound") == 1,
        )
        ((enabled,),) = sql(
            db_url, "SELECT enabled FROM ops.webhook_endpoints WHERE id = %s", (endpoint_id,)
        )
        assert enabled  # one dead delivery does not disable an endpoint


def _delivered_on_the_second_try(
    db_url: str, server: Partner, path: str
) -> tuple[Seen, Seen, tuple[str, int]]:
    """One message sent to ``path``, awaited until delivered: the partner's two requests,
    and how the first attempt was logged (error class, HTTP status)."""
    endpoint(db_url, server.url(path))
    send(db_url, 1)
    wait_for("the delivery", lambda: statuses(db_url) == {"succeeded": 1}, 30)
    first, second = server.seen
    ((error_class, status),) = sql(
        db_url, "SELECT error_class, response_status FROM ops.webhook_attempts WHERE attempt = 1"
    )
    return first, second, (error_class, status)


def test_retry_after_of_a_429_is_honoured(db_url: str, logs: Path) -> None:
    with partner() as server, workers(db_url, logs):
        first, second, logged = _delivered_on_the_second_try(db_url, server, "/busy/2")
        assert second.at - first.at >= 1.9  # the schedule alone would retry after 0.2 s
        assert logged == ("http", 429)


class Unavailable(Partner):
    """Also ``/unavailable/<seconds>``: 503 with ``Retry-After`` as an HTTP date that many
    whole seconds ahead, once per webhook-id; ``dates`` holds each date sent, as Unix time."""

    def __init__(self) -> None:
        super().__init__()
        self.dates: list[float] = []

    def _answer(self, path: str, tries: int, calls: int) -> tuple[int, dict[str, str], str]:
        kind, _, seconds = path.strip("/").partition("/")
        if kind != "unavailable" or tries > 1:
            return super()._answer(path, tries, calls)
        when = math.ceil(time.time()) + int(seconds)  # HTTP dates have whole seconds
        self.dates.append(when)
        return 503, {"retry-after": email.utils.formatdate(when, usegmt=True)}, "maintenance"


@contextmanager
def unavailable() -> Iterator[Unavailable]:
    server = Unavailable()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_retry_after_as_an_http_date_of_a_503_is_honoured(db_url: str, logs: Path) -> None:
    with unavailable() as server, workers(db_url, logs):
        first, second, logged = _delivered_on_the_second_try(db_url, server, "/unavailable/3")
        (date,) = server.dates
        # Due at the date the server named, not after the schedule's 0.2 s; the worker
        # polls every 0.5 s.
        assert date - 0.05 <= second.at <= date + 2.0
        assert second.at - first.at >= 2.0
        assert logged == ("http", 503)


def test_redirects_are_failures_and_never_followed(db_url: str, logs: Path) -> None:
    with partner() as server, partner() as elsewhere, workers(db_url, logs):
        server.redirect_to = elsewhere.url("/ok")
        endpoint(db_url, server.url("/redirect"))
        send(db_url, 1)
        wait_for("a dead delivery", lambda: statuses(db_url) == {"dead": 1}, 30)
        assert elsewhere.seen == []
        classes = sql(
            db_url, "SELECT DISTINCT error_class, response_status FROM ops.webhook_attempts"
        )
        assert classes == [("redirect", 302)]


def test_410_gone_disables_the_endpoint_and_opens_an_incident(db_url: str, logs: Path) -> None:
    with partner() as server, workers(db_url, logs) as (worker,):
        endpoint_id, _ = endpoint(db_url, server.url("/status/410"), max_in_flight=1)
        send(db_url, 5)
        wait_for(
            "the endpoint disabled",
            lambda: (
                not sql(
                    db_url,
                    "SELECT enabled FROM ops.webhook_endpoints WHERE id = %s",
                    (endpoint_id,),
                )[0][0]
            ),
        )
        wait_for("every delivery parked", lambda: statuses(db_url) == {"dead": 5})
        assert len(server.seen) < 5  # the rest were parked without another attempt
        ((reason,),) = sql(db_url, "SELECT disabled_reason FROM ops.webhook_endpoints")
        assert "410" in reason
        (incident,) = sql(db_url, "SELECT title, status FROM ops.incidents")
        assert "disabled" in incident[0]
        assert incident[1] == "triggered"
        (audit,) = sql(
            db_url,
            "SELECT actor, target_id FROM ops.audit_log WHERE action = 'webhooks.endpoint.disable'",
        )
        assert audit[0].startswith("opsdeck-worker")
        assert audit[1] == str(endpoint_id)
        assert sql(db_url, "SELECT count(*) FROM ops.webhook_dead_letters")[0][0] == 5
        wait_for(
            "the disabled endpoint counted",
            lambda: worker.value("opsdeck_webhook_endpoints", state="disabled") == 1,
        )


def test_an_endpoint_failing_too_long_is_disabled(db_url: str, logs: Path) -> None:
    with (
        partner() as server,
        workers(
            db_url,
            logs,
            OPSDECK_WEBHOOKS__DISABLE_AFTER_FAILING_SECONDS="2",
            OPSDECK_WEBHOOKS__RETRY_SCHEDULE_SECONDS="[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]",
        ),
    ):
        endpoint_id, _ = endpoint(db_url, server.url("/status/503"))
        send(db_url, 1)
        wait_for(
            "the endpoint disabled",
            lambda: bool(sql(db_url, "SELECT 1 FROM ops.webhook_endpoints WHERE NOT enabled")),
            30,
        )
        ((reason,),) = sql(db_url, "SELECT disabled_reason FROM ops.webhook_endpoints")
        assert "without a success" in reason
        assert sql(db_url, "SELECT count(*) FROM ops.incidents")[0][0] == 1
        assert endpoint_id


def test_sigterm_finishes_the_deliveries_in_flight(db_url: str, logs: Path) -> None:
    with partner() as server:
        endpoint(db_url, server.url("/slow/1500"))
        worker = WorkerProcess(db_url, logs)
        try:
            send(db_url, 5)
            wait_for("deliveries in flight", lambda: server.in_flight == 5, 30, 0.05)
            started = time.monotonic()
            assert worker.stop() == 0, worker.tail()
            assert time.monotonic() - started < 10
        finally:
            worker.kill()
        assert statuses(db_url) == {"succeeded": 5}  # recorded before it exited
        assert len(server.seen) == 5  # none sent twice
        assert "finishing 5 deliveries in flight" in worker.tail()
