"""How a background loop words, reports and waits out its failures: the whole contract.

Every long-running loop of opsdeck (the commit horizon, the KPI folds, the platform tail,
the gateway's claim/record/listen loops, its metrics, the escalation engine, the API's
roll-up) fails the same way: a database or a peer goes away for a while and comes back.
Its logs must say so once, not once per retry, and it must not hammer what is down.

- :func:`one_line` words an error as one line: its class and the first line of its text.
- :class:`FailureReporter` logs ``"<what>: <message>"`` at ERROR on the first failure of a
  streak and again only when the message changes, and ``"<what>: recovered"`` at INFO once
  when a success ends the streak. Successes outside a streak log nothing. One reporter may
  be shared by several threads.
- :class:`Backoff` is the wait between attempts: ``initial`` after the first failure,
  multiplied by ``factor`` after each further one, never above ``maximum``; ``reset`` after
  a success starts over. It holds no clock: the caller sleeps the returned delay.
- :func:`run_every` is the periodic thread loop (the commit horizon, the leader lock): one
  step every ``interval`` seconds until stopped, where a database error is reported, handed
  to the loop's own recovery (drop the connection, let go of the lock) and outlived.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class FailureReporter:
    """One loop's failure streaks, logged once when they start (or change) and once when
    they end."""

    def __init__(self, what: str, logger: logging.Logger) -> None:
        self.what = what
        self._log = logger
        self._lock = threading.Lock()
        self._current: str | None = None

    @property
    def current(self) -> str | None:
        """The message of the streak under way, or None while things work."""
        with self._lock:
            return self._current

    def failed(self, error: BaseException | str, *, traceback: bool = False) -> bool:
        """Report a failure; True when it starts a streak or changes its message (it was
        logged then). ``traceback`` adds the exception's traceback to that one log line:
        for errors that are bugs rather than an outage."""
        message = error if isinstance(error, str) else one_line(error)
        with self._lock:
            if message == self._current:
                return False
            self._current = message
        exc_info = error if traceback and isinstance(error, BaseException) else None
        self._log.error("%s: %s", self.what, message, exc_info=exc_info)
        return True

    def recovered(self) -> bool:
        """Report a success; True when it ended a streak (it was logged then)."""
        with self._lock:
            if self._current is None:
                return False
            self._current = None
        self._log.info("%s: recovered", self.what)
        return True


class Backoff:
    """Growing waits between attempts that fail in a row."""

    def __init__(self, initial: float, maximum: float, factor: float = 2.0) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"backoff needs 0 < initial <= maximum, not {initial}, {maximum}")
        if factor < 1:
            raise ValueError(f"backoff factor must be at least 1, not {factor}")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self._next = initial

    def next(self) -> float:
        """The delay to wait after this failure; the following one will be longer."""
        delay = self._next
        self._next = min(self.maximum, delay * self.factor)
        return delay

    def reset(self) -> None:
        """A success: the next failure waits ``initial`` again."""
        self._next = self.initial


def run_every(
    stop: threading.Event,
    interval: float,
    step: Callable[[], None],
    failures: FailureReporter,
    on_error: Callable[[psycopg.Error], None],
) -> None:
    """``step`` every ``interval`` seconds until ``stop`` is set; a database error is
    reported through ``failures`` and handed to ``on_error``, and the loop goes on."""
    while not stop.is_set():
        try:
            step()
            failures.recovered()
        except psycopg.Error as exc:
            failures.failed(exc)
            on_error(exc)
        stop.wait(interval)
