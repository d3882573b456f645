"""The benchmark's table: traffic rows before idle ones, and each contender's PostgreSQL
cost (own backends and reads) as a multiple of opsdeck's under the same load."""

from __future__ import annotations

from bench.exporter import Result, table
from bench.pgcpu import CpuWindow


def _result(name: str, load: str, own: float, reads: float = 0.0) -> Result:
    result = Result(name, load=load)
    result.own_cpu_per_minute = own
    result.reads_cpu_per_minute = reads
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


def test_a_contenders_reads_count_in_its_cost() -> None:
    opsdeck, qe = (
        _result("opsdeck", "traffic", 2.0, 0.5),
        _result("query-exporter", "traffic", 40.0, 10.0),
    )
    assert "20.0x" in table([opsdeck, qe])[1]  # (40 + 10) / (2 + 0.5)


def test_reads_are_the_io_workers_above_the_same_load_without_the_contender() -> None:
    result = Result("query-exporter")
    result.measure_cpu(CpuWindow(total=90.0, own=44.0, io=27.0), CpuWindow(20.0, 15.0, io=1.0))
    assert (result.cpu_per_minute, result.own_cpu_per_minute) == (70.0, 44.0)
    assert result.reads_cpu_per_minute == 26.0
    quieter = Result("opsdeck")
    quieter.measure_cpu(CpuWindow(21.0, 2.0, io=0.5), CpuWindow(20.0, 15.0, io=1.0))
    assert quieter.reads_cpu_per_minute == 0.0  # fewer reads than the traffic alone: none
