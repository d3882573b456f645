"""The benchmark's table: traffic rows before idle ones, and each contender's own-backend
CPU as a multiple of opsdeck's under the same load."""

from __future__ import annotations

from bench.exporter import Result, table


def _result(name: str, load: str, own: float) -> Result:
    result = Result(name, load=load)
    result.own_cpu_per_minute = own
    return result


def test_each_row_is_compared_with_opsdeck_under_the_same_load() -> None:
    lines = table(
        [
            _result("opsdeck", "traffic", 2.0),
            _result("opsdeck", "idle", 0.25),
            _result("query-exporter, every 15 s", "traffic", 50.0),
            _result("query-exporter, every 15 s", "idle", 30.0),
        ]
    )
    assert [line.split()[0] for line in lines] == ["opsdeck", "query-exporter,"] * 2
    assert ["idle" in line for line in lines] == [False, False, True, True]
    assert "25.0x" in lines[1]  # 50 / 2 under traffic
    assert "120.0x" in lines[3]  # 30 / 0.25 idle
    for line in (lines[0], lines[2]):
        assert "x " not in line  # opsdeck against itself: blank
