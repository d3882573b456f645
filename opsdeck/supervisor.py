"""Child processes of ``opsdeck demo``: start, wait until ready, watch, stop in order.

Children run in their own process group so a terminal's Ctrl-C reaches only the
supervisor, which then stops them: the applications together, then the stores
(PostgreSQL, Redis) they write to until they stop. Each child also gets SIGTERM from the
kernel if the supervisor dies (PR_SET_PDEATHSIG), so nothing outlives it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    log_file: Path
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    ready: Callable[[], bool] | None = None
    ready_timeout: float = 60.0
    stop_signal: int = signal.SIGTERM
    store: bool = False  # the others use it: it stops after them
    cwd: Path | None = None


class ServiceFailed(Exception):
    """A child exited before it was ready or while it should have been running."""


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    def __init__(self) -> None:
        self._running: list[tuple[Service, subprocess.Popen[bytes]]] = []

    @property
    def pids(self) -> list[int]:
        return [process.pid for _, process in self._running]

    def start(self, service: Service) -> subprocess.Popen[bytes]:
        service.log_file.parent.mkdir(parents=True, exist_ok=True)
        with service.log_file.open("ab") as out:
            process = subprocess.Popen(
                service.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **service.env},
                cwd=service.cwd,
                user=service.user,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - nothing else runs in the child
            )
        self._running.append((service, process))
        if service.ready is not None:
            self._wait_ready(service, process)
        return process

    def _wait_ready(self, service: Service, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + service.ready_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServiceFailed(
                    f"{service.name} exited with status {process.returncode} while starting; "
                    f"see {service.log_file}"
                )
            assert service.ready is not None
            if service.ready():
                return
            time.sleep(0.1)
        raise ServiceFailed(
            f"{service.name} not ready after {service.ready_timeout:.0f} s; see {service.log_file}"
        )

    def forget(self, service: Service) -> None:
        """Drop a child that finished its job (a one-off task, not a service)."""
        self._running = [(s, p) for s, p in self._running if s is not service]

    def exited(self) -> tuple[Service, int] | None:
        """The first child that has exited on its own, if any."""
        for service, process in self._running:
            if process.poll() is not None:
                return service, process.returncode
        return None

    def stop_all(self, timeout: float = 5.0) -> None:
        """Stop every child, the applications first and the stores after them. Each group
        is signalled at once and gets ``timeout`` seconds; stragglers are killed."""
        for stores in (False, True):
            _stop([(s, p) for s, p in self._running if s.store is stores], timeout)
        self._running.clear()


def _stop(children: list[tuple[Service, subprocess.Popen[bytes]]], timeout: float) -> None:
    for service, process in children:
        if process.poll() is None:
            _signal_group(process, service.stop_signal)
    deadline = time.monotonic() + timeout
    for service, process in children:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %g s; killing it", service.name, timeout)
            _signal_group(process, signal.SIGKILL)
            process.wait()


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        log.debug("process group %d already gone", process.pid)


def http_ready(url: str) -> Callable[[], bool]:
    """A readiness check for :class:`Service`: ``url`` answers 200."""

    def check() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return check
