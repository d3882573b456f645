"""The suite's child processes, started and stopped one way.

A server the tests talk to over HTTP runs under the demo's :class:`Supervisor`
(:func:`supervised_server`): it gets a free port, the test waits until it answers, and it is
stopped however the test ends. A child whose own logs and exit status the tests read (the
exporter, the worker) is a plain ``Popen`` and stops with :func:`terminate`: SIGTERM first,
so its shutdown path runs, and SIGKILL only when that hangs. :func:`stopped_on_exit` stops a
batch of them when the block ends, failed or not.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from opsdeck.embedded import free_port
from opsdeck.supervisor import Service, Supervisor, http_ready


class Stoppable(Protocol):
    def stop(self) -> object: ...


@contextmanager
def supervised_server(
    name: str,
    argv: Callable[[int], list[str]],
    log_file: Path,
    ready_path: str,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[str]:
    """``argv(port)`` on a free port, once ``ready_path`` answers 200: yields its base URL
    and stops it on exit."""
    port = free_port(0)
    base = f"http://127.0.0.1:{port}"
    ready = http_ready(base + ready_path)
    service = Service(name, argv(port), log_file, env=env or {}, ready=ready, cwd=cwd)
    supervisor = Supervisor()
    try:
        supervisor.start(service)
        yield base
    finally:
        supervisor.stop_all()


def terminate(process: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


@contextmanager
def stopped_on_exit(children: Iterable[Stoppable]) -> Iterator[None]:
    """Stops every one of ``children`` when the block ends; they are read then, so a
    collection the block fills is covered too."""
    try:
        yield
    finally:
        for child in children:
            child.stop()
