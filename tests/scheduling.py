"""The order the suite's files are handed to its processes: longest first.

``make test`` runs the files in 4 processes, a whole file to one process (its module
fixtures start real stacks once), each process taking the next file when it runs low. A
file of a few long tests left to the end of the queue keeps one process busy long after
the others are done, so the files go out longest first: the classic longest-processing-time
rule, which leaves at most about one file's time as the tail. ``durations.json`` holds each
file's seconds from a whole run (a hint, not a promise: a file missing from it counts as
short and goes after the known ones, most tests first, as xdist orders them by default).

Files whose fixtures share a lock run in one process, one after the other
(``STACK_LANES``): the monitoring stacks of one lane (``tests.alerting.stack``) would
otherwise hold a process each while it waits for the one running, idle for minutes. The
two lanes run side by side, so the light lane's files stay off the full lane's path, the
longest in the suite.

Refresh the durations from a run's JUnit report::

    pytest -n 4 --dist loadfile --no-loadscope-reorder --junitxml=/tmp/junit.xml
    python -m tests.scheduling /tmp/junit.xml
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from xdist.scheduler import LoadFileScheduling

DURATIONS = Path(__file__).with_name("durations.json")
# The files that start a monitoring stack, by lane: one process runs a lane's in turn.
STACK_LANES = {
    "tests/alerting/test_end_to_end.py": "monitoring stacks, lane full",
    "tests/alerting/test_quiet.py": "monitoring stacks, lane full",
    "tests/alerting/test_self_watch.py": "monitoring stacks, lane light",
    "tests/dashboards/test_panel_data.py": "monitoring stacks, lane light",
    "tests/incidents/test_end_to_end.py": "monitoring stacks, lane light",
}


class Item(Protocol):
    @property
    def nodeid(self) -> str: ...


T = TypeVar("T", bound=Item)


def file_of(nodeid: str) -> str:
    return nodeid.partition("::")[0]


def longest_first(items: Sequence[T], seconds: dict[str, float]) -> list[T]:
    """``items`` with their files in descending order of ``seconds`` (then of their number
    of tests); each file's tests stay together, in their own order."""
    by_file: dict[str, list[T]] = {}
    for item in items:
        by_file.setdefault(file_of(item.nodeid), []).append(item)
    order = sorted(by_file, key=lambda f: (-seconds.get(f, 0.0), -len(by_file[f])))
    return [item for name in order for item in by_file[name]]


class LaneScheduling(LoadFileScheduling):  # type: ignore[misc]
    """xdist's ``--dist loadfile``, but the files of one stack lane are one unit of work."""

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its stack lane, else its file."""
    name = file_of(nodeid)
    return STACK_LANES.get(name, name)


def recorded() -> dict[str, float]:
    return dict(json.loads(DURATIONS.read_text())) if DURATIONS.exists() else {}


def from_junit(report: Path) -> dict[str, float]:
    """Seconds per test file (setup, call and teardown of its tests) in a JUnit report."""
    seconds: dict[str, float] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        module = [p for p in case.get("classname", "").split(".") if not p[:1].isupper()]
        name = "/".join(module) + ".py"
        seconds[name] = seconds.get(name, 0.0) + float(case.get("time", 0))
    ordered = sorted(seconds.items(), key=lambda kv: -kv[1])
    return {name: round(total, 1) for name, total in ordered}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.scheduling JUNIT_XML")
    DURATIONS.write_text(json.dumps(from_junit(Path(sys.argv[1])), indent=1) + "\n")
