"""The suite's file order and units of work (tests/scheduling.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from xdist.scheduler import LoadFileScheduling

from tests.conftest import REPO
from tests.scheduling import STACK_LANES, LaneScheduling, from_junit, longest_first, unit_of

STACK_CALL = re.compile(r"monitoring_stack\((?P<args>[^()]*(?:\([^()]*\)[^()]*)*)\)", re.S)


@dataclass(frozen=True)
class _Item:
    nodeid: str


def test_files_go_longest_first_with_their_tests_together_in_order() -> None:
    items = [
        _Item(n)
        for n in (
            "tests/a.py::one",
            "tests/a.py::two",
            "tests/b.py::one",
            "tests/c.py::one",
            "tests/c.py::two",
            "tests/c.py::three",
            "tests/d.py::one",
        )
    ]
    ordered = longest_first(items, {"tests/b.py": 300.0, "tests/a.py": 20.0})
    assert [i.nodeid for i in ordered] == [
        "tests/b.py::one",
        "tests/a.py::one",
        "tests/a.py::two",
        "tests/c.py::one",  # unknown files after the known ones, most tests first
        "tests/c.py::two",
        "tests/c.py::three",
        "tests/d.py::one",
    ]


def test_the_files_of_each_stack_lane_are_one_unit_of_work() -> None:
    units = {unit_of(f"{name}::test_x") for name in STACK_LANES}
    assert units == {"monitoring stacks, lane full", "monitoring stacks, lane light"}
    assert unit_of("tests/api/test_auth.py::test_x[a]") == "tests/api/test_auth.py"
    assert LaneScheduling._split_scope is not LoadFileScheduling._split_scope


def test_every_file_starting_a_stack_is_listed_in_its_lane() -> None:
    starting = {}
    for path in (REPO / "tests").rglob("test_*.py"):
        for call in STACK_CALL.finditer(path.read_text()):
            lane = "light" if 'lane="light"' in call["args"] else "full"
            starting[str(path.relative_to(REPO))] = f"monitoring stacks, lane {lane}"
    assert starting == STACK_LANES


def test_durations_come_from_a_junit_report(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.api.test_x" name="a" time="1.25"/>'
        '<testcase classname="tests.api.test_x.TestGroup" name="b" time="2.5"/>'
        '<testcase classname="tests.test_y" name="c" time="9"/>'
        "</testsuite></testsuites>"
    )
    assert from_junit(report) == {"tests/test_y.py": 9.0, "tests/api/test_x.py": 3.8}
