"""The failure reporter logs a streak once when it starts (again only when its message
changes) and once when it ends; the backoff grows from its first delay to its bound and
starts over after a success; the periodic loop outlives database errors and stops when
told."""

from __future__ import annotations

import logging
import threading

import psycopg
import pytest

from core.failures import Backoff, FailureReporter, one_line, run_every

LOGGER = "tests.core.failures"


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == LOGGER]


def test_a_streak_is_logged_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    reporter = FailureReporter("ops database", logging.getLogger(LOGGER))
    assert not reporter.recovered()  # working, and nothing to say
    refused = ConnectionRefusedError("connection refused\nis the server running?")
    assert reporter.failed(refused)
    for _ in range(5):
        assert not reporter.failed(ConnectionRefusedError("connection refused"))
    assert reporter.current == "ConnectionRefusedError: connection refused"
    assert reporter.failed("server closed the connection")  # a new message is news
    assert reporter.recovered()
    assert not reporter.recovered()
    assert reporter.failed(TimeoutError())  # a new streak
    assert _lines(caplog) == [
        ("ERROR", "ops database: ConnectionRefusedError: connection refused"),
        ("ERROR", "ops database: server closed the connection"),
        ("INFO", "ops database: recovered"),
        ("ERROR", "ops database: TimeoutError"),
    ]


def test_a_bug_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    reporter = FailureReporter("collector api", logging.getLogger(LOGGER))
    found: dict[str, int] = {}
    try:
        found["missing"]
    except KeyError as exc:
        reporter.failed(exc, traceback=True)
    (record,) = [r for r in caplog.records if r.name == LOGGER]
    assert record.getMessage() == "collector api: KeyError: 'missing'"
    assert record.exc_info is not None
    assert record.exc_info[0] is KeyError


def test_threads_sharing_a_reporter_log_a_streak_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    reporter = FailureReporter("shared", logging.getLogger(LOGGER))
    start = threading.Barrier(8)

    def fail_then_recover() -> None:
        start.wait()
        for _ in range(200):
            reporter.failed("down")
        start.wait()
        for _ in range(200):
            reporter.recovered()

    threads = [threading.Thread(target=fail_then_recover) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _lines(caplog) == [("ERROR", "shared: down"), ("INFO", "shared: recovered")]


def test_one_line_keeps_the_class_and_the_first_line() -> None:
    assert one_line(ValueError("first\nsecond")) == "ValueError: first"
    assert one_line(ValueError("  ")) == "ValueError"


def test_backoff_doubles_up_to_its_bound_and_starts_over() -> None:
    backoff = Backoff(0.2, 5.0)
    delays = [backoff.next() for _ in range(8)]
    assert delays == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])
    backoff.reset()
    assert backoff.next() == 0.2
    assert Backoff(1.0, 1.0).next() == 1.0
    three = Backoff(0.5, 10.0, factor=3.0)
    assert [three.next() for _ in range(4)] == pytest.approx([0.5, 1.5, 4.5, 10.0])


@pytest.mark.parametrize(
    ("initial", "maximum", "factor"), [(0.0, 5.0, 2.0), (6.0, 5.0, 2.0), (0.2, 5.0, 0.5)]
)
def test_a_backoff_that_cannot_work_is_refused(
    initial: float, maximum: float, factor: float
) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(initial, maximum, factor)


def test_the_periodic_loop_reports_database_errors_and_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    stop = threading.Event()
    outcomes = [psycopg.OperationalError("server closed the connection"), None, None]
    recovered_from: list[str] = []

    def step() -> None:
        outcome = outcomes.pop(0)
        if not outcomes:
            stop.set()  # the last step runs, then the loop ends
        if outcome is not None:
            raise outcome

    reporter = FailureReporter("horizon", logging.getLogger(LOGGER))
    run_every(stop, 0.0, step, reporter, lambda exc: recovered_from.append(str(exc)))
    assert outcomes == []
    assert recovered_from == ["server closed the connection"]
    assert _lines(caplog) == [
        ("ERROR", "horizon: OperationalError: server closed the connection"),
        ("INFO", "horizon: recovered"),
    ]


def test_the_periodic_loop_does_not_swallow_a_bug() -> None:
    def step() -> None:
        raise KeyError("a bug, not an outage")

    reporter = FailureReporter("horizon", logging.getLogger(LOGGER))
    with pytest.raises(KeyError):
        run_every(threading.Event(), 0.0, step, reporter, lambda exc: None)


def test_a_stopped_periodic_loop_runs_no_step() -> None:
    stop = threading.Event()
    stop.set()
    steps: list[int] = []
    reporter = FailureReporter("horizon", logging.getLogger(LOGGER))
    run_every(stop, 60.0, lambda: steps.append(1), reporter, lambda exc: None)
    assert steps == []
