"""The supervisor's stop: applications are signalled together, the stores they write to
only once the applications are gone, and a child that ignores its signal is killed."""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path

import pytest

from opsdeck.supervisor import Service, Supervisor

# A child that notes when it got SIGTERM, takes `linger` seconds to finish, notes its exit.
CHILD = """
import pathlib, signal, sys, time
journal, name, linger = pathlib.Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
def note(event):
    with journal.open("a") as f:
        f.write(f"{time.monotonic()} {name} {event}\\n")
def stop(*_):
    note("signalled")
    time.sleep(linger)
    note("exited")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
note("started")
while True:
    time.sleep(0.05)
"""


def _child(tmp_path: Path, name: str, linger: float, *, store: bool = False) -> Service:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    journal = tmp_path / "journal"
    return Service(
        name=name,
        argv=[sys.executable, str(script), str(journal), name, str(linger)],
        log_file=tmp_path / f"{name}.log",
        ready=lambda: f" {name} started" in (journal.read_text() if journal.exists() else ""),
        store=store,
    )


def _journal(tmp_path: Path) -> dict[tuple[str, str], float]:
    events = {}
    for line in (tmp_path / "journal").read_text().splitlines():
        at, name, event = line.split()
        events[name, event] = float(at)
    return events


def test_applications_stop_together_and_stores_after_them(tmp_path: Path) -> None:
    supervisor = Supervisor()
    supervisor.start(_child(tmp_path, "database", 0.0, store=True))
    supervisor.start(_child(tmp_path, "exporter", 0.5))
    supervisor.start(_child(tmp_path, "api", 0.5))
    supervisor.stop_all()

    events = _journal(tmp_path)
    apps_exited = max(events["exporter", "exited"], events["api", "exited"])
    # Both applications got their signal before either had finished: they stop together.
    assert events["exporter", "signalled"] < events["api", "exited"]
    assert events["api", "signalled"] < events["exporter", "exited"]
    # The store is signalled only once every application has exited.
    assert events["database", "signalled"] > apps_exited
    assert supervisor.pids == []


def test_a_child_that_ignores_its_signal_is_killed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    supervisor = Supervisor()
    stubborn = supervisor.start(_child(tmp_path, "stubborn", 60.0))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="opsdeck.supervisor"):
        supervisor.stop_all(timeout=0.5)
    assert time.monotonic() - started < 30  # not the 60 s it would take by itself
    assert stubborn.returncode == -signal.SIGKILL
    assert "stubborn did not stop in 0.5 s; killing it" in caplog.text
